//! Devices that push their readings instead of being polled: the smart meter's P1 port (DSMR 5
//! telegrams on a serial line, [`p1`]) and meters and plugs that publish JSON on the home's own
//! MQTT broker ([`mqtt`]), each read through a profile of data ([`profile`]).
//!
//! ```text
//!  P1 serial line --telegrams--> p1.rs   --+                       every telemetry period
//!  local broker  --publishes---> mqtt.rs --+--> Feed (latest value  --> Feed::sample -> poller
//!                                              of each point, when)      (run/poller.rs)
//! ```
//!
//! A reader task per serial line and per broker keeps each device's [`Feed`]: the latest value
//! or named error of each point, and when the device was last heard. The poller samples the
//! feeds like it polls Modbus devices: a device not heard for longer than its `stale_after_s` is
//! unreachable; a point whose payload does not parse, whose path is missing or whose value is
//! not a number is a named error and leaves its quantity out (never a zero) and the sample
//! suspect.

pub mod dsmr;
pub mod mqtt;
pub mod p1;
pub mod profile;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gridshare_domain::wire::{DeviceStatus, Quality, TelemetrySample};
use gridshare_domain::{DeviceId, Timestamp, W, Wh};
use tokio::time::Instant;

pub use self::profile::{PushProfile, Source};
use crate::profile::Quantity;

/// A device that pushes its readings (`source = "p1"` or `"mqtt"`).
#[derive(Debug, Clone, PartialEq)]
pub struct PushDeviceConfig {
    /// Name, unique on this gateway (used in telemetry).
    pub name: String,
    /// Its profile (relative to the configuration file).
    pub profile: PathBuf,
    /// P1: the serial line (e.g. `/dev/ttyUSB0`).
    pub serial: Option<PathBuf>,
    /// P1: bits per second (DSMR 5: 115200, the default).
    pub baud: u32,
    /// MQTT: the home's broker, `mqtt://[user:password@]host[:port]`.
    pub broker: Option<String>,
    /// MQTT: the device's topic, put for `{topic}` in its profile's topics (a Tasmota's
    /// `tasmota_1A2B3C`, a Shelly's `shellypro3em-…`, a Zigbee2MQTT friendly name).
    pub topic: Option<String>,
    /// Not heard from for this long: unreachable.
    pub stale_after: Duration,
}

/// A pushing device with its profile loaded.
#[derive(Debug, Clone)]
pub struct PushDevice {
    /// Its configuration.
    pub config: PushDeviceConfig,
    /// Its profile.
    pub profile: PushProfile,
}

/// Why a point has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointError {
    /// Nothing has come for it yet.
    #[error("nothing received yet")]
    NotYet,
    /// Its last value is older than the device's `stale_after_s`.
    #[error("no value for {0:?}")]
    Stale(Duration),
    /// The payload on its topic is not JSON.
    #[error("payload on {topic} is not JSON: {error}")]
    Payload {
        /// The topic.
        topic: String,
        /// The parser's message.
        error: String,
    },
    /// Its path is not in the payload.
    #[error("{path} is not in the payload on {topic}")]
    Missing {
        /// The topic.
        topic: String,
        /// The path.
        path: String,
    },
    /// Its path holds something other than a number.
    #[error("{path} on {topic} is {found}, not a number")]
    WrongType {
        /// The topic.
        topic: String,
        /// The path.
        path: String,
        /// What is there.
        found: &'static str,
    },
    /// The P1 telegram has no such object, or its value or unit is wrong.
    #[error("P1: {0}")]
    Telegram(#[from] dsmr::ValueError),
}

impl PointError {
    /// The value is not there (as opposed to there but wrong).
    pub fn is_absence(&self) -> bool {
        matches!(
            self,
            Self::NotYet | Self::Missing { .. } | Self::Telegram(dsmr::ValueError::Missing(_))
        )
    }
}

#[derive(Debug)]
struct State {
    heard: Option<Instant>,
    points: Vec<Option<(Instant, Result<f64, PointError>)>>,
    refused: u64,
    last_refusal: Option<String>,
}

/// One pushing device's latest readings, shared by its reader (which records) and the poller
/// (which samples).
#[derive(Debug, Clone)]
pub struct Feed {
    device: Arc<PushDevice>,
    state: Arc<Mutex<State>>,
}

impl Feed {
    /// A feed that has heard nothing yet.
    pub fn new(device: PushDevice) -> Self {
        let points = vec![None; device.profile.points.len()];
        Self {
            device: Arc::new(device),
            state: Arc::new(Mutex::new(State {
                heard: None,
                points,
                refused: 0,
                last_refusal: None,
            })),
        }
    }

    /// The device.
    pub fn device(&self) -> &PushDevice {
        &self.device
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // a reader that panicked mid-update leaves whole values only: carry on with them
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a message from the device: it was heard now, with these point values (by index
    /// in the profile).
    pub fn record(&self, values: impl IntoIterator<Item = (usize, Result<f64, PointError>)>) {
        let now = Instant::now();
        let mut s = self.state();
        s.heard = Some(now);
        for (i, v) in values {
            if let Some(slot) = s.points.get_mut(i) {
                *slot = Some((now, v));
            }
        }
    }

    /// Records a message refused whole (a telegram with a bad CRC, say): it does not count as
    /// hearing the device.
    pub fn refuse(&self, why: String) {
        let mut s = self.state();
        s.refused += 1;
        s.last_refusal = Some(why);
    }

    /// Messages refused whole so far, and the last one's reason.
    pub fn refused(&self) -> (u64, Option<String>) {
        let s = self.state();
        (s.refused, s.last_refusal.clone())
    }

    /// Each point's value or error now.
    pub fn values(&self) -> Vec<(String, Result<f64, PointError>)> {
        let stale_after = self.device.config.stale_after;
        let now = Instant::now();
        let s = self.state();
        self.device
            .profile
            .points
            .iter()
            .zip(&s.points)
            .map(|(p, v)| {
                let v = match v {
                    None => Err(PointError::NotYet),
                    Some((t, _)) if now.duration_since(*t) > stale_after => Err(PointError::Stale(stale_after)),
                    Some((_, v)) => v.clone(),
                };
                (p.name.clone(), v)
            })
            .collect()
    }

    /// The device's sample at `at`; `None` only for a device whose name is not a device id
    /// (names are checked when the configuration is loaded).
    pub fn sample(&self, at: Timestamp) -> Option<TelemetrySample> {
        let id = DeviceId::new(self.device.config.name.clone()).ok()?;
        let unreachable = TelemetrySample::unreachable(id, self.device.profile.device.kind, at);
        let heard = self.state().heard;
        if heard.is_none_or(|t| t.elapsed() > self.device.config.stale_after) {
            return Some(unreachable);
        }
        let values = self.values();
        let failed = self
            .device
            .profile
            .points
            .iter()
            .zip(&values)
            .any(|(p, (_, v))| v.as_ref().is_err_and(|e| !(p.optional && e.is_absence())));
        // the points of one quantity added; any of them failing leaves the quantity out
        let get = |q: Quantity| -> Option<f64> {
            let mut of_q = self
                .device
                .profile
                .points
                .iter()
                .zip(&values)
                .filter(|(p, _)| p.quantity == Some(q))
                .map(|(_, (_, v))| v.as_ref().ok().copied())
                .peekable();
            of_q.peek()?;
            of_q.sum()
        };
        Some(TelemetrySample {
            power_w: get(Quantity::PowerW).map(|v| W(v.round() as i64)),
            energy_in_wh: get(Quantity::EnergyInWh).map(|v| Wh(v.max(0.0).round() as i64)),
            energy_out_wh: get(Quantity::EnergyOutWh).map(|v| Wh(v.max(0.0).round() as i64)),
            soc_permille: get(Quantity::SocPermille).map(|v| v.clamp(0.0, 1_000.0).round() as u16),
            status: if failed { DeviceStatus::Fault } else { DeviceStatus::Ok },
            quality: if failed { Quality::Suspect } else { Quality::Good },
            ..unreachable
        })
    }
}

/// The readers of a set of pushing devices, running; dropping it stops them.
#[derive(Debug)]
pub struct Readers {
    /// One feed per device, in the order given.
    pub feeds: Vec<Feed>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Readers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts a reader per P1 line and per MQTT broker for `devices`; MQTT clients are named
/// `{client_id}-{n}`. Must be called within a tokio runtime.
pub fn start(devices: Vec<PushDevice>, client_id: &str) -> Readers {
    let feeds: Vec<Feed> = devices.into_iter().map(Feed::new).collect();
    let mut tasks = Vec::new();
    for f in feeds.iter().filter(|f| f.device.profile.device.source == Source::P1) {
        tasks.push(tokio::spawn(p1::run(f.clone())));
    }
    let mqtt: Vec<Feed> = feeds
        .iter()
        .filter(|f| f.device.profile.device.source == Source::Mqtt)
        .cloned()
        .collect();
    for (n, (broker, routes)) in mqtt::by_broker(&mqtt).into_iter().enumerate() {
        tasks.push(tokio::spawn(mqtt::run(broker, format!("{client_id}-{n}"), routes)));
    }
    Readers { feeds, tasks }
}
