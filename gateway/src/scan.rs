//! Finding Modbus devices (`gateway scan`): each unit id on each endpoint is asked for SunSpec
//! first (its marker and model chain identify it); one that is not SunSpec is matched against
//! the profiles given, the first whose points all read naming it and the others that read too
//! listed with it (models sharing a register map cannot be told apart by reading). A request that gets no answer
//! is tried again (`retries`); every unit that answered anything is reported, identified or
//! not: one that answers only exceptions (named), one that stopped answering, one that matches
//! no profile. Only units that never said a word are left out.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use tokio_modbus::ExceptionCode;

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
        /// Other profiles every point of which reads from it too (file names): models that share
        /// a register map (an SDM630 answers the SDM120's registers) cannot be told apart by
        /// reading, and the installer checks the label.
        also: Vec<String>,
    },
    /// A unit that answered every request with a Modbus exception.
    ExceptionsOnly {
        /// The exceptions, each once.
        exceptions: Vec<ExceptionCode>,
    },
    /// A unit that answered, then stopped answering before it could be identified.
    NoAnswer {
        /// Tries of the request that went unanswered.
        tries: u32,
        /// The last failure.
        error: String,
    },
    /// A unit that answers, but is neither SunSpec nor any of the profiles given.
    Unknown,
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

/// Asks every unit in `units` on every endpoint, each request given `timeout` and tried again
/// `retries` times when it gets no answer. An endpoint that refuses the connection is left at
/// its first unit: nothing is there at all.
pub async fn scan(
    endpoints: &[Endpoint],
    units: RangeInclusive<u8>,
    candidates: &[(PathBuf, Profile)],
    timeout: Duration,
    retries: u32,
) -> Vec<Found> {
    let mut found = Vec::new();
    for endpoint in endpoints {
        let bus = Bus::new(endpoint.clone(), Duration::from_millis(10));
        for unit in units.clone() {
            let mut link = bus.link(unit, timeout).with_retries(retries);
            let what = match sunspec::discover(&mut link).await {
                Err(e) if e.is_connect() => {
                    tracing::info!(%endpoint, "nothing there: {e}");
                    break;
                }
                Err(e) => {
                    tracing::debug!(%endpoint, unit, error = %e, "probe failed");
                    Some(Identified::NoAnswer {
                        tries: link.last_tries(),
                        error: e.to_string(),
                    })
                }
                Ok(Some(d)) => Some(Identified::SunSpec(d)),
                Ok(None) => {
                    let mut matched = None;
                    for (path, p) in candidates {
                        if !link.heard().anything() {
                            break; // silence (or a TCP gateway's "no such unit") on every probe
                        }
                        if read_points(&mut link, p).await.iter().all(|(_, v)| v.is_ok()) {
                            let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
                            match &mut matched {
                                Some(Identified::Profile { also, .. }) => also.extend(file),
                                _ => {
                                    matched = Some(Identified::Profile {
                                        file,
                                        manufacturer: p.device.manufacturer.clone(),
                                        model: p.device.name.clone(),
                                        also: Vec::new(),
                                    });
                                }
                            }
                        }
                    }
                    matched
                }
            };
            let heard = link.heard();
            let what = match what {
                Some(w @ (Identified::SunSpec(_) | Identified::Profile { .. })) => w,
                // never a word: nothing is there
                _ if !heard.anything() => continue,
                _ if heard.answers == 0 => Identified::ExceptionsOnly {
                    exceptions: heard.exceptions.clone(),
                },
                Some(w) => w,
                None => Identified::Unknown,
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
