//! The installer's check of a configuration (`gateway check`): every point of every configured
//! device read once, each with what is wrong with it: a read that failed, or a value outside the
//! point's limits or outside what the quantity can be. (The market's remote check of a running
//! gateway is [`crate::remote::check`].)

use std::time::Duration;

use crate::config::Device;
use crate::modbus::read_points;
use crate::profile::{Point, Quantity};

/// One point as the check found it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedPoint {
    /// The device's name.
    pub device: String,
    /// The point's name; `-` when the device could not be reached at all.
    pub point: String,
    /// The value read.
    pub value: Option<f64>,
    /// The point's unit.
    pub unit: String,
    /// What is wrong, if anything.
    pub problem: Option<String>,
}

/// Reads every point of every device once. A device whose address does not resolve is one row
/// with that error.
pub async fn check_devices(devices: &[Device]) -> Vec<CheckedPoint> {
    let mut rows = Vec::new();
    for d in devices {
        let mut link = match crate::config::links(std::slice::from_ref(d), Duration::from_millis(20)).await {
            Ok(mut l) if l.len() == 1 => l.remove(0),
            Ok(_) => continue,
            Err(e) => {
                rows.push(CheckedPoint {
                    device: d.config.name.clone(),
                    point: "-".to_owned(),
                    value: None,
                    unit: String::new(),
                    problem: Some(e.to_string()),
                });
                continue;
            }
        };
        for ((name, value), p) in read_points(&mut link, &d.profile)
            .await
            .into_iter()
            .zip(&d.profile.points)
        {
            let problem = match &value {
                Err(e) => Some(e.to_string()),
                Ok(Some(v)) => out_of_range(p, *v),
                Ok(None) => None,
            };
            rows.push(CheckedPoint {
                device: d.config.name.clone(),
                point: name,
                value: value.ok().flatten(),
                unit: p.unit.clone(),
                problem,
            });
        }
    }
    rows
}

/// Why a point's value is out of range, if it is.
pub fn out_of_range(p: &Point, v: f64) -> Option<String> {
    if let Some(w) = p.writable
        && (v < w.min || v > w.max)
    {
        return Some(format!("outside its limits {}–{}", w.min, w.max));
    }
    match p.quantity {
        Some(Quantity::SocPermille) if !(0.0..=1_000.0).contains(&v) => Some("not a state of charge".into()),
        Some(Quantity::EnergyInWh | Quantity::EnergyOutWh) if v < 0.0 => Some("a negative energy counter".into()),
        _ => None,
    }
}
