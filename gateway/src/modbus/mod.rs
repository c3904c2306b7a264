//! Talking to devices over Modbus TCP or Modbus RTU (RS-485), the way a field bus needs it:
//! - every request has a timeout (tokio-modbus has none of its own);
//! - requests on one bus keep a minimum gap (many RS-485 bridges and inverters drop requests
//!   that follow too closely, and RTU needs its silent interval between frames); the units on
//!   one serial line share one [`Bus`], so their requests never overlap;
//! - a link failure (connect, timeout, I/O, garbled answer) is kept apart from a device's Modbus
//!   exception: the first drops the connection and is retried with [`Backoff`]; the second is the
//!   device's answer and names its code;
//! - a profile's points are read in as few requests as possible: registers of one table that lie
//!   close together are read in one request of at most 125 ([`plan`]).
//! - every answer is checked against its request (`frame.rs`: unit, function or its exception,
//!   byte count, a write's echo); on RTU (`rtu.rs`) the line is kept clean around faults so that a
//!   late answer is never the next request's; on TCP (`tcp.rs`) answers with an older
//!   transaction id are dropped;
//! - the installer's tools try a request again after a link failure ([`Link::with_retries`]) and
//!   see what a unit answered ([`Link::heard`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_modbus::ExceptionCode;

use self::frame::{Answer, Request};
pub use self::frame::{FrameError, crc16};
use self::rtu::RtuLine;
pub use self::rtu::{Stream, inter_frame_gap};
pub use self::tcp::TIMEOUTS_TO_RECONNECT;
use self::tcp::TcpConn;
use crate::profile::{Point, Profile, Table, ValueType};

mod frame;
mod rtu;
mod tcp;

/// The most registers one read may ask for (Modbus limit for function 0x03/0x04).
pub const MAX_REGISTERS: u16 = 125;
/// Unused registers a read may span to join two points into one request.
pub const MAX_GAP: u16 = 8;

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// 8N1, the most common setting of meters.
    #[default]
    None,
    /// 8E1, the Modbus specification's default.
    Even,
    /// 8O1.
    Odd,
}

/// Where a device is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Modbus TCP (the device itself, or an RS-485 to Ethernet bridge).
    Tcp(SocketAddr),
    /// Modbus RTU on a serial line (an RS-485 adapter such as `/dev/ttyUSB0`).
    Serial {
        /// The serial device.
        path: PathBuf,
        /// Bits per second.
        baud: u32,
        /// Parity (one stop bit with parity, as the Modbus specification asks, else one).
        parity: Parity,
    },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Serial { path, baud, .. } => write!(f, "{} at {baud} Bd", path.display()),
        }
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Self {
        Self::Tcp(addr)
    }
}

/// What went wrong on the link (not the device's own answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkFault {
    /// The connection (or the serial port) could not be made.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// Nothing came back in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Part of an answer came back in time.
    #[error("answer cut short: {got} bytes within {after:?}")]
    Truncated {
        /// Bytes that came.
        got: usize,
        /// The timeout.
        after: Duration,
    },
    /// Bytes that are not the answer to the request.
    #[error("garbled answer: {0}")]
    Garbled(FrameError),
    /// The serial line kept talking after a fault.
    #[error("the line did not go quiet within {0:?}")]
    Noisy(Duration),
    /// Reading or writing failed.
    #[error("i/o: {0}")]
    Io(String),
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModbusError {
    /// No answer, a broken connection or a garbled answer: the link, not the device.
    #[error("link to {endpoint} (unit {unit}): {what}: {fault}")]
    Link {
        /// Where the device is.
        endpoint: Endpoint,
        /// Unit id.
        unit: u8,
        /// The request, e.g. `read holding 40084+2`.
        what: String,
        /// What happened.
        fault: LinkFault,
    },
    /// The device answered with a Modbus exception.
    #[error("device {endpoint} (unit {unit}) refused {what}: exception {code:?}")]
    Exception {
        /// Where the device is.
        endpoint: Endpoint,
        /// Unit id.
        unit: u8,
        /// The request, e.g. `read holding 40084+2`.
        what: String,
        /// The exception.
        code: ExceptionCode,
    },
}

impl ModbusError {
    /// True for link failures (retry with backoff), false for device exceptions.
    pub fn is_link(&self) -> bool {
        matches!(self, Self::Link { .. })
    }

    /// True when the link could not be made at all (nothing listens there).
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            Self::Link {
                fault: LinkFault::Connect(_),
                ..
            }
        )
    }

    /// True when the request got no (whole) answer in time: worth another try.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Self::Link {
                fault: LinkFault::Timeout(_) | LinkFault::Truncated { .. },
                ..
            }
        )
    }
}

/// An open connection: a serial line or a TCP socket.
enum Conn {
    Rtu(RtuLine),
    Tcp(TcpConn),
}

struct BusState {
    conn: Option<Conn>,
    last: Option<Instant>,
}

/// One connection (a TCP socket or a serial line) and the units behind it. Requests of all its
/// [`Link`]s take turns and keep the bus's minimum gap; the connection is opened on demand and
/// dropped after a link failure.
#[derive(Clone)]
pub struct Bus {
    endpoint: Endpoint,
    min_gap: Duration,
    state: Arc<Mutex<BusState>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("endpoint", &self.endpoint).finish()
    }
}

impl Bus {
    /// A bus (not yet connected) with a minimum gap between requests.
    pub fn new(endpoint: Endpoint, min_gap: Duration) -> Self {
        Self {
            endpoint,
            min_gap,
            state: Arc::new(Mutex::new(BusState { conn: None, last: None })),
        }
    }

    /// Modbus RTU at `baud` over a stream opened elsewhere (a test's in-memory line, say),
    /// named `path` in errors. After an I/O error the bus tries to open `path` itself.
    pub fn rtu_over(path: impl Into<PathBuf>, baud: u32, stream: impl Stream + 'static, min_gap: Duration) -> Self {
        let endpoint = Endpoint::Serial {
            path: path.into(),
            baud,
            parity: Parity::None,
        };
        Self {
            endpoint,
            min_gap,
            state: Arc::new(Mutex::new(BusState {
                conn: Some(Conn::Rtu(RtuLine::new(Box::new(stream), baud))),
                last: None,
            })),
        }
    }

    /// Where the bus goes.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// A link to `unit` on this bus, with a timeout per request.
    pub fn link(&self, unit: u8, timeout: Duration) -> Link {
        Link {
            bus: self.clone(),
            unit,
            timeout,
            retries: 0,
            last_tries: 0,
            heard: Heard::default(),
        }
    }
}

async fn connect(endpoint: &Endpoint) -> std::io::Result<Conn> {
    match endpoint {
        Endpoint::Tcp(addr) => Ok(Conn::Tcp(TcpConn::connect(*addr).await?)),
        Endpoint::Serial { path, baud, parity } => {
            let port = open_serial(path, *baud, *parity)?;
            Ok(Conn::Rtu(RtuLine::new(Box::new(port), *baud)))
        }
    }
}

/// Opens a serial line: 8 data bits, `parity`, one stop bit (Modbus RTU devices, and the P1
/// port's 115200 8N1).
pub fn open_serial(path: &std::path::Path, baud: u32, parity: Parity) -> std::io::Result<tokio_serial::SerialStream> {
    let builder = tokio_serial::new(path.to_string_lossy(), baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(match parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Even => tokio_serial::Parity::Even,
            Parity::Odd => tokio_serial::Parity::Odd,
        })
        .stop_bits(tokio_serial::StopBits::One);
    tokio_serial::SerialStream::open(&builder).map_err(std::io::Error::from)
}

/// A link to one unit on a [`Bus`].
#[derive(Debug, Clone)]
pub struct Link {
    bus: Bus,
    unit: u8,
    timeout: Duration,
    retries: u32,
    last_tries: u32,
    heard: Heard,
}

/// What a unit has said on a link so far (for the installer's tools: a unit that answered
/// anything is reported).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heard {
    /// Requests it answered with data.
    pub answers: u32,
    /// The exceptions it answered with, each once, in the order first seen.
    pub exceptions: Vec<ExceptionCode>,
    /// Requests that failed on the link after every try.
    pub failures: u32,
    /// Requests that took more than one try.
    pub retried: u32,
    /// The most tries one request took.
    pub most_tries: u32,
}

impl Heard {
    /// It answered something: data or an exception other than a gateway's "no such device"
    /// (0x0A, 0x0B: a Modbus TCP gateway's word for a unit that is not behind it).
    pub fn anything(&self) -> bool {
        self.answers > 0 || self.exceptions.iter().any(|c| !is_gateway_silence(*c))
    }
}

/// A Modbus TCP gateway saying that nothing answers at this unit.
pub fn is_gateway_silence(code: ExceptionCode) -> bool {
    matches!(
        code,
        ExceptionCode::GatewayPathUnavailable | ExceptionCode::GatewayTargetDevice
    )
}

impl Link {
    /// A link to `unit` on a Modbus TCP device of its own (not yet connected), with a timeout per
    /// request and a minimum gap between requests.
    pub fn new(addr: SocketAddr, unit: u8, timeout: Duration, min_gap: Duration) -> Self {
        Bus::new(Endpoint::Tcp(addr), min_gap).link(unit, timeout)
    }

    /// Where the device is.
    pub fn endpoint(&self) -> &Endpoint {
        &self.bus.endpoint
    }

    /// The unit id.
    pub fn unit(&self) -> u8 {
        self.unit
    }

    /// The link, trying a request that failed on the link (no answer, a garbled one) up to
    /// `retries` more times; a refused connection is not tried again. `run` uses none: it
    /// tries again at the next poll, after a [`Backoff`].
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// How many tries the last request took (more than 1 when it was retried).
    pub fn last_tries(&self) -> u32 {
        self.last_tries
    }

    /// What the unit has said on this link so far.
    pub fn heard(&self) -> &Heard {
        &self.heard
    }

    /// A request, tried again after link failures as [`Link::with_retries`] says.
    async fn request_tried(&mut self, req: Request<'_>) -> Result<Vec<u16>, ModbusError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let result = self.request(req.clone()).await;
            match &result {
                Err(e) if e.is_link() && !e.is_connect() && tries <= self.retries => {
                    tracing::debug!(error = %e, tries, "trying again");
                    continue;
                }
                Ok(_) => self.heard.answers += 1,
                Err(ModbusError::Exception { code, .. }) => {
                    if !self.heard.exceptions.contains(code) {
                        self.heard.exceptions.push(*code);
                    }
                }
                Err(ModbusError::Link { .. }) => self.heard.failures += 1,
            }
            self.last_tries = tries;
            self.heard.most_tries = self.heard.most_tries.max(tries);
            if tries > 1 {
                self.heard.retried += 1;
            }
            return result;
        }
    }

    fn link_error(&self, what: impl Into<String>, fault: LinkFault) -> ModbusError {
        ModbusError::Link {
            endpoint: self.bus.endpoint.clone(),
            unit: self.unit,
            what: what.into(),
            fault,
        }
    }

    /// One request, with the bus to itself: waits out the gap, connects if needed, and checks
    /// the answer against the request; the connection is dropped after an I/O error (and over
    /// TCP after garbled bytes or repeated timeouts).
    async fn request(&self, req: Request<'_>) -> Result<Vec<u16>, ModbusError> {
        let what = match &req {
            Request::Read(table, address, count) => format!("read {table:?} {address}+{count}").to_lowercase(),
            Request::Write(address, words) => format!("write holding {address}+{}", words.len()),
            Request::WriteSingle(address, _) => format!("write single holding {address}"),
        };
        let mut bus = self.bus.state.lock().await;
        if let Some(last) = bus.last {
            tokio::time::sleep_until(last + self.bus.min_gap).await;
        }
        if bus.conn.is_none() {
            let conn = tokio::time::timeout(self.timeout, connect(&self.bus.endpoint))
                .await
                .map_err(|_| {
                    self.link_error(
                        &what,
                        LinkFault::Connect(format!("no connection within {:?}", self.timeout)),
                    )
                })?
                .map_err(|e| self.link_error(&what, LinkFault::Connect(e.to_string())))?;
            bus.conn = Some(conn);
        }
        let answer = match bus.conn.as_mut() {
            Some(Conn::Rtu(line)) => line.call(self.unit, &req, self.timeout).await,
            Some(Conn::Tcp(conn)) => conn.call(self.unit, &req, self.timeout).await,
            None => Err((LinkFault::Io("not connected".into()), true)),
        };
        bus.last = Some(Instant::now());
        match answer {
            Ok(Answer::Words(words)) => Ok(words),
            Ok(Answer::Exception(code)) => Err(ModbusError::Exception {
                endpoint: self.bus.endpoint.clone(),
                unit: self.unit,
                what,
                code,
            }),
            Err((fault, drop)) => {
                if drop {
                    bus.conn = None;
                }
                Err(self.link_error(what, fault))
            }
        }
    }

    /// Reads `count` registers from `table` at `address`.
    pub async fn read(&mut self, table: Table, address: u16, count: u16) -> Result<Vec<u16>, ModbusError> {
        self.request_tried(Request::Read(table, address, count)).await
    }

    /// Writes holding registers at `address` (function 16).
    pub async fn write(&mut self, address: u16, words: &[u16]) -> Result<(), ModbusError> {
        self.request_tried(Request::Write(address, words)).await.map(|_| ())
    }

    /// Writes one holding register at `address` with function 06, for devices that take no
    /// other write.
    pub async fn write_single(&mut self, address: u16, word: u16) -> Result<(), ModbusError> {
        self.request_tried(Request::WriteSingle(address, word))
            .await
            .map(|_| ())
    }
}

/// Retry delays after link failures: 2 s, doubling, at most 5 minutes; reset on success.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    first: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(2), Duration::from_secs(300))
    }
}

impl Backoff {
    /// Delays from `first`, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            next: first,
            first,
            max,
        }
    }

    /// The delay before the next try; the one after is twice as long (up to the maximum).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// One read request: registers `start..start+count` of `table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Table.
    pub table: Table,
    /// First register.
    pub start: u16,
    /// Registers.
    pub count: u16,
}

impl Span {
    fn covers(&self, table: Table, first: u32, last: u32) -> bool {
        self.table == table && first >= u32::from(self.start) && last < u32::from(self.start) + u32::from(self.count)
    }
}

/// The registers a point needs: its own and its scale factor's.
fn needs(p: &Point) -> Vec<(u32, u32)> {
    let mut v = vec![(u32::from(p.address), p.last_register())];
    if let Some(sf) = p.scale_factor_at {
        v.push((u32::from(sf), u32::from(sf)));
    }
    v
}

/// The fewest reads (each ≤ [`MAX_REGISTERS`], joining ranges at most [`MAX_GAP`] apart) that
/// cover every point of `points` with its scale factor.
pub fn plan<'a>(points: impl IntoIterator<Item = &'a Point>) -> Vec<Span> {
    let mut ranges: Vec<(Table, u32, u32)> = points
        .into_iter()
        .flat_map(|p| needs(p).into_iter().map(move |(a, b)| (p.table, a, b)))
        .collect();
    ranges.sort_unstable();
    let mut spans: Vec<(Table, u32, u32)> = Vec::new();
    for (table, first, last) in ranges {
        match spans.last_mut() {
            Some((t, start, end))
                if *t == table
                    && first <= *end + 1 + u32::from(MAX_GAP)
                    && last.max(*end) - *start < u32::from(MAX_REGISTERS) =>
            {
                *end = last.max(*end);
            }
            _ => spans.push((table, first, last)),
        }
    }
    spans
        .into_iter()
        .map(|(table, start, end)| Span {
            table,
            start: start as u16,
            count: (end - start + 1) as u16,
        })
        .collect()
}

/// A point's value: `Ok(None)` when the device says "not implemented".
pub type PointValue = Result<Option<f64>, ModbusError>;

/// Reads every point of `profile` through `link`, in as few requests as [`plan`] gives. A failed
/// request fails the points it covered; the others are still read.
pub async fn read_points(link: &mut Link, profile: &Profile) -> Vec<(String, PointValue)> {
    read_points_tried(link, profile)
        .await
        .into_iter()
        .map(|(name, value, _)| (name, value))
        .collect()
}

/// [`read_points`], with how many tries each point's value took (the most of its requests').
pub async fn read_points_tried(link: &mut Link, profile: &Profile) -> Vec<(String, PointValue, u32)> {
    let spans = plan(&profile.points);
    let mut read: Vec<(Span, Result<Vec<u16>, ModbusError>)> = Vec::with_capacity(spans.len());
    let mut tries: Vec<(Span, u32)> = Vec::with_capacity(spans.len());
    for span in spans {
        let words = link.read(span.table, span.start, span.count).await;
        tries.push((span, link.last_tries()));
        read.push((span, words));
    }
    // A device that refuses a joined read (an undefined register in the gap) is asked again
    // point by point, so one hole does not cost the points around it.
    let refused: Vec<Span> = read
        .iter()
        .filter(|(_, r)| matches!(r, Err(ModbusError::Exception { .. })))
        .map(|(s, _)| *s)
        .collect();
    for span in refused {
        for p in profile
            .points
            .iter()
            .filter(|p| needs(p).iter().any(|&(a, b)| span.covers(p.table, a, b)))
        {
            for single in plan([p]) {
                if single != span {
                    let words = link.read(single.table, single.start, single.count).await;
                    tries.push((single, link.last_tries()));
                    read.push((single, words));
                }
            }
        }
    }
    let order = profile.device.word_order;
    profile
        .points
        .iter()
        .map(|p| {
            let words_at = |first: u32, last: u32| -> Result<Vec<u16>, ModbusError> {
                // a successful read first (the retry of a refused joined read)
                let (span, words) = read
                    .iter()
                    .filter(|(s, _)| s.covers(p.table, first, last))
                    .min_by_key(|(_, r)| r.is_err())
                    .ok_or_else(|| {
                        link.link_error(
                            format!("no read planned for {}", p.name),
                            LinkFault::Io("internal".into()),
                        )
                    })?;
                let words = words.as_ref().map_err(Clone::clone)?;
                let from = (first - u32::from(span.start)) as usize;
                Ok(words[from..=(last - u32::from(span.start)) as usize].to_vec())
            };
            let value = (|| {
                let raw_words = words_at(u32::from(p.address), p.last_register())?;
                let raw = match p.ty {
                    ValueType::U16 | ValueType::I16 => u32::from(raw_words[0]),
                    _ => ValueType::U32.decode(&raw_words, order).map_or(0, |v| v as u32),
                };
                if p.absent_raw == Some(raw) {
                    return Ok(None);
                }
                let scale = p.scale;
                if let Some(sf) = p.scale_factor_at {
                    let sf_word = words_at(u32::from(sf), u32::from(sf))?[0];
                    if sf_word == 0x8000 {
                        return Ok(None); // the scale factor itself is "not implemented"
                    }
                    return Ok(p
                        .ty
                        .decode(&raw_words, order)
                        .map(|v| scaled(scaled(v, scale), 10f64.powi(i32::from(sf_word as i16)))));
                }
                Ok(p.ty.decode(&raw_words, order).map(|v| scaled(v, scale)))
            })();
            let took = needs(p)
                .iter()
                .filter_map(|&(a, b)| {
                    tries
                        .iter()
                        .filter(|(s, _)| s.covers(p.table, a, b))
                        .map(|(_, t)| *t)
                        .min()
                })
                .max()
                .unwrap_or(0);
            (p.name.clone(), value, took)
        })
        .collect()
}

/// `v × scale`, computed as a division where the scale is 1/10ⁿ, so that a decimal value is the
/// nearest number to it (2301 × 0.1 is 230.10000000000002, 2301 / 10 is 230.1).
pub fn scaled(v: f64, scale: f64) -> f64 {
    let inverse = 1.0 / scale;
    if scale < 1.0 && scale > 0.0 && (inverse - inverse.round()).abs() < 1e-9 * inverse {
        v / inverse.round()
    } else {
        v * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(table: Table, address: u16, ty: ValueType, sf: Option<u16>) -> Point {
        Point {
            name: format!("{table:?}{address}"),
            quantity: None,
            table,
            address,
            ty,
            scale: 1.0,
            unit: String::new(),
            writable: None,
            scale_factor_at: sf,
            absent_raw: None,
        }
    }

    #[test]
    fn plan_joins_close_registers_and_keeps_tables_and_limits_apart() {
        let points = [
            point(Table::Input, 0, ValueType::F32, None),
            point(Table::Input, 6, ValueType::F32, None),
            point(Table::Input, 52, ValueType::F32, None), // 44 registers on: a new read
            point(Table::Input, 72, ValueType::F32, None),
            point(Table::Holding, 72, ValueType::U16, None),
            point(Table::Holding, 40084, ValueType::I16, Some(40085)),
            point(Table::Holding, 40094, ValueType::U32, Some(40096)),
        ];
        assert_eq!(
            plan(&points),
            vec![
                Span {
                    table: Table::Input,
                    start: 0,
                    count: 8
                },
                Span {
                    table: Table::Input,
                    start: 52,
                    count: 2
                },
                Span {
                    table: Table::Input,
                    start: 72,
                    count: 2
                },
                Span {
                    table: Table::Holding,
                    start: 72,
                    count: 1
                },
                Span {
                    table: Table::Holding,
                    start: 40084,
                    count: 13
                },
            ]
        );
        // never more than 125 registers in one read
        let many: Vec<Point> = (0..200)
            .map(|i| point(Table::Holding, i, ValueType::U16, None))
            .collect();
        let spans = plan(&many);
        assert_eq!(spans.iter().map(|s| s.count).collect::<Vec<_>>(), vec![125, 75]);
    }

    #[test]
    fn scaled_values_have_the_digits_of_their_scale() {
        assert_eq!(2301.0 * 0.1, 230.100_000_000_000_02, "the float noise this avoids");
        assert_eq!(scaled(2301.0, 0.1).to_string(), "230.1");
        assert_eq!(scaled(2301.0, 10f64.powi(-1)).to_string(), "230.1");
        assert_eq!(scaled(49_987.0, 0.001).to_string(), "49.987");
        assert_eq!(scaled(5.0, 0.01).to_string(), "0.05");
        assert_eq!(scaled(123.0, 10.0).to_string(), "1230");
        assert_eq!(scaled(7.0, 0.25).to_string(), "1.75");
    }

    #[test]
    fn backoff_doubles_to_five_minutes_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..10).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(2));
    }
}
