//! The market's clock, as a value handed to whoever needs "now": the engine thread, the book
//! scheduler, demand-response verification, settlement and the adapters. Production runs on the
//! wall clock; the demo and tests run an accelerated one (market time anchored at a moment and
//! running `speed` times faster). There is no process-global clock: two markets in one process
//! (tests do this) each keep their own time.

use std::sync::Arc;
use std::time::Instant;

use gridshare_domain::Timestamp;

/// The real time now, in ms since the epoch (sessions, logs: never the accelerated clock).
pub fn wall_clock() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    )
}

/// Market time: cheap to clone, `Send + Sync`, and never goes back within one run.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    accelerated: Option<Arc<Accelerated>>,
}

#[derive(Debug)]
struct Accelerated {
    /// Market time at `since`.
    at: Timestamp,
    since: Instant,
    speed: f64,
}

impl Clock {
    /// The wall clock.
    pub fn wall() -> Self {
        Self::default()
    }

    /// A clock reading `at` now and running `speed` times faster than real time from here
    /// (`speed` 1.0 with `at` = now is the wall clock, but anchored).
    pub fn accelerated(at: Timestamp, speed: f64) -> Self {
        Self {
            accelerated: Some(Arc::new(Accelerated {
                at,
                since: Instant::now(),
                speed,
            })),
        }
    }

    /// Market time now, in ms since the epoch.
    pub fn now(&self) -> Timestamp {
        match &self.accelerated {
            None => wall_clock(),
            Some(a) => Timestamp(a.at.0 + (a.since.elapsed().as_secs_f64() * a.speed * 1000.0) as i64),
        }
    }

    /// How many times faster than real time market time runs (1.0 on the wall clock).
    pub fn speed(&self) -> f64 {
        self.accelerated.as_ref().map_or(1.0, |a| a.speed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accelerated_clock_runs_faster_and_two_clocks_are_independent() {
        let fast = Clock::accelerated(Timestamp(1_000_000), 1_000.0);
        let other = Clock::accelerated(Timestamp(5), 1.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let t = fast.now().0 - 1_000_000;
        assert!(
            t >= 20_000,
            "20 ms at 1000x is at least 20 s of market time, got {t} ms"
        );
        assert!(other.now().0 < 1_000, "the second clock keeps its own anchor");
        assert_eq!(fast.speed(), 1_000.0);
    }

    #[test]
    fn the_wall_clock_is_real_time() {
        let c = Clock::wall();
        let d = (c.now().0 - wall_clock().0).abs();
        assert!(d < 1_000, "wall clock off by {d} ms");
        assert_eq!(c.speed(), 1.0);
    }
}
