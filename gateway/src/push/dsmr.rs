//! DSMR 5 P1 telegrams (the Dutch/Belgian smart meter's P1 port, "P1 Companion Standard" 5.0.2):
//! framing, the CRC16 and the COSEM objects, with no I/O.
//!
//! A telegram runs from `/` (the header `/XXX5identification`) through `!` and four hex digits
//! of CRC-16/ARC (polynomial 0xA001 reflected, initial value 0) over every byte from `/` through
//! `!`. Between them, one object per line: an OBIS reduced id (`1-0:1.8.1`) and one or more
//! values in parentheses, a number carrying its unit after `*` (`(001234.567*kWh)`).
//!
//! Nothing here reads a value as zero when it is not there: a bad CRC, a telegram cut off, a
//! line that is not an object, a number that is not one or a unit that is not the one expected
//! are each a named error.

use std::collections::HashMap;

/// The longest telegram taken (a DSMR 5 telegram is about 1 KiB; the standard allows long text
/// messages and M-Bus devices, so leave room).
pub const MAX_TELEGRAM: usize = 8 * 1024;

/// CRC-16/ARC over `bytes`, as DSMR 5 uses it.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

/// Why a telegram was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelegramError {
    /// It does not start with `/`.
    #[error("no telegram header: the text does not start with '/'")]
    NoHeader,
    /// The header is not `/XXX5…` (three characters of maker, the baud rate digit, an id).
    #[error("header {0:?} is not /XXXnID")]
    BadHeader(String),
    /// It ends before its `!` and four CRC digits.
    #[error("telegram cut off after {0} bytes (no '!' and four CRC digits)")]
    Truncated(usize),
    /// Longer than [`MAX_TELEGRAM`] without an end.
    #[error("telegram longer than {MAX_TELEGRAM} bytes without an end")]
    TooLong,
    /// The CRC after `!` is not four hex digits.
    #[error("CRC {0:?} is not four hex digits")]
    BadCrcDigits(String),
    /// The CRC does not match: a byte changed on the way.
    #[error("CRC mismatch: telegram says {sent:04X}, its bytes give {computed:04X}")]
    Crc {
        /// The CRC written in the telegram.
        sent: u16,
        /// The CRC of its bytes.
        computed: u16,
    },
    /// A line that is not an OBIS object with values in parentheses.
    #[error("line {line}: {text:?} is not an object: {why}")]
    Malformed {
        /// Line number in the telegram (the header is line 1).
        line: usize,
        /// The line.
        text: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// Why a value could not be taken from a telegram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The telegram has no such object.
    #[error("{0} is not in the telegram")]
    Missing(String),
    /// The value is not a decimal number with a unit (`123.456*kWh`).
    #[error("{obis}: {text:?} is not a number with a unit")]
    NotNumber {
        /// The object.
        obis: String,
        /// Its value.
        text: String,
    },
    /// The unit is not the one expected.
    #[error("{obis}: unit {got:?}, expected {expected:?}")]
    Unit {
        /// The object.
        obis: String,
        /// What the telegram says.
        got: String,
        /// What the profile expects.
        expected: String,
    },
}

/// A telegram whose CRC checked, split into its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telegram {
    /// The header after `/` (`ISk5\2MT382-1000`).
    pub header: String,
    /// Each object's values (the text inside each pair of parentheses), by OBIS id.
    pub objects: HashMap<String, Vec<String>>,
}

impl Telegram {
    /// Checks and splits one telegram: `text` runs from `/` through the CRC digits (a line end
    /// after them is allowed).
    pub fn parse(text: &[u8]) -> Result<Self, TelegramError> {
        if text.first() != Some(&b'/') {
            return Err(TelegramError::NoHeader);
        }
        if text.len() > MAX_TELEGRAM {
            return Err(TelegramError::TooLong);
        }
        let bang = text
            .iter()
            .position(|&b| b == b'!')
            .ok_or(TelegramError::Truncated(text.len()))?;
        let digits = text
            .get(bang + 1..bang + 5)
            .ok_or(TelegramError::Truncated(text.len()))?;
        let digits = std::str::from_utf8(digits).unwrap_or("");
        let sent = (digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u16::from_str_radix(digits, 16).ok())
            .flatten()
            .ok_or_else(|| TelegramError::BadCrcDigits(String::from_utf8_lossy(&text[bang + 1..]).into_owned()))?;
        if !text[bang + 5..].iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return Err(TelegramError::BadCrcDigits(
                String::from_utf8_lossy(&text[bang + 1..]).into_owned(),
            ));
        }
        let computed = crc16(&text[..=bang]);
        if computed != sent {
            return Err(TelegramError::Crc { sent, computed });
        }
        let body = String::from_utf8_lossy(&text[..bang]);
        let mut lines = body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let header = lines.next().unwrap_or_default();
        let h = header.as_bytes();
        // `/`, three maker characters, the baud rate character ('5' for 115200), an id
        if h.len() < 6 || !h[1..4].iter().all(u8::is_ascii_alphanumeric) || !h[4].is_ascii_digit() {
            return Err(TelegramError::BadHeader(header.to_owned()));
        }
        let mut objects: HashMap<String, Vec<String>> = HashMap::new();
        let mut last: Option<String> = None;
        for (i, line) in lines.enumerate() {
            let number = i + 2;
            let malformed = |why| TelegramError::Malformed {
                line: number,
                text: line.to_owned(),
                why,
            };
            if line.is_empty() {
                continue;
            }
            // a value continued on the next line (older gas meters; allowed in the grammar)
            let (obis, rest) = if line.starts_with('(') {
                (
                    last.clone()
                        .ok_or_else(|| malformed("a value with no object before it"))?,
                    line,
                )
            } else {
                let open = line.find('(').ok_or_else(|| malformed("no value"))?;
                let obis = &line[..open];
                if !is_obis(obis) {
                    return Err(malformed("not an OBIS id (A-B:C.D.E)"));
                }
                (obis.to_owned(), &line[open..])
            };
            let values = groups(rest).ok_or_else(|| malformed("unbalanced parentheses"))?;
            objects.entry(obis.clone()).or_default().extend(values);
            last = Some(obis);
        }
        Ok(Self {
            header: header[1..].to_owned(),
            objects,
        })
    }

    /// The number of `obis` in `unit` (the last value of the object: for gas, after its time
    /// stamp). Exact as written: `001234.567` is 1234.567.
    pub fn number(&self, obis: &str, unit: &str) -> Result<f64, ValueError> {
        let value = self
            .objects
            .get(obis)
            .and_then(|v| v.last())
            .ok_or_else(|| ValueError::Missing(obis.to_owned()))?;
        let not_number = || ValueError::NotNumber {
            obis: obis.to_owned(),
            text: value.clone(),
        };
        let (number, got) = value.split_once('*').ok_or_else(not_number)?;
        if !is_decimal(number) {
            return Err(not_number());
        }
        if got != unit {
            return Err(ValueError::Unit {
                obis: obis.to_owned(),
                got: got.to_owned(),
                expected: unit.to_owned(),
            });
        }
        number.parse().map_err(|_| not_number())
    }
}

/// `A-B:C.D.E` with decimal numbers.
fn is_obis(s: &str) -> bool {
    let Some((ab, cde)) = s.split_once(':') else {
        return false;
    };
    let Some((a, b)) = ab.split_once('-') else {
        return false;
    };
    let parts: Vec<&str> = cde.split('.').collect();
    parts.len() == 3
        && [a, b]
            .iter()
            .chain(parts.iter())
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|c| c.is_ascii_digit()))
}

/// Digits, optionally a point and more digits.
fn is_decimal(s: &str) -> bool {
    let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
    !int.is_empty() && !frac.is_empty() && int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
}

/// `(a)(b)(c)` → `["a", "b", "c"]`; `None` if the parentheses do not pair up.
fn groups(mut s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let rest = s.strip_prefix('(')?;
        let close = rest.find(')')?;
        let inner = &rest[..close];
        if inner.contains('(') {
            return None;
        }
        out.push(inner.to_owned());
        s = &rest[close + 1..];
    }
    Some(out)
}

/// Cuts telegrams out of a byte stream: bytes before a `/` are skipped, a telegram ends at `!`
/// and four characters. A telegram cut off by the next `/` (the meter restarted, or bytes were
/// lost) is reported as [`TelegramError::Truncated`], and so is one that grows past
/// [`MAX_TELEGRAM`].
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Bytes skipped before a header, since the last telegram (noise on the line).
    skipped: usize,
}

impl Framer {
    /// Takes more bytes; returns every telegram (or framing error) they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<Telegram, TelegramError>> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'/' {
                if !self.buf.is_empty() {
                    out.push(Err(TelegramError::Truncated(self.buf.len())));
                }
                self.buf.clear();
                self.buf.push(b);
                continue;
            }
            if self.buf.is_empty() {
                // the line end after a telegram's CRC is not noise
                if !matches!(b, b'\r' | b'\n') {
                    self.skipped += 1;
                }
                continue;
            }
            self.buf.push(b);
            let len = self.buf.len();
            if len >= 5 && self.buf[len - 5] == b'!' {
                out.push(Telegram::parse(&self.buf));
                self.buf.clear();
                self.skipped = 0;
            } else if len > MAX_TELEGRAM {
                out.push(Err(TelegramError::TooLong));
                self.buf.clear();
            }
        }
        out
    }

    /// Bytes skipped outside telegrams since the last whole one.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CRC-16/ARC's check value from the catalogue of CRC parameters ("123456789" → 0xBB3D).
    #[test]
    fn the_crc_is_crc16_arc() {
        assert_eq!(crc16(b"123456789"), 0xBB3D);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn obis_ids_numbers_and_groups() {
        assert!(is_obis("1-0:1.8.1") && is_obis("0-1:24.2.1") && is_obis("1-3:0.2.8"));
        assert!(!is_obis("1-0:1.8") && !is_obis("1,0:2.7.0") && !is_obis("1-021.7.0") && !is_obis(""));
        assert!(is_decimal("001234.567") && is_decimal("003"));
        assert!(!is_decimal("1.") && !is_decimal(".5") && !is_decimal("-1.0") && !is_decimal("1e3"));
        assert_eq!(groups("(a)(b*kWh)"), Some(vec!["a".into(), "b*kWh".into()]));
        assert_eq!(groups("(a"), None);
        assert_eq!(groups("(a(b))"), None);
    }

    #[test]
    fn a_telegram_with_a_bad_line_or_header_is_refused_by_name() {
        let seal = |body: &str| format!("{body}!{:04X}\r\n", crc16(format!("{body}!").as_bytes()));
        let t = seal("/XMX5LGF0010456446050\r\n\r\n1-0:1.8.1(000095.052*kWh!");
        // the `!` inside the value ends the telegram early: the rest is not four digits
        assert!(matches!(
            Telegram::parse(t.as_bytes()),
            Err(TelegramError::BadCrcDigits(_))
        ));
        let t = seal("/XMX5LGF0010456446050\r\n\r\n1-021.7.0(00.000*kW)\r\n");
        assert!(matches!(
            Telegram::parse(t.as_bytes()),
            Err(TelegramError::Malformed { line: 3, .. })
        ));
        let t = seal("/XMX5LGF0010456446050\r\n\r\n1-0:1.8.1(000095.052*kWh\r\n");
        assert!(matches!(
            Telegram::parse(t.as_bytes()),
            Err(TelegramError::Malformed { line: 3, .. })
        ));
        let t = seal("/X\r\n\r\n1-0:1.8.1(000095.052*kWh)\r\n");
        assert!(matches!(
            Telegram::parse(t.as_bytes()),
            Err(TelegramError::BadHeader(_))
        ));
        assert_eq!(Telegram::parse(b"1-0:1.8.1(1*kWh)"), Err(TelegramError::NoHeader));
        assert!(matches!(
            Telegram::parse(b"/XMX5LGF\r\n\r\n1-0:1.8.1(1*kWh)\r\n"),
            Err(TelegramError::Truncated(_))
        ));
    }

    #[test]
    fn values_are_numbers_with_the_expected_unit_or_a_named_error() {
        let body = "/XMX5LGF0010456446050\r\n\r\n1-0:1.8.1(000095.052*kWh)\r\n1-0:1.7.0(00.6A3*kW)\r\n\
                    1-0:2.7.0(00.653*W)\r\n0-1:24.2.1(210610102500S)(00012.345*m3)\r\n";
        let t = format!("{body}!{:04X}\r\n", crc16(format!("{body}!").as_bytes()));
        let t = Telegram::parse(t.as_bytes()).unwrap();
        assert_eq!(t.number("1-0:1.8.1", "kWh"), Ok(95.052));
        assert_eq!(t.number("0-1:24.2.1", "m3"), Ok(12.345));
        assert!(matches!(t.number("1-0:1.7.0", "kW"), Err(ValueError::NotNumber { .. })));
        assert!(matches!(t.number("1-0:2.7.0", "kW"), Err(ValueError::Unit { .. })));
        assert_eq!(
            t.number("1-0:2.8.1", "kWh"),
            Err(ValueError::Missing("1-0:2.8.1".into()))
        );
    }
}
