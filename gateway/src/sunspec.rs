//! SunSpec discovery: find the "SunS" marker at register 40000, 0 or 50000, walk the model chain
//! (model id and length, one after the other, to the end marker 0xFFFF), read the common model
//! (1) for maker, model and serial number, and read an inverter model (101, 102 or 103) with its
//! scale factors. "Not implemented" values (0x8000, 0xFFFF, a scale factor of 0x8000) come back
//! as `None`, never as zero.

use crate::modbus::{Link, ModbusError};
use crate::profile::Table;

/// Where SunSpec devices put their marker, in the order tried.
pub const BASES: [u16; 3] = [40_000, 0, 50_000];
/// "SunS" as two registers.
pub const MARKER: [u16; 2] = [0x5375, 0x6e53];
/// Most models walked before giving up on a chain that does not end.
const MAX_MODELS: usize = 64;

/// One model in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelRef {
    /// Model id.
    pub id: u16,
    /// Register of its id (its data starts 2 further on).
    pub address: u16,
    /// Registers of data.
    pub length: u16,
}

/// A SunSpec device found by [`discover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SunSpecDevice {
    /// Where the marker is.
    pub base: u16,
    /// Its models, in chain order.
    pub models: Vec<ModelRef>,
    /// Common model: manufacturer.
    pub manufacturer: Option<String>,
    /// Common model: model name.
    pub model: Option<String>,
    /// Common model: serial number.
    pub serial: Option<String>,
}

impl SunSpecDevice {
    /// The first model with this id.
    pub fn model(&self, id: u16) -> Option<ModelRef> {
        self.models.iter().copied().find(|m| m.id == id)
    }
}

/// A SunSpec string: two characters per register, NUL-padded.
fn string(words: &[u16]) -> Option<String> {
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .take_while(|b| *b != 0)
        .collect();
    let s = String::from_utf8_lossy(&bytes).trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// Looks for SunSpec on `link`'s device. `Ok(None)`: it answered, but is not SunSpec; `Err`: the
/// link failed, so nothing can be said.
pub async fn discover(link: &mut Link) -> Result<Option<SunSpecDevice>, ModbusError> {
    for base in BASES {
        match link.read(Table::Holding, base, 2).await {
            Ok(words) if words == MARKER => return walk(link, base).await.map(Some),
            Ok(_) | Err(ModbusError::Exception { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

async fn walk(link: &mut Link, base: u16) -> Result<SunSpecDevice, ModbusError> {
    let mut models = Vec::new();
    let mut at = u32::from(base) + 2;
    while models.len() < MAX_MODELS && at < u32::from(u16::MAX) {
        let head = link.read(Table::Holding, at as u16, 2).await?;
        if head[0] == 0xFFFF {
            break;
        }
        models.push(ModelRef {
            id: head[0],
            address: at as u16,
            length: head[1],
        });
        at += 2 + u32::from(head[1]);
    }
    let mut device = SunSpecDevice {
        base,
        models,
        manufacturer: None,
        model: None,
        serial: None,
    };
    if let Some(common) = device.model(1).filter(|m| m.length >= 65) {
        let words = link.read(Table::Holding, common.address + 2, 64).await?;
        device.manufacturer = string(&words[0..16]);
        device.model = string(&words[16..32]);
        device.serial = string(&words[48..64]);
    }
    Ok(device)
}

/// What an inverter model (101–103) says, scaled; `None` where not implemented.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct InverterValues {
    /// AC power, W.
    pub power_w: Option<f64>,
    /// Lifetime energy, Wh.
    pub energy_wh: Option<f64>,
    /// AC current, A.
    pub current_a: Option<f64>,
    /// Frequency, Hz.
    pub frequency_hz: Option<f64>,
    /// Operating state (1 off, 2 sleeping, 3 starting, 4 MPPT, 5 throttled, 6 shutting down,
    /// 7 fault, 8 standby).
    pub state: Option<u16>,
}

fn scaled(raw: Option<f64>, sf: u16) -> Option<f64> {
    (sf != 0x8000).then(|| raw.map(|v| crate::modbus::scaled(v, 10f64.powi(i32::from(sf as i16)))))?
}

/// Reads the first inverter model (101, 102 or 103) of `device`, in one request.
pub async fn read_inverter(link: &mut Link, device: &SunSpecDevice) -> Result<Option<InverterValues>, ModbusError> {
    let Some(m) = [101, 102, 103].into_iter().find_map(|id| device.model(id)) else {
        return Ok(None);
    };
    if m.length < 39 {
        return Ok(None);
    }
    // the id and length, then the model's data: offsets below count from the id
    let w = link.read(Table::Holding, m.address, 41).await?;
    let u16v = |i: usize| (w[i] != 0xFFFF).then(|| f64::from(w[i]));
    let i16v = |i: usize| (w[i] != 0x8000).then(|| f64::from(w[i] as i16));
    let acc32 = |i: usize| {
        let v = (u32::from(w[i]) << 16) | u32::from(w[i + 1]);
        (v != 0).then(|| f64::from(v)) // an accumulator of 0 is "not implemented"
    };
    Ok(Some(InverterValues {
        current_a: scaled(u16v(2), w[6]),
        power_w: scaled(i16v(14), w[15]),
        frequency_hz: scaled(u16v(16), w[17]),
        energy_wh: scaled(acc32(24), w[26]),
        state: (w[38] != 0xFFFF).then_some(w[38]),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_the_issue_names_has_a_layout() {
        for id in [
            1, 101, 102, 103, 111, 112, 113, 120, 121, 122, 123, 124, 160, 201, 202, 203, 204, 701, 702, 703, 704, 705,
            802,
        ] {
            assert!(layout(id).is_some(), "model {id}");
        }
    }

    /// Model 103 laid out by hand from the specification: the generic decoder agrees with it.
    #[test]
    fn model_103_decodes_with_its_scale_factors_and_sentinels() {
        let mut w = vec![0u16; 52];
        w[0] = 103;
        w[1] = 50;
        w[2] = 1234; // A
        w[3] = 0xFFFF; // AphA: not implemented
        w[6] = (-1i16) as u16; // A_SF
        w[14] = (-2500i16) as u16; // W
        w[15] = 1; // W_SF
        w[16] = 5001; // Hz
        w[17] = (-2i16) as u16; // Hz_SF
        w[24] = 0x0001; // WH, acc32
        w[25] = 0x86A0;
        w[26] = 0; // WH_SF
        w[38] = 4; // St: MPPT
        w[39] = 0xFFFF; // StVnd: not implemented
        let v = decode_model(layout(103).unwrap(), &w);
        assert_eq!(v.number("A"), Some(123.4));
        assert_eq!(v.get("AphA"), None);
        assert_eq!(v.number("W"), Some(-25_000.0));
        assert_eq!(v.number("Hz"), Some(50.01));
        assert_eq!(v.number("WH"), Some(100_000.0));
        assert_eq!(v.get("St"), Some(&Value::Code(4)));
        assert_eq!(v.get("StVnd"), None);
        assert!(v.points.iter().all(|d| d.path != "W_SF" && d.path != "ID"));
    }

    /// A scaled value prints with the digits its scale factor gives, not with float noise.
    #[test]
    fn scaled_values_print_without_float_noise() {
        let mut w = vec![0u16; 52];
        w[0] = 103;
        w[1] = 50;
        w[2] = 2301; // A
        w[6] = (-1i16) as u16; // A_SF
        w[16] = 49_987; // Hz
        w[17] = (-3i16) as u16; // Hz_SF
        let v = decode_model(layout(103).unwrap(), &w);
        let shown = |path: &str| match v.get(path) {
            Some(Value::Number(n)) => n.to_string(),
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(shown("A"), "230.1");
        assert_eq!(shown("Hz"), "49.987");
        assert_eq!(serde_json::to_string(v.get("A").unwrap()).unwrap(), "230.1");
    }

    /// Model 160 by hand: 8 header registers, then N modules of 20.
    #[test]
    fn model_160_repeats_its_modules() {
        let mut w = vec![160u16, 8 + 2 * 20];
        w.extend([(-2i16) as u16, (-1i16) as u16, 0, 0, 0xFFFF, 0xFFFF, 2, 0xFFFF]);
        for (i, watts) in [(1u16, 812u16), (2, 0xFFFF)] {
            let mut m = vec![0u16; 20];
            m[0] = i;
            m[1] = 0x5056; // "PV"
            m[1 + 8] = 950; // DCA × 10^-2
            m[2 + 8] = 3_805; // DCV × 10^-1
            m[3 + 8] = watts;
            w.extend(m);
        }
        let v = decode_model(layout(160).unwrap(), &w);
        assert_eq!(v.get("N"), Some(&Value::Code(2)));
        assert_eq!(v.number("module[1].DCA"), Some(9.5));
        assert_eq!(v.number("module[1].DCV"), Some(380.5));
        assert_eq!(v.number("module[1].DCW"), Some(812.0));
        assert_eq!(v.get("module[1].IDStr"), Some(&Value::Text("PV".into())));
        assert_eq!(v.get("module[2].DCW"), None);
        assert!(v.points.iter().all(|d| !d.path.starts_with("module[3]")));
    }

    /// A float model: NaN is "not implemented".
    #[test]
    fn model_111_floats() {
        let mut w = vec![0u16; 62];
        w[0] = 111;
        w[1] = 60;
        let put = |w: &mut Vec<u16>, at: usize, v: f32| {
            let b = v.to_bits();
            w[at] = (b >> 16) as u16;
            w[at + 1] = b as u16;
        };
        put(&mut w, 2, 12.5); // A
        put(&mut w, 4, f32::NAN); // AphA
        put(&mut w, 22, 2_875.0); // W
        let v = decode_model(layout(111).unwrap(), &w);
        assert_eq!(v.number("A"), Some(12.5));
        assert_eq!(v.get("AphA"), None);
        assert_eq!(v.number("W"), Some(2_875.0));
    }

    #[test]
    fn strings_and_scale_factors() {
        assert_eq!(string(&[0x4772, 0x6964, 0x0000]), Some("Grid".into()));
        assert_eq!(string(&[0, 0]), None);
        assert_eq!(scaled(Some(1234.0), (-1i16) as u16), Some(123.4));
        assert_eq!(scaled(Some(5.0), 2), Some(500.0));
        assert_eq!(scaled(Some(5.0), 0x8000), None, "scale factor not implemented");
        assert_eq!(scaled(None, 0), None);
    }
}

/// The layouts of the SunSpec models the gateway decodes generically (see
/// `hardware/sunspec/README.md`): 1, 101–103, 111–113, 120–124, 160, 201–204, 701–705 and 802.
const MODEL_LAYOUTS: &str = include_str!("../../hardware/sunspec/models.json");

/// A model's layout: its points and repeating groups, in register order.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ModelLayout {
    /// Model id.
    pub id: u16,
    /// Its name in the specification, e.g. "Inverter (Three Phase)".
    pub label: String,
    /// The top group (its first two points are the model's id and length).
    pub group: GroupLayout,
}

/// A group of points, repeated `count` times.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct GroupLayout {
    /// Name, e.g. `module`.
    pub name: String,
    /// How often it repeats: absent once, a number that many times (0: as often as the model's
    /// length allows), or the name of the point holding the count.
    #[serde(default)]
    pub count: Option<GroupCount>,
    /// Its points.
    pub points: Vec<PointLayout>,
    /// Groups inside it, after its points.
    #[serde(default)]
    pub groups: Vec<GroupLayout>,
}

/// How often a group repeats.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum GroupCount {
    /// A fixed number (0: to the end of the model).
    Fixed(u16),
    /// The value of this point.
    Point(String),
}

/// One point of a model.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PointLayout {
    /// Name, e.g. `W`.
    pub name: String,
    /// SunSpec type, e.g. `int16`, `acc32`, `sunssf`, `string`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Registers.
    pub size: u16,
    /// The scale factor: a point's name, or a fixed exponent.
    pub sf: Option<String>,
    /// Units, e.g. `W`.
    pub units: Option<String>,
}

/// Every model layout the gateway knows, by id.
pub fn layouts() -> &'static [ModelLayout] {
    static LAYOUTS: std::sync::OnceLock<Vec<ModelLayout>> = std::sync::OnceLock::new();
    LAYOUTS.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct File {
            models: Vec<ModelLayout>,
        }
        // built into the binary and checked by a test: a broken file cannot get this far
        serde_json::from_str::<File>(MODEL_LAYOUTS).map_or_else(|_| Vec::new(), |f| f.models)
    })
}

/// The layout of model `id`, if the gateway knows it.
pub fn layout(id: u16) -> Option<&'static ModelLayout> {
    layouts().iter().find(|m| m.id == id)
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A measurement or setting, scaled, in the point's units.
    Number(f64),
    /// An enumeration, bit field or count, as the device gave it.
    Code(u64),
    /// Text.
    Text(String),
}

/// One decoded point: `None` when the device says "not implemented" (or its scale factor does).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Decoded {
    /// The point's path: `W`, or `module[2].DCW` inside a repeating group (counted from 1).
    pub path: String,
    /// Its value.
    pub value: Option<Value>,
    /// Units, if any.
    pub units: Option<String>,
}

/// A model's decoded points.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelValues {
    /// Model id.
    pub id: u16,
    /// Its name in the specification.
    pub label: String,
    /// Its points (scale factors are applied, not listed; pads are left out).
    pub points: Vec<Decoded>,
}

impl ModelValues {
    /// A point by path.
    pub fn get(&self, path: &str) -> Option<&Value> {
        self.points.iter().find(|d| d.path == path)?.value.as_ref()
    }

    /// A point's number by path.
    pub fn number(&self, path: &str) -> Option<f64> {
        match self.get(path)? {
            Value::Number(v) => Some(*v),
            Value::Code(c) => Some(*c as f64),
            Value::Text(_) => None,
        }
    }
}

/// A point's raw words, read as one unsigned number (up to 64 bits).
fn raw(words: &[u16]) -> u64 {
    words.iter().take(4).fold(0u64, |acc, w| (acc << 16) | u64::from(*w))
}

/// Decodes one point's words; `None` for the type's "not implemented" value.
fn decode_point(ty: &str, words: &[u16]) -> Option<Value> {
    let r = raw(words);
    let n = |v: f64| Some(Value::Number(v));
    match ty {
        "int16" => (r != 0x8000).then_some(f64::from(r as u16 as i16)).and_then(n),
        "uint16" => (r != 0xFFFF).then_some(r as f64).and_then(n),
        "acc16" | "acc32" | "acc64" => (r != 0).then_some(r as f64).and_then(n),
        "int32" => (r != 0x8000_0000).then_some(f64::from(r as u32 as i32)).and_then(n),
        "uint32" => (r != 0xFFFF_FFFF).then_some(r as f64).and_then(n),
        "int64" => (r != 0x8000_0000_0000_0000).then_some(r as i64 as f64).and_then(n),
        "uint64" => (r != u64::MAX).then_some(r as f64).and_then(n),
        "float32" => {
            let v = f32::from_bits(r as u32);
            (!v.is_nan()).then_some(f64::from(v)).and_then(n)
        }
        "enum16" | "bitfield16" => (r != 0xFFFF).then_some(Value::Code(r)),
        "enum32" | "bitfield32" => (r != 0xFFFF_FFFF).then_some(Value::Code(r)),
        "count" => Some(Value::Code(r)),
        "string" => string(words).map(Value::Text),
        _ => None, // ipaddr and the like: not measurements
    }
}

/// One group instance's points: name → first raw word, to resolve scale factors and counts.
type Scope = std::collections::HashMap<String, u64>;

fn lookup(scopes: &[Scope], name: &str) -> Option<u64> {
    scopes.iter().rev().find_map(|s| s.get(name).copied())
}

struct Walk<'a> {
    words: &'a [u16],
    at: usize,
    out: Vec<Decoded>,
}

impl Walk<'_> {
    /// Decodes one instance of `g` at the current position, then its inner groups.
    fn instance(&mut self, g: &GroupLayout, prefix: &str, scopes: &mut Vec<Scope>) {
        let mut scope = Scope::new();
        let mut placed = Vec::with_capacity(g.points.len());
        for p in &g.points {
            let end = (self.at + usize::from(p.size)).min(self.words.len());
            let words = &self.words[self.at.min(end)..end];
            if words.len() == usize::from(p.size) {
                scope.insert(p.name.clone(), raw(words));
            }
            placed.push((p, words));
            self.at += usize::from(p.size);
        }
        scopes.push(scope);
        for (p, words) in placed {
            if matches!(p.ty.as_str(), "pad" | "sunssf") || (prefix.is_empty() && (p.name == "ID" || p.name == "L")) {
                continue;
            }
            let value = if words.len() < usize::from(p.size) {
                None // past the model's length: the device implements a shorter version
            } else {
                let exponent = match p.sf.as_deref() {
                    None => Some(0),
                    Some(sf) => match sf.parse::<i32>() {
                        Ok(fixed) => Some(fixed),
                        Err(_) => lookup(scopes, sf)
                            .filter(|&w| w != 0x8000)
                            .map(|w| i32::from(w as u16 as i16)),
                    },
                };
                match (decode_point(&p.ty, words), exponent) {
                    (Some(Value::Number(v)), Some(e)) => Some(Value::Number(crate::modbus::scaled(v, 10f64.powi(e)))),
                    (Some(Value::Number(_)), None) => None, // its scale factor is not implemented
                    (other, _) => other,
                }
            };
            self.out.push(Decoded {
                path: format!("{prefix}{}", p.name),
                value,
                units: p.units.clone(),
            });
        }
        for inner in &g.groups {
            self.group(inner, prefix, scopes);
        }
        scopes.pop();
    }

    fn group(&mut self, g: &GroupLayout, prefix: &str, scopes: &mut Vec<Scope>) {
        let count = match &g.count {
            None => Some(1),
            Some(GroupCount::Fixed(0)) => None,
            Some(GroupCount::Fixed(n)) => Some(usize::from(*n)),
            Some(GroupCount::Point(name)) => Some(lookup(scopes, name).filter(|&c| c != 0xFFFF).unwrap_or(0) as usize),
        };
        let mut i = 0;
        loop {
            match count {
                Some(n) if i >= n => break,
                None if self.at >= self.words.len() => break,
                _ => {}
            }
            i += 1;
            let before = self.at;
            self.instance(g, &format!("{prefix}{}[{i}].", g.name), scopes);
            if self.at == before || self.at > self.words.len() || i > 1_000 {
                break;
            }
        }
    }
}

/// Decodes a model's registers (its id and length first, as read from the device) by its
/// layout. Points past the model's length come back absent.
pub fn decode_model(layout: &ModelLayout, words: &[u16]) -> ModelValues {
    let mut walk = Walk {
        words,
        at: 0,
        out: Vec::new(),
    };
    walk.instance(&layout.group, "", &mut Vec::new());
    ModelValues {
        id: layout.id,
        label: layout.label.clone(),
        points: walk.out,
    }
}

/// Reads and decodes every model of `device` whose layout the gateway knows, each as one block
/// (requests of up to 125 registers, one after the other, so scale factors come with their
/// values). Models it does not know are skipped.
pub async fn read_models(link: &mut Link, device: &SunSpecDevice) -> Result<Vec<ModelValues>, ModbusError> {
    let mut out = Vec::new();
    for m in &device.models {
        let Some(layout) = layout(m.id) else { continue };
        let total = u32::from(m.length) + 2;
        let mut words = Vec::with_capacity(total as usize);
        let mut at = 0u32;
        while at < total {
            let n = (total - at).min(u32::from(crate::modbus::MAX_REGISTERS)) as u16;
            let start = u32::from(m.address) + at;
            if start + u32::from(n) > 0x1_0000 {
                break;
            }
            words.extend(link.read(Table::Holding, start as u16, n).await?);
            at += u32::from(n);
        }
        out.push(decode_model(layout, &words));
    }
    Ok(out)
}
