//! Device profiles: what a device's Modbus registers mean, as data in `hardware/*.toml`.
//!
//! ```toml
//! [device]
//! name = "Eastron SDM630"            # shown to installers
//! manufacturer = "Eastron"
//! kind = "grid_meter"                # grid_meter | pv_inverter | battery | ev_charger | sub_meter
//! default_unit = 1                   # Modbus unit id unless configured
//! word_order = "big"                 # "big" (ABCD), "little" (CDAB: low word first), "big_byte_swap"
//!                                    # (BADC: bytes swapped in each register), "little_byte_swap" (DCBA)
//! capacity_wh = 10000                # batteries only: usable capacity, Wh (for the trading agent)
//!
//! [[points]]
//! name = "power"                     # unique in the profile
//! quantity = "power_w"               # what telemetry field it feeds (optional, see `Quantity`)
//! table = "input"                    # input | holding
//! address = 52                       # register address as sent on the wire (0-based)
//! type = "f32"                       # u16 | i16 | u32 | i32 | f32 (one or two registers),
//!                                    # u64 | f64 (four registers; the word order applies to all four)
//! scale = 1.0                        # engineering value = raw × scale (default 1)
//! unit = "W"
//! writable = { min = 0, max = 5000, trips_on_zero = false }   # setpoints only; limits in `unit`;
//!                                    # `function = 6` for a one-register point written with
//!                                    # function 06 (default 16)
//! scale_factor_at = 40085            # optional: register with a power-of-ten scale (SunSpec sunssf)
//! absent_raw = 32768                 # optional: raw value meaning "not implemented" (read as absent;
//!                                    # 16- and 32-bit types only)
//! ```
//!
//! Loading checks the TOML against this schema (unknown keys refused) and then the meaning:
//! unique point names, registers that fit the address space, writable points in the holding
//! table with `min ≤ max`, function 06 only for one-register points. Every error names the file,
//! and the line and key or the point.

use std::path::{Path, PathBuf};

use gridshare_domain::wire::DeviceKind;
use serde::Deserialize;

/// A device profile.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The device.
    pub device: DeviceInfo,
    /// Its points.
    #[serde(default)]
    pub points: Vec<Point>,
}

/// What the device is.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    /// Model name.
    pub name: String,
    /// Maker.
    pub manufacturer: String,
    /// Its role in the home.
    pub kind: DeviceKind,
    /// Modbus unit id unless configured otherwise.
    #[serde(default = "one")]
    pub default_unit: u8,
    /// Order of the two words of 32-bit values.
    #[serde(default)]
    pub word_order: WordOrder,
    /// A battery's usable capacity, Wh (its nameplate; the trading agent needs it).
    #[serde(default)]
    pub capacity_wh: Option<f64>,
}

const fn one() -> u8 {
    1
}

/// Order of the two 16-bit words of a 32-bit value, and of the two bytes in each register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    /// High word first, high byte first: ABCD (Modbus convention, SunSpec, Eastron).
    #[default]
    Big,
    /// Low word first: CDAB.
    Little,
    /// High word first, bytes swapped in each register: BADC.
    BigByteSwap,
    /// Low word first, bytes swapped in each register: DCBA.
    LittleByteSwap,
}

impl WordOrder {
    fn swaps_bytes(self) -> bool {
        matches!(self, Self::BigByteSwap | Self::LittleByteSwap)
    }

    fn low_word_first(self) -> bool {
        matches!(self, Self::Little | Self::LittleByteSwap)
    }
}

/// Which register table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Input registers (function 0x04), read-only.
    Input,
    /// Holding registers (function 0x03 to read, 0x10 to write).
    Holding,
}

/// How a value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    /// Unsigned 16-bit.
    U16,
    /// Signed 16-bit.
    I16,
    /// Unsigned 32-bit (two registers).
    U32,
    /// Signed 32-bit (two registers).
    I32,
    /// IEEE 754 single (two registers).
    F32,
    /// Unsigned 64-bit (four registers; ABB's energy counters).
    U64,
    /// IEEE 754 double (four registers; Alfen's energy counters).
    F64,
}

impl ValueType {
    /// Registers it takes.
    pub const fn registers(self) -> u16 {
        match self {
            Self::U16 | Self::I16 => 1,
            Self::U32 | Self::I32 | Self::F32 => 2,
            Self::U64 | Self::F64 => 4,
        }
    }

    /// The value of `words` (as many as [`Self::registers`]) in `order`, before scaling.
    pub fn decode(self, words: &[u16], order: WordOrder) -> Option<f64> {
        let swapped: Vec<u16>;
        let words = if order.swaps_bytes() {
            swapped = words.iter().map(|w| w.swap_bytes()).collect();
            &swapped[..]
        } else {
            words
        };
        let pair = || -> Option<u32> {
            let (hi, lo) = if order.low_word_first() {
                (*words.get(1)?, *words.first()?)
            } else {
                (*words.first()?, *words.get(1)?)
            };
            Some((u32::from(hi) << 16) | u32::from(lo))
        };
        // four words, most significant first unless the order puts the low word first
        let quad = || -> Option<u64> {
            let four = words.get(..4)?;
            let mut v = 0u64;
            for i in 0..4 {
                let w = if order.low_word_first() { four[3 - i] } else { four[i] };
                v = (v << 16) | u64::from(w);
            }
            Some(v)
        };
        Some(match self {
            Self::U16 => f64::from(*words.first()?),
            Self::I16 => f64::from(*words.first()? as i16),
            Self::U32 => f64::from(pair()?),
            Self::I32 => f64::from(pair()? as i32),
            // the float as the device meant it: 230.1, not 230.10000610351562
            Self::F32 => shortest(f32::from_bits(pair()?)),
            // exact up to 2^53 (an energy counter in 0.01 kWh reaches that after 10^11 MWh)
            Self::U64 => quad()? as f64,
            Self::F64 => f64::from_bits(quad()?),
        })
    }

    /// The registers for `value` (before scaling), or `None` when it does not fit the type.
    pub fn encode(self, value: f64, order: WordOrder) -> Option<Vec<u16>> {
        let split = |v: u32| -> Vec<u16> {
            let (hi, lo) = ((v >> 16) as u16, v as u16);
            if order.low_word_first() {
                vec![lo, hi]
            } else {
                vec![hi, lo]
            }
        };
        let split4 = |v: u64| -> Vec<u16> {
            let mut w: Vec<u16> = (0..4).map(|i| (v >> (48 - 16 * i)) as u16).collect();
            if order.low_word_first() {
                w.reverse();
            }
            w
        };
        let int = |lo: f64, hi: f64| (value.is_finite() && value >= lo && value <= hi).then(|| value.round());
        let words = match self {
            Self::U16 => vec![int(0.0, f64::from(u16::MAX))? as u16],
            Self::I16 => vec![int(f64::from(i16::MIN), f64::from(i16::MAX))? as i16 as u16],
            Self::U32 => split(int(0.0, f64::from(u32::MAX))? as u32),
            Self::I32 => split(int(f64::from(i32::MIN), f64::from(i32::MAX))? as i32 as u32),
            Self::F32 => split((value as f32).to_bits()),
            // 2^64 itself is not a u64
            Self::U64 => split4(int(0.0, 18_446_744_073_709_549_568.0)? as u64),
            Self::F64 => split4(value.to_bits()),
        };
        Some(if order.swaps_bytes() {
            words.into_iter().map(u16::swap_bytes).collect()
        } else {
            words
        })
    }
}

/// What telemetry field a point feeds, or which setpoint it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// Active power, W (load convention at the grid meter: + import, − export).
    PowerW,
    /// Energy imported (or produced, for an inverter), Wh counter.
    EnergyInWh,
    /// Energy exported, Wh counter.
    EnergyOutWh,
    /// State of charge, ‰.
    SocPermille,
    /// A device status code.
    Status,
    /// Battery power setpoint, W (+ charge, − discharge).
    BatterySetpointW,
    /// EV charging current limit, A.
    EvCurrentLimitA,
    /// Inverter export (active power) limit, W.
    ExportLimitW,
}

/// Limits of a writable point.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Writable {
    /// Lowest value that may be written (in the point's unit).
    pub min: f64,
    /// Highest value.
    pub max: f64,
    /// The device trips (shuts down) when 0 is written: never write 0 to it.
    #[serde(default)]
    pub trips_on_zero: bool,
    /// The Modbus function it is written with: 16 (write multiple registers, the default) or 6
    /// (write single register, for one-register points of devices that take no other write).
    #[serde(default)]
    pub function: WriteFunction,
}

/// The Modbus function a setpoint is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "u8")]
pub enum WriteFunction {
    /// Function 16 (0x10), write multiple registers.
    #[default]
    Multiple,
    /// Function 06, write single register.
    Single,
}

impl TryFrom<u8> for WriteFunction {
    type Error = String;

    fn try_from(code: u8) -> Result<Self, String> {
        match code {
            16 => Ok(Self::Multiple),
            6 => Ok(Self::Single),
            other => Err(format!(
                "write function {other} is not one the gateway writes with (6 or 16)"
            )),
        }
    }
}

/// One register value of a device.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// Name, unique in the profile.
    pub name: String,
    /// The telemetry field or setpoint it is, if any.
    pub quantity: Option<Quantity>,
    /// Register table.
    pub table: Table,
    /// First register (0-based, as on the wire).
    pub address: u16,
    /// Encoding.
    #[serde(rename = "type")]
    pub ty: ValueType,
    /// Engineering value = raw × scale.
    #[serde(default = "unit_scale")]
    pub scale: f64,
    /// Unit of the engineering value.
    pub unit: String,
    /// Present for setpoints.
    pub writable: Option<Writable>,
    /// A register holding a power-of-ten scale factor (int16, SunSpec's `sunssf`): engineering
    /// value = raw × scale × 10^sf. Read in the same request as the value when they are close.
    pub scale_factor_at: Option<u16>,
    /// The raw value meaning "not implemented" (SunSpec: 0x8000 for int16, 0xFFFF for uint16):
    /// read as absent, never as a number.
    pub absent_raw: Option<u32>,
}

const fn unit_scale() -> f64 {
    1.0
}

impl Point {
    /// The last register it takes.
    pub fn last_register(&self) -> u32 {
        u32::from(self.address) + u32::from(self.ty.registers()) - 1
    }
}

/// A profile file's text, or [`ProfileError::Read`] naming it.
pub(crate) fn read_profile(path: &Path) -> Result<String, ProfileError> {
    std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A profile's TOML, parsed (not yet checked), or [`ProfileError::Parse`] naming the file.
pub(crate) fn parse_profile<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ProfileError> {
    toml::from_str(text).map_err(|e| ProfileError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}

/// A profile that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("profile {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML for the schema (the message names line, column and key).
    #[error("profile {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Valid TOML that makes no sense.
    #[error("profile {path}: point {point:?}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The point.
        point: String,
        /// What is wrong.
        message: String,
    },
}

impl Profile {
    /// The kind of device, as a profile names it (`grid_meter`, `pv_inverter`, ...).
    pub fn kind_name(&self) -> String {
        serde_json::to_value(self.device.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        Self::parse(path, &read_profile(path)?)
    }

    /// Parses and checks profile text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ProfileError> {
        let profile: Self = parse_profile(path, text)?;
        profile.check(path)?;
        Ok(profile)
    }

    fn check(&self, path: &Path) -> Result<(), ProfileError> {
        let bad = |point: &Point, message: String| ProfileError::Invalid {
            path: path.to_owned(),
            point: point.name.clone(),
            message,
        };
        let mut names = std::collections::HashSet::new();
        for p in &self.points {
            if p.name.is_empty() || !names.insert(p.name.as_str()) {
                return Err(bad(p, "names must be unique and not empty".into()));
            }
            if p.last_register() > u32::from(u16::MAX) {
                return Err(bad(p, format!("{:?} at {} runs past register 65535", p.ty, p.address)));
            }
            if !(p.scale.is_finite() && p.scale != 0.0) {
                return Err(bad(
                    p,
                    format!("scale must be a finite non-zero number, got {}", p.scale),
                ));
            }
            if p.absent_raw.is_some() && p.ty.registers() > 2 {
                return Err(bad(p, "absent_raw applies to 16- and 32-bit values only".into()));
            }
            if let Some(w) = p.writable {
                if p.table != Table::Holding {
                    return Err(bad(p, "only holding registers can be written".into()));
                }
                if !(w.min.is_finite() && w.max.is_finite() && w.min <= w.max) {
                    return Err(bad(p, format!("writable needs min ≤ max, got {} and {}", w.min, w.max)));
                }
                if w.function == WriteFunction::Single && p.ty.registers() != 1 {
                    return Err(bad(
                        p,
                        format!(
                            "function 6 writes one register, but {:?} takes {}",
                            p.ty,
                            p.ty.registers()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A point by name.
    pub fn point(&self, name: &str) -> Option<&Point> {
        self.points.iter().find(|p| p.name == name)
    }

    /// The point that feeds `q`, if any.
    pub fn quantity(&self, q: Quantity) -> Option<&Point> {
        self.points.iter().find(|p| p.quantity == Some(q))
    }
}

/// Every profile in a directory (`*.toml`), sorted by file name; the first bad one is an error.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, Profile)>, ProfileError> {
    load_each(dir, Profile::load)
}

/// Every `*.toml` in `dir`, sorted by file name, loaded with `load`; the first bad one is an error.
pub(crate) fn load_each<T>(
    dir: &Path,
    load: impl Fn(&Path) -> Result<T, ProfileError>,
) -> Result<Vec<(PathBuf, T)>, ProfileError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ProfileError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| load(&p).map(|profile| (p, profile)))
        .collect()
}

/// The file name of a profile's `path`, as the listings show it (empty when it has none).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The README's supported-hardware table (Markdown) of `profiles`, as [`load_dir`] gives them:
/// one row per profile with what it reads and what it may write.
pub fn markdown_table(profiles: &[(PathBuf, Profile)]) -> String {
    let mut out = String::from("| device | maker | kind | profile | reads | writes |\n|---|---|---|---|---|---|\n");
    for (path, p) in profiles {
        let file = file_name(path);
        let kind = p.kind_name().replace('_', " ");
        let reads: Vec<String> = p
            .points
            .iter()
            .filter(|x| x.writable.is_none())
            .map(|x| format!("{} ({})", x.name, if x.unit.is_empty() { "-" } else { &x.unit }))
            .collect();
        let writes: Vec<String> = p
            .points
            .iter()
            .filter_map(|x| {
                x.writable.map(|w| {
                    let function = if w.function == WriteFunction::Single {
                        " (function 06)"
                    } else {
                        ""
                    };
                    format!("{} {}–{} {}{function}", x.name, w.min, w.max, x.unit)
                })
            })
            .collect();
        out.push_str(&format!(
            "| {} | {} | {kind} | `hardware/{file}` | {} | {} |\n",
            p.device.name,
            p.device.manufacturer,
            reads.join(", "),
            if writes.is_empty() {
                "-".to_owned()
            } else {
                writes.join(", ")
            }
        ));
    }
    out
}

/// An `f32` as the `f64` nearest its shortest decimal form.
fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_in_every_word_and_byte_order() {
        for order in [
            WordOrder::Big,
            WordOrder::Little,
            WordOrder::BigByteSwap,
            WordOrder::LittleByteSwap,
        ] {
            for (ty, v) in [
                (ValueType::U16, 65_535.0),
                (ValueType::I16, -32_768.0),
                (ValueType::U32, 4_000_000_000.0),
                (ValueType::I32, -2_000_000_000.0),
                (ValueType::F32, 1234.5),
                (ValueType::U64, 9_007_199_254_740_993.0), // above 2^53: the nearest double
                (ValueType::F64, 123_456.789),
            ] {
                let words = ty.encode(v, order).unwrap();
                assert_eq!(words.len(), usize::from(ty.registers()));
                assert_eq!(ty.decode(&words, order), Some(v), "{ty:?} {order:?}");
            }
        }
        assert_eq!(ValueType::U16.encode(-1.0, WordOrder::Big), None);
        assert_eq!(ValueType::U64.encode(-1.0, WordOrder::Big), None);
        // 64-bit values: the word order applies to all four words
        let words = [0x0000, 0x0000, 0x0001, 0x2345];
        assert_eq!(ValueType::U64.decode(&words, WordOrder::Big), Some(74_565.0));
        assert_eq!(
            ValueType::U64.decode(&[0x2345, 0x0001, 0x0000, 0x0000], WordOrder::Little),
            Some(74_565.0)
        );
        assert_eq!(
            ValueType::U64.decode(&words[..3], WordOrder::Big),
            None,
            "one word short"
        );
        // 1.5 as an IEEE 754 double is 0x3FF8_0000_0000_0000
        assert_eq!(ValueType::F64.decode(&[0x3FF8, 0, 0, 0], WordOrder::Big), Some(1.5));
        assert_eq!(ValueType::I16.encode(40_000.0, WordOrder::Big), None);
        // Eastron's float32, high word first: 230.0 V
        assert_eq!(ValueType::F32.decode(&[0x4366, 0x0000], WordOrder::Big), Some(230.0));
        assert_eq!(ValueType::F32.decode(&[0x4366], WordOrder::Big), None, "one word short");
        // the same 230.0 in the other three layouts: CDAB, BADC, DCBA
        assert_eq!(ValueType::F32.decode(&[0x0000, 0x4366], WordOrder::Little), Some(230.0));
        assert_eq!(
            ValueType::F32.decode(&[0x6643, 0x0000], WordOrder::BigByteSwap),
            Some(230.0)
        );
        assert_eq!(
            ValueType::F32.decode(&[0x0000, 0x6643], WordOrder::LittleByteSwap),
            Some(230.0)
        );
        assert_eq!(
            ValueType::U16.decode(&[0x3412], WordOrder::BigByteSwap),
            Some(f64::from(0x1234u16))
        );
    }

    #[test]
    fn a_float_register_reads_as_the_decimal_the_device_meant() {
        let bits = 230.1f32.to_bits();
        let words = [(bits >> 16) as u16, bits as u16];
        let v = ValueType::F32.decode(&words, WordOrder::Big).unwrap();
        assert_eq!(v.to_string(), "230.1");
        // and writes back as the same registers
        assert_eq!(ValueType::F32.encode(v, WordOrder::Big), Some(words.to_vec()));
    }
}
