//! What the market asks of the gateway beyond demand response: the homeowner's trading
//! preferences, kept on disk so they outlive a restart and an offline market, and the
//! installer's remote check, which reads every point of every device and says what it got.

use std::path::{Path, PathBuf};
use std::time::Instant;

use gridshare_domain::DeviceId;
use gridshare_domain::wire::{CheckResult, DeviceCheck, PointCheck, TradingPreferences, ValidationError};

use crate::config::Device;
use crate::modbus::{Link, read_points};

/// The file the newest preferences are kept in, below the data directory.
pub const PREFERENCES_FILE: &str = "preferences.json";

/// A preferences file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PreferencesError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not preferences as JSON.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the field).
        source: serde_json::Error,
    },
    /// The file holds preferences that are not valid (edited by hand, say).
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: ValidationError,
    },
    /// The preferences could not be written as JSON.
    #[error("encoding the preferences: {0}")]
    Encode(serde_json::Error),
}

/// The preferences last taken, if any came from the market. A file that cannot be read or is
/// not valid preferences is an error naming it (the gateway does not guess the homeowner's limits).
pub fn load_preferences(dir: &Path) -> Result<Option<TradingPreferences>, PreferencesError> {
    let path = dir.join(PREFERENCES_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PreferencesError::Io { path, source }),
    };
    let p: TradingPreferences = match serde_json::from_str(&text) {
        Ok(p) => p,
        Err(source) => return Err(PreferencesError::Parse { path, source }),
    };
    if let Err(source) = p.validate() {
        return Err(PreferencesError::Invalid { path, source });
    }
    Ok(Some(p))
}

/// Keeps `p` as the preferences in force (written aside, then renamed: a crash leaves the old
/// file or the new one, never half of one).
pub fn save_preferences(dir: &Path, p: &TradingPreferences) -> Result<(), PreferencesError> {
    let path = dir.join(PREFERENCES_FILE);
    let tmp = path.with_extension("tmp");
    let body = serde_json::to_vec_pretty(p).map_err(PreferencesError::Encode)?;
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| PreferencesError::Io { path, source })
}

/// Longest error text kept per point (a check must fit in one envelope).
const MAX_ERROR_CHARS: usize = 200;

fn shorten(mut s: String) -> String {
    if s.chars().count() > MAX_ERROR_CHARS {
        s = s.chars().take(MAX_ERROR_CHARS - 1).collect();
        s.push('…');
    }
    s
}

/// Reads every point of every device (at most [`CheckResult::MAX_DEVICES`] devices and
/// [`DeviceCheck::MAX_POINTS`] points each) and reports each value or why it failed.
pub async fn check(
    check_id: u64,
    links: &mut [Link],
    devices: &[Device],
    outbox: u32,
    preferences_version: Option<u64>,
) -> CheckResult {
    let mut out = Vec::new();
    for (link, device) in links.iter_mut().zip(devices).take(CheckResult::MAX_DEVICES) {
        let Ok(id) = DeviceId::new(device.config.name.clone()) else {
            continue; // names are checked when the configuration is loaded
        };
        let started = Instant::now();
        let values = read_points(link, &device.profile).await;
        let elapsed_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        let total = values.len();
        let mut points: Vec<PointCheck> = values
            .into_iter()
            .take(DeviceCheck::MAX_POINTS)
            .map(|(name, value)| {
                let unit = device.profile.point(&name).map(|p| p.unit.clone()).unwrap_or_default();
                let (value, error) = match value {
                    Ok(Some(v)) => (Some(format_value(v)), None),
                    Ok(None) => (None, None),
                    Err(e) => (None, Some(shorten(e.to_string()))),
                };
                PointCheck {
                    name,
                    value,
                    unit,
                    error,
                }
            })
            .collect();
        let not_shown = u32::try_from(total - points.len()).unwrap_or(u32::MAX);
        // a device that did not answer at all: said once, not once per point
        if points.len() > 1
            && let Some(first) = points.first().and_then(|p| p.error.clone())
            && points.iter().all(|p| p.error.as_ref() == Some(&first))
        {
            points = vec![PointCheck {
                name: format!("all {total} points"),
                value: None,
                unit: String::new(),
                error: Some(first),
            }];
        }
        out.push(DeviceCheck {
            device: id,
            kind: device.profile.device.kind,
            model: model(&device.profile.device.manufacturer, &device.profile.device.name),
            address: format!("{} unit {}", link.endpoint(), link.unit()),
            elapsed_ms,
            points,
            not_shown,
        });
    }
    let mut result = CheckResult {
        check_id,
        software: env!("CARGO_PKG_VERSION").to_owned(),
        outbox,
        preferences_version,
        devices: out,
    };
    fit(&mut result, CHECK_BUDGET_BYTES);
    result
}

/// Most bytes a check's result may take as JSON, leaving room in one envelope
/// ([`gridshare_domain::envelope::MAX_ENVELOPE_BYTES`]) for the signature and framing.
pub const CHECK_BUDGET_BYTES: usize = 48 * 1024;

/// Cuts points from every device in proportion until the result fits in `budget` bytes of
/// JSON (each keeps at least one); each device counts what was cut in `not_shown`.
fn fit(result: &mut CheckResult, budget: usize) {
    let size = |r: &CheckResult| serde_json::to_vec(r).map_or(usize::MAX, |v| v.len());
    loop {
        let total = size(result);
        if total <= budget {
            return;
        }
        // a little under the ratio, so that one or two passes do it
        let keep_share = budget as f64 / total as f64 * 0.95;
        let mut cut_any = false;
        for d in result.devices.iter_mut().filter(|d| d.points.len() > 1) {
            let n = d.points.len();
            let keep = ((n as f64 * keep_share) as usize).clamp(1, n - 1);
            d.points.truncate(keep);
            d.not_shown = d.not_shown.saturating_add(u32::try_from(n - keep).unwrap_or(u32::MAX));
            cut_any = true;
        }
        if !cut_any {
            return; // one point per device left: nothing more to cut
        }
    }
}

/// Maker and model, without saying the maker twice ("Eastron SDM630", not "Eastron Eastron SDM630").
fn model(manufacturer: &str, name: &str) -> String {
    if name.to_lowercase().contains(&manufacturer.to_lowercase()) {
        name.to_owned()
    } else {
        format!("{manufacturer} {name}")
    }
}

/// A value as a person reads it: whole numbers without a fraction, others to 3 decimals at most.
fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridshare_domain::MicroPerKwh;

    #[test]
    fn values_read_as_a_person_writes_them() {
        assert_eq!(format_value(812.0), "812");
        assert_eq!(format_value(812.5), "812.5");
        assert_eq!(format_value(-0.125), "-0.125");
        assert_eq!(format_value(230.10004), "230.1");
        assert_eq!(shorten("x".repeat(500)).chars().count(), MAX_ERROR_CHARS);
        assert_eq!(model("Eastron", "Eastron SDM630"), "Eastron SDM630");
        assert_eq!(model("Fronius", "Symo 8.2"), "Fronius Symo 8.2");
    }

    #[test]
    fn a_check_that_would_not_fit_in_a_message_is_cut_and_says_so() {
        use gridshare_domain::wire::DeviceKind;
        let point = |i: usize| PointCheck {
            name: format!("point_{i}"),
            value: None,
            unit: "W".into(),
            error: Some("x".repeat(MAX_ERROR_CHARS)),
        };
        let device = |n: usize| DeviceCheck {
            device: DeviceId::new(format!("d{n}")).unwrap(),
            kind: DeviceKind::SubMeter,
            model: "Test meter".into(),
            address: "127.0.0.1:502 unit 1".into(),
            elapsed_ms: 1,
            points: (0..DeviceCheck::MAX_POINTS).map(point).collect(),
            not_shown: 0,
        };
        let mut r = CheckResult {
            check_id: 1,
            software: "0".into(),
            outbox: 0,
            preferences_version: None,
            devices: (0..CheckResult::MAX_DEVICES).map(device).collect(),
        };
        fit(&mut r, CHECK_BUDGET_BYTES);
        let bytes = serde_json::to_vec(&r).unwrap().len();
        assert!(bytes <= CHECK_BUDGET_BYTES, "{bytes}");
        assert!(r.validate().is_ok());
        assert_eq!(r.devices.len(), CheckResult::MAX_DEVICES, "every device is still named");
        for d in &r.devices {
            assert!(d.not_shown > 0 && !d.points.is_empty(), "{d:?}");
            assert_eq!(
                d.points.len() + d.not_shown as usize,
                DeviceCheck::MAX_POINTS,
                "the cut points are counted"
            );
        }
        // a small one is left alone
        let mut small = CheckResult {
            devices: vec![device(0)],
            ..r.clone()
        };
        small.devices[0].points.truncate(3);
        let before = small.clone();
        fit(&mut small, CHECK_BUDGET_BYTES);
        assert_eq!(small, before);
    }

    #[test]
    fn preferences_survive_a_restart_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_preferences(dir.path()).unwrap(), None);
        let p = TradingPreferences {
            version: 4,
            min_sell_price: MicroPerKwh(95_000),
            max_buy_price: MicroPerKwh(240_000),
            battery_reserve_percent: 40,
        };
        save_preferences(dir.path(), &p).unwrap();
        assert_eq!(load_preferences(dir.path()).unwrap(), Some(p));
        std::fs::write(dir.path().join(PREFERENCES_FILE), "{\"version\": 1}").unwrap();
        let err = load_preferences(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(PREFERENCES_FILE) && err.contains("min_sell_price"),
            "{err}"
        );
    }
}
