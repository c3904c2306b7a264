//! Finding Modbus devices (`gateway scan`): each unit id on each endpoint is asked for SunSpec
//! first (its marker and model chain identify it); one that is not SunSpec is matched against
//! the profiles given, the first whose points all read naming it.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use crate::modbus::{Bus, Endpoint, read_points};
use crate::profile::Profile;
use crate::sunspec::{self, SunSpecDevice};

/// What a device found is.
#[derive(Debug, Clone, PartialEq)]
pub enum Identified {
    /// A SunSpec device, as it describes itself.
    SunSpec(SunSpecDevice),
    /// A device every point of this profile reads from.
    Profile {
        /// The profile's file name.
        file: Option<String>,
        /// The profile's maker.
        manufacturer: String,
        /// The profile's device name.
        model: String,
    },
}

/// One device found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Where.
    pub endpoint: Endpoint,
    /// Its unit id.
    pub unit: u8,
    /// What it is.
    pub what: Identified,
}

/// Asks every unit in `units` on every endpoint, each request given `timeout`. An endpoint that
/// refuses the connection is left at its first unit: nothing is there at all.
pub async fn scan(
    endpoints: &[Endpoint],
    units: RangeInclusive<u8>,
    candidates: &[(PathBuf, Profile)],
    timeout: Duration,
) -> Vec<Found> {
    let mut found = Vec::new();
    for endpoint in endpoints {
        let bus = Bus::new(endpoint.clone(), Duration::from_millis(10));
        for unit in units.clone() {
            let mut link = bus.link(unit, timeout);
            let what = match sunspec::discover(&mut link).await {
                Err(e) if e.is_connect() => {
                    tracing::info!(%endpoint, "nothing there: {e}");
                    break;
                }
                Err(_) => continue,
                Ok(Some(d)) => Identified::SunSpec(d),
                Ok(None) => {
                    let mut matched = None;
                    for (path, p) in candidates {
                        if read_points(&mut link, p).await.iter().all(|(_, v)| v.is_ok()) {
                            matched = Some(Identified::Profile {
                                file: path.file_name().map(|f| f.to_string_lossy().into_owned()),
                                manufacturer: p.device.manufacturer.clone(),
                                model: p.device.name.clone(),
                            });
                            break;
                        }
                    }
                    match matched {
                        Some(m) => m,
                        None => continue, // no device here, or none we know
                    }
                }
            };
            found.push(Found {
                endpoint: endpoint.clone(),
                unit,
                what,
            });
        }
    }
    found
}
