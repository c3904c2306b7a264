//! One device's telemetry sample per cycle: its points read through its profile, turned into a
//! [`TelemetrySample`] with a status and a quality. A device that does not answer is left alone
//! for a growing while ([`Backoff`]) and reported unreachable meanwhile; one whose values have
//! frozen is flagged suspect.

use gridshare_domain::wire::{DeviceKind, DeviceStatus, Quality, TelemetrySample};
use gridshare_domain::{DeviceId, Timestamp, W, Wh};

use crate::agent::Reading;
use crate::config::Device;
use crate::modbus::{Backoff, Link, read_points};
use crate::profile::Quantity;

/// How long a device's readings may stay exactly the same, while it reports power, before its
/// samples are flagged suspect: real power readings carry noise in their last digits.
pub const STUCK_AFTER_MS: i64 = 30_000;

/// Spots a device whose values have frozen (a hung meter or a gateway in front of it answering
/// from a stale cache): every value the same as before, bit for bit, with power not zero, for
/// [`STUCK_AFTER_MS`] of real time.
#[derive(Debug, Default)]
struct Freeze {
    last: Option<Vec<Option<u64>>>,
    since: Option<Timestamp>,
    /// The device was reported frozen, and has not moved since.
    reported: bool,
}

/// What one sample says about a device's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frozen {
    /// Moving (or not the same long enough to tell).
    No,
    /// Frozen as of this sample: said once.
    Froze,
    /// Still frozen.
    Still,
    /// Moving again after being frozen: said once.
    Thawed,
}

impl Frozen {
    /// The sample is suspect.
    fn suspect(self) -> bool {
        matches!(self, Self::Froze | Self::Still)
    }
}

impl Freeze {
    /// Takes the values `values` at `at`: whether they are frozen, and whether that just changed.
    fn observe(&mut self, at: Timestamp, values: Vec<Option<u64>>, power_w: Option<f64>) -> Frozen {
        let same = self.last.as_ref() == Some(&values) && power_w.is_some_and(|p| p != 0.0);
        if !same {
            self.last = Some(values);
            self.since = None;
            return if std::mem::take(&mut self.reported) {
                Frozen::Thawed
            } else {
                Frozen::No
            };
        }
        let since = *self.since.get_or_insert(at);
        match (at.0 - since.0 >= STUCK_AFTER_MS, self.reported) {
            (false, _) => Frozen::No,
            (true, false) => {
                self.reported = true;
                Frozen::Froze
            }
            (true, true) => Frozen::Still,
        }
    }
}

/// One device's sampler: the device and its retry state.
#[derive(Debug)]
pub(super) struct Sampler {
    device: Device,
    backoff: Backoff,
    retry_at: Option<tokio::time::Instant>,
    freeze: Freeze,
    /// Freezes are timed in real time from here, not in the samples' time: a demo's accelerated
    /// clock makes 30 s of sample time pass between two polls of a device at rest.
    origin: tokio::time::Instant,
}

impl Sampler {
    pub(super) fn new(device: Device) -> Self {
        Self {
            device,
            backoff: Backoff::default(),
            retry_at: None,
            freeze: Freeze::default(),
            origin: tokio::time::Instant::now(),
        }
    }

    /// The device's sample at `at`, read over `link`; `None` only for a device whose name is
    /// not a device id (names are checked when the configuration is loaded).
    pub(super) async fn sample(&mut self, link: &mut Link, at: Timestamp) -> Option<TelemetrySample> {
        let id = DeviceId::new(self.device.config.name.clone()).ok()?;
        let unreachable = TelemetrySample::unreachable(id.clone(), self.device.profile.device.kind, at);
        if self.retry_at.is_some_and(|t| tokio::time::Instant::now() < t) {
            return Some(unreachable);
        }
        let values = read_points(link, &self.device.profile).await;
        if let Some(e) = values
            .iter()
            .find_map(|(_, v)| v.as_ref().err())
            .filter(|e| e.is_link())
        {
            let delay = self.backoff.next_delay();
            tracing::warn!(device = %self.device.config.name, error = %e, retry_in = ?delay, "device unreachable");
            self.retry_at = Some(tokio::time::Instant::now() + delay);
            return Some(unreachable);
        }
        self.backoff.reset();
        self.retry_at = None;
        let get = |q: Quantity| {
            let p = self.device.profile.quantity(q)?;
            values.iter().find(|(n, _)| *n == p.name)?.1.clone().ok().flatten()
        };
        let failed = values.iter().any(|(_, v)| v.is_err());
        let bits: Vec<Option<u64>> = values
            .iter()
            .map(|(_, v)| v.as_ref().ok().copied().flatten().map(f64::to_bits))
            .collect();
        let real = Timestamp(i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX));
        let frozen = self.freeze.observe(real, bits, get(Quantity::PowerW));
        match frozen {
            Frozen::Froze => {
                tracing::warn!(device = %self.device.config.name, "values frozen for {} s: samples flagged suspect", STUCK_AFTER_MS / 1_000);
            }
            Frozen::Thawed => {
                tracing::warn!(device = %self.device.config.name, "values move again: samples no longer flagged")
            }
            Frozen::No | Frozen::Still => {}
        }
        Some(TelemetrySample {
            power_w: get(Quantity::PowerW).map(|v| W(v.round() as i64)),
            energy_in_wh: get(Quantity::EnergyInWh).map(|v| Wh(v.max(0.0).round() as i64)),
            energy_out_wh: get(Quantity::EnergyOutWh).map(|v| Wh(v.max(0.0).round() as i64)),
            soc_permille: get(Quantity::SocPermille).map(|v| v.clamp(0.0, 1_000.0).round() as u16),
            status: if failed { DeviceStatus::Fault } else { DeviceStatus::Ok },
            quality: if failed || frozen.suspect() {
                Quality::Suspect
            } else {
                Quality::Good
            },
            ..unreachable
        })
    }
}

/// The agent's view of one cycle's samples.
pub(super) fn reading(at: Timestamp, samples: &[TelemetrySample]) -> Reading {
    let sum = |kind: DeviceKind| {
        let mut it = samples
            .iter()
            .filter(|s| s.kind == kind)
            .filter_map(|s| s.power_w)
            .peekable();
        it.peek().is_some().then(|| it.map(|w| w.0 as f64).sum())
    };
    Reading {
        at,
        grid_w: sum(DeviceKind::GridMeter),
        pv_w: sum(DeviceKind::PvInverter),
        battery_w: sum(DeviceKind::Battery),
        soc_permille: samples
            .iter()
            .find(|s| s.kind == DeviceKind::Battery)
            .and_then(|s| s.soc_permille),
        ev_w: sum(DeviceKind::EvCharger),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_values_become_suspect_after_thirty_seconds_unless_the_power_is_zero() {
        let mut f = Freeze::default();
        let v = |x: f64| vec![Some(x.to_bits()), Some(12_345.0f64.to_bits())];
        assert_eq!(f.observe(Timestamp(0), v(812.5), Some(812.5)), Frozen::No);
        for t in (1..30).map(|s| s * 1_000) {
            assert_eq!(f.observe(Timestamp(t), v(812.5), Some(812.5)), Frozen::No, "{t}");
        }
        assert!(f.observe(Timestamp(31_000), v(812.5), Some(812.5)).suspect());
        // a change: fine again
        assert!(!f.observe(Timestamp(32_000), v(812.6), Some(812.6)).suspect());
        // a device at rest legitimately reads the same
        let mut idle = Freeze::default();
        for t in (0..100).map(|s| s * 1_000) {
            assert_eq!(idle.observe(Timestamp(t), v(0.0), Some(0.0)), Frozen::No);
        }
    }

    /// The installer is told once when a device freezes and once when it moves again, however
    /// long it stays frozen: the transitions are what the sampler logs.
    #[test]
    fn freezing_and_thawing_are_each_reported_once() {
        let mut f = Freeze::default();
        let v = |x: f64| vec![Some(x.to_bits())];
        let mut seen = Vec::new();
        // 2 minutes frozen, then moving for a minute, then frozen again for a minute
        for s in 0..240i64 {
            let x = if (120..180).contains(&s) {
                800.0 + s as f64
            } else {
                812.5
            };
            let change = f.observe(Timestamp(s * 1_000), v(x), Some(x));
            if matches!(change, Frozen::Froze | Frozen::Thawed) {
                seen.push((s, change));
            }
        }
        assert_eq!(
            seen,
            vec![(31, Frozen::Froze), (120, Frozen::Thawed), (211, Frozen::Froze)],
            "first frozen sample at 1 s (the second alike), 30 s later; again from 180 s"
        );
    }
}
