//! Profiles of devices that push their readings (`hardware/mqtt/*.toml`, `hardware/p1/*.toml`):
//! where each value is in what the device sends, as data.
//!
//! ```toml
//! [device]
//! name = "Shelly Pro 3EM"               # shown to installers
//! manufacturer = "Shelly"
//! kind = "grid_meter"                   # as in Modbus profiles
//! source = "mqtt"                       # mqtt | p1
//! document = "Shelly Gen2+ API, EM component, EM.GetStatus"   # the vendor's document it follows
//! topic = "{topic}/status/em:0"         # mqtt: its points' topic; {topic} is the device's `topic`
//!
//! [[points]]
//! name = "power"                        # unique in the profile
//! quantity = "power_w"                  # power_w | energy_in_wh | energy_out_wh | soc_permille
//! path = "total_act_power"              # mqtt: where in the JSON (`ENERGY.Power`, `a.b[0].c`)
//! topic = "{topic}/status/emdata:0"     # mqtt: another topic than the device's
//! obis = "1-0:1.7.0"                    # p1: the object
//! obis_unit = "kW"                      # p1: the unit the telegram must carry
//! scale = 1000.0                        # value = sent × scale (default 1)
//! unit = "W"                            # after scaling: W for power, Wh for energy
//! optional = true                       # not every such device sends it: its absence is no fault
//! ```
//!
//! Points that feed the same quantity are added: a two-tariff meter's import is tariff 1 plus
//! tariff 2, and its power the power drawn minus the power fed in (`scale = -1000.0`).

use std::path::{Path, PathBuf};

use gridshare_domain::wire::DeviceKind;
use serde::Deserialize;

use crate::profile::{ProfileError, Quantity};

/// Where a device's readings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Modbus TCP or RTU, polled (a profile in `hardware/`).
    Modbus,
    /// The smart meter's P1 port: DSMR 5 telegrams on a serial line.
    P1,
    /// JSON published on the home's own MQTT broker.
    Mqtt,
}

/// A profile of a device that pushes its readings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushProfile {
    /// The device.
    pub device: PushDeviceInfo,
    /// Its points.
    pub points: Vec<PushPoint>,
}

/// What the device is.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushDeviceInfo {
    /// Model name.
    pub name: String,
    /// Maker.
    pub manufacturer: String,
    /// Its role in the home.
    pub kind: DeviceKind,
    /// How it sends its readings (`p1` or `mqtt`).
    pub source: Source,
    /// The vendor's document (name and section) the profile follows.
    pub document: String,
    /// MQTT: the topic of its points, `{topic}` standing for the device's configured `topic`.
    pub topic: Option<String>,
}

/// One value a device sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushPoint {
    /// Name, unique in the profile.
    pub name: String,
    /// The telemetry field it feeds, if any.
    pub quantity: Option<Quantity>,
    /// MQTT: where in the JSON payload.
    pub path: Option<String>,
    /// MQTT: its topic, if not the device's.
    pub topic: Option<String>,
    /// P1: the OBIS id.
    pub obis: Option<String>,
    /// P1: the unit the telegram must give it.
    pub obis_unit: Option<String>,
    /// Value = sent × scale.
    #[serde(default = "unit_scale")]
    pub scale: f64,
    /// Unit after scaling.
    pub unit: String,
    /// Not every device of the kind sends it (a single-phase meter's L2): its absence does not
    /// make the sample suspect (a value that is there but wrong still does).
    #[serde(default)]
    pub optional: bool,
}

const fn unit_scale() -> f64 {
    1.0
}

impl PushPoint {
    /// The point's topic for a device configured with `topic` (MQTT points only).
    pub fn topic_for(&self, device: &PushDeviceInfo, topic: &str) -> Option<String> {
        let template = self.topic.as_ref().or(device.topic.as_ref())?;
        Some(template.replace("{topic}", topic))
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// An object's key (or, on an array, an index written with a dot: `a.0`).
    Key(String),
    /// An array's index (`a[0]`).
    Index(usize),
}

/// A path into a JSON document: keys separated by dots, array indexes in brackets or as a key
/// (`ENERGY.Power`, `aenergy.by_minute[0]`, `SML.Total_in`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses a path; `None` when it is empty or its brackets are not indexes.
    pub fn parse(path: &str) -> Option<Self> {
        let mut steps = Vec::new();
        for segment in path.split('.') {
            let (key, mut rest) = segment.split_once('[').map_or((segment, ""), |(k, r)| (k, r));
            if key.is_empty() && rest.is_empty() {
                return None;
            }
            if !key.is_empty() {
                steps.push(Step::Key(key.to_owned()));
            }
            if !rest.is_empty() {
                rest = &segment[key.len()..];
                while let Some(r) = rest.strip_prefix('[') {
                    let (index, after) = r.split_once(']')?;
                    steps.push(Step::Index(index.parse().ok()?));
                    rest = after;
                }
                if !rest.is_empty() {
                    return None;
                }
            }
        }
        (!steps.is_empty()).then_some(Self(steps))
    }

    /// The number at this path in `doc`.
    pub fn number(&self, doc: &serde_json::Value) -> Result<f64, PathError> {
        let mut v = doc;
        for step in &self.0 {
            let next = match (step, v) {
                (Step::Key(k), serde_json::Value::Object(map)) => map.get(k),
                (Step::Key(k), serde_json::Value::Array(items)) => k.parse::<usize>().ok().and_then(|i| items.get(i)),
                (Step::Index(i), serde_json::Value::Array(items)) => items.get(*i),
                _ => None,
            };
            v = next.ok_or(PathError::Missing)?;
        }
        match v {
            serde_json::Value::Number(n) => n.as_f64().ok_or(PathError::WrongType("a number out of range")),
            serde_json::Value::String(_) => Err(PathError::WrongType("a string")),
            serde_json::Value::Bool(_) => Err(PathError::WrongType("a boolean")),
            serde_json::Value::Null => Err(PathError::WrongType("null")),
            serde_json::Value::Array(_) => Err(PathError::WrongType("an array")),
            serde_json::Value::Object(_) => Err(PathError::WrongType("an object")),
        }
    }
}

/// Why a path gave no number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Nothing is there.
    Missing,
    /// Something other than a number is there (what it is).
    WrongType(&'static str),
}

impl PushProfile {
    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        Self::parse(path, &crate::profile::read_profile(path)?)
    }

    /// Parses and checks profile text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ProfileError> {
        let profile: Self = crate::profile::parse_profile(path, text)?;
        profile.check(path)?;
        Ok(profile)
    }

    fn check(&self, path: &Path) -> Result<(), ProfileError> {
        let bad = |point: &str, message: String| ProfileError::Invalid {
            path: path.to_owned(),
            point: point.to_owned(),
            message,
        };
        if self.device.source == Source::Modbus {
            return Err(bad(
                "-",
                "source: a Modbus device has a Modbus profile (hardware/*.toml)".into(),
            ));
        }
        if self.device.document.trim().is_empty() {
            return Err(bad(
                "-",
                "device.document: name the vendor's document the profile follows".into(),
            ));
        }
        if self.points.is_empty() {
            return Err(bad("-", "no points".into()));
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.points {
            let name = p.name.as_str();
            if name.is_empty() || !names.insert(name) {
                return Err(bad(name, "names must be unique and not empty".into()));
            }
            if !(p.scale.is_finite() && p.scale != 0.0) {
                return Err(bad(
                    name,
                    format!("scale must be a finite non-zero number, got {}", p.scale),
                ));
            }
            let unit = match p.quantity {
                None => None,
                Some(Quantity::PowerW) => Some("W"),
                Some(Quantity::EnergyInWh | Quantity::EnergyOutWh) => Some("Wh"),
                Some(Quantity::SocPermille) => Some("permille"),
                Some(q) => return Err(bad(name, format!("{q:?} cannot be read from a pushing device"))),
            };
            if p.optional && p.quantity.is_some() {
                return Err(bad(name, "a point feeding a quantity cannot be optional".into()));
            }
            if let Some(u) = unit.filter(|u| *u != p.unit) {
                return Err(bad(
                    name,
                    format!("its quantity is in {u}: scale to {u}, not {:?}", p.unit),
                ));
            }
            match self.device.source {
                Source::Mqtt => {
                    if p.obis.is_some() || p.obis_unit.is_some() {
                        return Err(bad(name, "obis and obis_unit are for P1 devices".into()));
                    }
                    let path = p.path.as_deref().unwrap_or_default();
                    if JsonPath::parse(path).is_none() {
                        return Err(bad(name, format!("path {path:?} is not a JSON path (a.b[0].c)")));
                    }
                    let topic = p.topic.as_ref().or(self.device.topic.as_ref());
                    match topic {
                        None => return Err(bad(name, "no topic (give the device's or the point's)".into())),
                        Some(t) if t.is_empty() || t.contains(['+', '#']) => {
                            return Err(bad(name, format!("topic {t:?}: no wildcards, not empty")));
                        }
                        Some(_) => {}
                    }
                }
                Source::P1 => {
                    if p.path.is_some() || p.topic.is_some() {
                        return Err(bad(name, "path and topic are for MQTT devices".into()));
                    }
                    if p.obis.is_none() || p.obis_unit.is_none() {
                        return Err(bad(name, "a P1 point needs obis and obis_unit".into()));
                    }
                }
                Source::Modbus => {}
            }
        }
        Ok(())
    }
}

/// Every profile in a directory (`*.toml`), sorted by file name; the first bad one is an error.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, PushProfile)>, ProfileError> {
    crate::profile::load_each(dir, PushProfile::load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_numbers_and_name_what_they_found_instead() {
        let doc: serde_json::Value = serde_json::from_str(
            r#"{"ENERGY":{"Power":123,"Total":4.5,"Name":"x","Off":null},"a":{"b":[1.5,{"c":2}]},"em:0":{"p":-7}}"#,
        )
        .unwrap();
        let n = |p: &str| JsonPath::parse(p).unwrap().number(&doc);
        assert_eq!(n("ENERGY.Power"), Ok(123.0));
        assert_eq!(n("a.b[0]"), Ok(1.5));
        assert_eq!(n("a.b.0"), Ok(1.5));
        assert_eq!(n("a.b[1].c"), Ok(2.0));
        assert_eq!(n("em:0.p"), Ok(-7.0));
        assert_eq!(n("ENERGY.Name"), Err(PathError::WrongType("a string")));
        assert_eq!(n("ENERGY.Off"), Err(PathError::WrongType("null")));
        assert_eq!(n("ENERGY"), Err(PathError::WrongType("an object")));
        assert_eq!(n("ENERGY.Voltage"), Err(PathError::Missing));
        assert_eq!(n("a.b[7]"), Err(PathError::Missing));
        for bad in ["", ".", "a..b", "a[x]", "a[0]b", "a[0"] {
            assert_eq!(JsonPath::parse(bad), None, "{bad:?}");
        }
    }
}
