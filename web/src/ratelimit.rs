//! Per-key rate limits: a token bucket per API key (or client address),
//! refilled continuously. A request that finds the bucket empty is answered
//! 429 with the seconds to wait, and costs nothing else.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    max_keys: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Most keys tracked: past it, full (idle) buckets are dropped, then the least recently used.
pub const MAX_KEYS: usize = 100_000;

impl RateLimiter {
    /// A limiter applying `limit` to every key.
    pub fn new(limit: RateLimit) -> Self {
        Self::bounded(limit, MAX_KEYS)
    }

    /// A limiter applying `limit` to every key, tracking at most `max_keys` of them.
    pub fn bounded(limit: RateLimit, max_keys: usize) -> Self {
        Self {
            limit,
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// How many keys are tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Take one token for `key` at `now`; `Err(wait)` when none is left.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        // A poisoned lock only means another request panicked mid-update; the map is usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= self.max_keys && !buckets.contains_key(key) {
            let limit = self.limit;
            buckets.retain(|_, b| Self::refill(limit, *b, now).tokens < limit.burst);
            if buckets.len() >= self.max_keys {
                // every bucket is in use (many clients, or one with many names): forget the
                // tenth least recently used (at least one, ties broken arbitrarily), so memory
                // stays bounded whatever the keys and however close together they came
                let mut by_age: Vec<(Instant, String)> = buckets.iter().map(|(k, b)| (b.at, k.clone())).collect();
                let cut = (by_age.len() / 10).max(1);
                by_age.select_nth_unstable_by_key(cut - 1, |(at, _)| *at);
                for (_, k) in &by_age[..cut] {
                    buckets.remove(k);
                }
            }
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.limit.burst,
            at: now,
        });
        *b = Self::refill(self.limit, *b, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.limit.per_second))
        }
    }

    fn refill(limit: RateLimit, b: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        Bucket {
            tokens: (b.tokens + elapsed * limit.per_second).min(limit.burst),
            at: now.max(b.at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3.0,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rl.check("k", t0).is_ok());
        }
        let wait = rl.check("k", t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        assert!(rl.check("other", t0).is_ok(), "keys are independent");
        assert!(rl.check("k", t0 + Duration::from_millis(500)).is_ok());
        assert!(rl.check("k", t0 + Duration::from_millis(500)).is_err());
        assert!(rl.check("k", t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn memory_stays_bounded_when_every_bucket_is_in_use() {
        let rl = RateLimiter::bounded(
            RateLimit {
                per_second: 0.001,
                burst: 1.0,
            },
            1_000,
        );
        let t0 = Instant::now();
        // every key spends its one token, so none is idle and full
        for i in 0..50_000u32 {
            let _ = rl.check(&format!("attacker-{i}"), t0 + Duration::from_micros(u64::from(i)));
        }
        assert!(rl.tracked() <= 1_000, "{} keys tracked", rl.tracked());
        // keys that all arrive at the same instant cannot keep the map growing either
        let same = RateLimiter::bounded(
            RateLimit {
                per_second: 0.001,
                burst: 1.0,
            },
            5,
        );
        for i in 0..1_000u32 {
            let _ = same.check(&format!("k{i}"), t0);
        }
        assert!(same.tracked() <= 5, "{} keys tracked", same.tracked());
        // the newest keys are still limited: their buckets were kept
        assert!(rl.check("attacker-49999", t0 + Duration::from_secs(1)).is_err());
    }
}
