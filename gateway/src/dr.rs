//! Demand response at the gateway: the operator's event (OpenADR 3 concepts: intervals of
//! signals) becomes device writes, done safely.
//!
//! - **Mapping.** `battery_setpoint` → the battery's power setpoint; `ev_current_limit` → the EV
//!   charger's current limit; `export_limit` → an inverter's export limit (when a profile has
//!   one); `load_shed` and `import_limit` → discharge the battery by the power asked (for an
//!   import limit: by the import above it) and hold the EV charger at its minimum current;
//!   `price` asks for nothing.
//! - **Clamping.** Every target is clamped to the point's limits in its profile. A point that
//!   trips on 0 never gets 0: it gets its lowest non-zero limit, or nothing when that is 0 too.
//! - **Ramping.** Each cycle moves a setpoint by at most 20 % of its range towards its target.
//! - **Read-back.** Every write is read back; the interval counts as confirmed when every
//!   setpoint reads back at its target.
//! - **Revert.** The value each point had before the event is saved at its first write and
//!   written back when the event ends, when it is cancelled, or when the gateway has lost the
//!   market for longer than the revert timeout.
//! - **Report.** Once per interval, when its setpoints are all confirmed (or at its end if they
//!   never are), a report gives the grid power measured then against the baseline (the mean grid
//!   power over the 15 minutes before the event began) and says what could not be done. When the
//!   interval ends (or the event is cancelled) a final report for it replaces the first, with the
//!   mean grid power from confirmation to the end.

use std::collections::{BTreeMap, VecDeque};

use gridshare_domain::wire::{DeviceKind, DrEvent, DrReport, DrSignal, ValidationError};
use gridshare_domain::{EventId, Timestamp, W};

use crate::config::Device;
use crate::modbus::{Link, ModbusError};
use crate::profile::{Point, Quantity, Table, WriteFunction};

/// Share of a setpoint's range one cycle may move it.
pub const RAMP_SHARE: f64 = 0.2;

/// A setpoint wanted on a device: (device index, point name) → value in the point's unit.
pub type Targets = BTreeMap<(usize, String), f64>;

fn find(devices: &[Device], kind: DeviceKind, q: Quantity) -> Option<(usize, &Point)> {
    devices.iter().enumerate().find_map(|(i, d)| {
        (d.profile.device.kind == kind)
            .then(|| d.profile.quantity(q).filter(|p| p.writable.is_some()))
            .flatten()
            .map(|p| (i, p))
    })
}

/// Clamps `v` to a writable point's limits, never 0 where that trips the device.
pub fn clamp(p: &Point, v: f64) -> Option<f64> {
    let w = p.writable?;
    let mut v = v.clamp(w.min, w.max);
    if w.trips_on_zero && v.abs() < f64::EPSILON {
        v = if w.min > 0.0 { w.min } else { return None };
    }
    Some(v)
}

/// What `signals` ask of `devices`, given the grid power now (`+` import), with notes on what
/// cannot be done.
pub fn targets(signals: &[DrSignal], devices: &[Device], grid_w: Option<f64>) -> (Targets, Vec<String>) {
    let mut out = Targets::new();
    let mut notes = Vec::new();
    let battery = find(devices, DeviceKind::Battery, Quantity::BatterySetpointW);
    let ev = find(devices, DeviceKind::EvCharger, Quantity::EvCurrentLimitA);
    let mut set = |target: Option<(usize, &Point)>, v: f64, what: &str, notes: &mut Vec<String>| match target {
        Some((i, p)) => match clamp(p, v) {
            Some(v) => {
                out.insert((i, p.name.clone()), v);
            }
            None => notes.push(format!("{what}: {} cannot be set to 0 safely", p.name)),
        },
        None => notes.push(format!("{what}: no device here can do it")),
    };
    for s in signals {
        match *s {
            DrSignal::BatterySetpoint { w } => set(battery, w.0 as f64, "battery_setpoint", &mut notes),
            DrSignal::EvCurrentLimit { milliamps } => {
                set(ev, milliamps as f64 / 1_000.0, "ev_current_limit", &mut notes);
            }
            DrSignal::ExportLimit { w } => {
                let inverter = devices.iter().enumerate().find_map(|(i, d)| {
                    d.profile
                        .quantity(Quantity::ExportLimitW)
                        .filter(|p| p.writable.is_some())
                        .map(|p| (i, p))
                });
                set(inverter, w.0 as f64, "export_limit", &mut notes);
            }
            DrSignal::LoadShed { w } => {
                set(battery, -(w.0 as f64), "load_shed", &mut notes);
                if let Some((_, p)) = ev {
                    let min = p.writable.map_or(0.0, |l| l.min);
                    set(ev, min, "load_shed", &mut notes);
                }
            }
            DrSignal::ImportLimit { w } => {
                let excess = grid_w.map_or(0.0, |g| (g - w.0 as f64).max(0.0));
                set(battery, -excess, "import_limit", &mut notes);
                if let Some((_, p)) = ev {
                    let min = p.writable.map_or(0.0, |l| l.min);
                    set(ev, min, "import_limit", &mut notes);
                }
            }
            DrSignal::Price { .. } => {}
        }
    }
    (out, notes)
}

/// One step from `current` towards `target`: at most [`RAMP_SHARE`] of the point's range.
pub fn ramp(p: &Point, current: f64, target: f64) -> f64 {
    let Some(w) = p.writable else { return current };
    let step = RAMP_SHARE * (w.max - w.min);
    current + (target - current).clamp(-step, step)
}

/// Reads a point's engineering value.
pub async fn read_value(link: &mut Link, device: &Device, p: &Point) -> Result<Option<f64>, ModbusError> {
    let words = link.read(p.table, p.address, p.ty.registers()).await?;
    Ok(p.ty
        .decode(&words, device.profile.device.word_order)
        .map(|v| v * p.scale))
}

/// Writes a point's engineering value (with the function its profile names) and reads it back;
/// true when it reads back as written.
pub async fn write_value(link: &mut Link, device: &Device, p: &Point, v: f64) -> Result<bool, ModbusError> {
    let order = device.profile.device.word_order;
    let Some(words) = p.ty.encode(v / p.scale, order) else {
        return Ok(false);
    };
    if p.table != Table::Holding {
        return Ok(false);
    }
    match (p.writable.map(|w| w.function).unwrap_or_default(), words.as_slice()) {
        (WriteFunction::Single, &[word]) => link.write_single(p.address, word).await?,
        _ => link.write(p.address, &words).await?,
    }
    let back = link.read(p.table, p.address, p.ty.registers()).await?;
    Ok(back == words)
}

/// How far back the baseline looks, ms.
pub const BASELINE_MS: i64 = 15 * 60_000;

/// The grid power measured over an interval after its first report.
#[derive(Debug, Clone)]
struct Measure {
    first: DrReport,
    sum_w: f64,
    n: u32,
}

impl Measure {
    fn report(self, now: Timestamp) -> Option<DrReport> {
        (self.n > 0).then(|| DrReport {
            measured_w: W((self.sum_w / f64::from(self.n)).round() as i64),
            at: now,
            ..self.first
        })
    }
}

/// The event being carried out.
#[derive(Debug)]
struct Active {
    event: DrEvent,
    /// Values before the event, by point.
    saved: Targets,
    baseline_w: Option<f64>,
    /// Intervals already reported.
    reported: Vec<u32>,
    /// The interval being measured for its final report.
    measure: Option<Measure>,
}

/// A demand-response event that is not valid, and so not carried out.
#[derive(Debug, thiserror::Error)]
#[error("demand-response event {event_id}: {source}")]
pub struct EventError {
    /// The event's id.
    pub event_id: EventId,
    /// What is wrong with it.
    pub source: ValidationError,
}

/// Carries out demand-response events on a gateway's devices.
#[derive(Debug, Default)]
pub struct Controller {
    active: Option<Active>,
    /// Events waiting to start or be replaced.
    pending: Option<DrEvent>,
    /// Grid power of the last [`BASELINE_MS`], for the baseline.
    history: VecDeque<(i64, f64)>,
}

impl Controller {
    /// A new event (or a new version of one, or its cancellation). A higher-priority event
    /// replaces the one running; a lower one is ignored while the other runs.
    pub fn on_event(&mut self, event: DrEvent) -> Result<(), EventError> {
        event.validate().map_err(|source| EventError {
            event_id: event.event_id,
            source,
        })?;
        let running = self.active.as_ref().map(|a| (a.event.event_id, a.event.priority));
        match running {
            Some((id, _)) if id == event.event_id => self.pending = Some(event),
            Some((_, prio)) if event.priority < prio && !event.cancelled => {
                tracing::info!(event = %event.event_id, "lower priority than the event running; ignored");
            }
            _ => self.pending = Some(event),
        }
        Ok(())
    }

    /// True while an event holds the devices.
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// Writes the saved values back and forgets the event.
    pub async fn revert(&mut self, links: &mut [Link], devices: &[Device]) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(a) = self.active.take() {
            for ((i, name), v) in &a.saved {
                let (Some(d), Some(link)) = (devices.get(*i), links.get_mut(*i)) else {
                    continue;
                };
                let Some(p) = d.profile.point(name) else { continue };
                match write_value(link, d, p, *v).await {
                    Ok(true) => {}
                    Ok(false) => notes.push(format!("{}: reverting {name} did not read back", d.config.name)),
                    Err(e) => notes.push(format!("{}: reverting {name}: {e}", d.config.name)),
                }
            }
            tracing::info!(event = %a.event.event_id, "demand response ended; devices restored");
        }
        notes
    }

    /// The final report of the interval being measured, if any.
    fn finish(&mut self, now: Timestamp) -> Option<DrReport> {
        self.active.as_mut()?.measure.take()?.report(now)
    }

    /// One control cycle at `now` with the grid power `grid_w`: start, step or end the event.
    /// Returns the reports due: an interval's first when its setpoints hold, its final one when
    /// it is over.
    pub async fn cycle(
        &mut self,
        links: &mut [Link],
        devices: &[Device],
        now: Timestamp,
        grid_w: Option<f64>,
    ) -> Vec<DrReport> {
        let mut out = Vec::new();
        if let Some(w) = grid_w
            && self.history.back().is_none_or(|(t, _)| *t < now.0)
        {
            self.history.push_back((now.0, w));
        }
        while self.history.front().is_some_and(|(t, _)| *t < now.0 - BASELINE_MS) {
            self.history.pop_front();
        }
        if let Some(next) = self.pending.take() {
            let replaces = self.active.as_ref().is_some_and(|a| a.event.event_id != next.event_id);
            if replaces || next.cancelled {
                out.extend(self.finish(now));
                self.revert(links, devices).await;
            }
            if !next.cancelled {
                let keep = self.active.take().filter(|a| a.event.event_id == next.event_id);
                let baseline_w = (!self.history.is_empty())
                    .then(|| self.history.iter().map(|(_, w)| w).sum::<f64>() / self.history.len() as f64)
                    .or(grid_w);
                self.active = Some(match keep {
                    Some(a) => Active { event: next, ..a },
                    None => Active {
                        event: next,
                        saved: Targets::new(),
                        baseline_w,
                        reported: Vec::new(),
                        measure: None,
                    },
                });
            }
        }
        let Some(a) = self.active.as_ref() else {
            return out;
        };
        let Some(last_end) = a.event.intervals.iter().map(|i| i.end()).max() else {
            return out;
        };
        if now >= last_end {
            out.extend(self.finish(now));
            self.revert(links, devices).await;
            return out;
        }
        let Some(interval) = a
            .event
            .intervals
            .iter()
            .find(|i| i.start <= now && now < i.end())
            .cloned()
        else {
            out.extend(self.finish(now));
            return out;
        };
        if a.measure.as_ref().is_some_and(|m| m.first.interval_id != interval.id) {
            out.extend(self.finish(now));
        }
        if let (Some(m), Some(w)) = (self.active.as_mut().and_then(|a| a.measure.as_mut()), grid_w) {
            m.sum_w += w;
            m.n += 1;
        }
        let (want, mut notes) = targets(&interval.signals, devices, grid_w);
        let mut confirmed = true;
        for ((i, name), target) in &want {
            let (Some(d), Some(link)) = (devices.get(*i), links.get_mut(*i)) else {
                continue;
            };
            let Some(p) = d.profile.point(name) else { continue };
            let current = match read_value(link, d, p).await {
                Ok(Some(v)) => v,
                Ok(None) => {
                    notes.push(format!("{}: {name} unreadable", d.config.name));
                    confirmed = false;
                    continue;
                }
                Err(e) => {
                    notes.push(format!("{}: {e}", d.config.name));
                    confirmed = false;
                    continue;
                }
            };
            if let Some(a) = self.active.as_mut() {
                a.saved.entry((*i, name.clone())).or_insert(current);
            }
            if (current - target).abs() < 1e-6 {
                continue;
            }
            let next = clamp(p, ramp(p, current, *target)).unwrap_or(current);
            match write_value(link, d, p, next).await {
                Ok(true) if (next - target).abs() < 1e-6 => {}
                Ok(true) => confirmed = false, // still ramping
                Ok(false) => {
                    notes.push(format!("{}: {name} did not read back as written", d.config.name));
                    confirmed = false;
                }
                Err(e) => {
                    notes.push(format!("{}: writing {name}: {e}", d.config.name));
                    confirmed = false;
                }
            }
        }
        let Some(a) = self.active.as_mut() else {
            return out;
        };
        let interval_over_soon = now.0 >= interval.end().0 - 1_000;
        if a.reported.contains(&interval.id) || !(confirmed || interval_over_soon) {
            return out;
        }
        a.reported.push(interval.id);
        let first = DrReport {
            event_id: a.event.event_id,
            interval_id: interval.id,
            baseline_w: a.baseline_w.map(|b| W(b.round() as i64)),
            measured_w: W(grid_w.unwrap_or(0.0).round() as i64),
            confirmed: confirmed && notes.is_empty(),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
            at: now,
        };
        a.measure = Some(Measure {
            first: first.clone(),
            sum_w: grid_w.unwrap_or(0.0),
            n: u32::from(grid_w.is_some()),
        });
        out.push(first);
        out
    }
}
