//! Readings rolled up in five-minute blocks, kept as readings are stored, so that a reward epoch
//! reads one row per gateway, device and block instead of every sample (issue 20: an epoch of
//! 1,000 homes read 1.44 million readings back and took 3.6 s on PostgreSQL).
//!
//! A block is 300,000 ms of a reading's `at` (`block = at / 300000`), cut in sixty slices of five
//! seconds. Per gateway, device and block, `reading_blocks` keeps
//! - `periods`: bit `i` set when the device has a reading in slice `i`, whatever its kind or
//!   quality (the uptime share counts periods of whole slices: a period is complete when every
//!   device has a reading in one of its slices);
//! - `export_max`: the highest export counter of the block's grid-meter readings not marked
//!   suspect (an interval's export counts from these; intervals are 5, 15 or 60 minutes, whole
//!   blocks).
//!
//! Both are kept with a bitwise or and a max, which a re-sent envelope cannot change, in the
//! transaction that stores the readings (`readings::insert_batch_with_windows`): a crash
//! leaves both or neither. Migration 0026 built the blocks of readings stored before it.

use std::collections::BTreeMap;

use gridshare_domain::GatewayId;
use gridshare_domain::wire::{DeviceKind, Quality, TelemetrySample};

use crate::error::{Result, StorageError};

/// A block's length, ms.
pub const BLOCK_MS: i64 = 300_000;
/// A slice's length, ms: an uptime period must be a whole number of slices.
pub const SLICE_MS: i64 = 5_000;
/// Slices per block (bits used in `periods`).
pub const SLICES: i64 = BLOCK_MS / SLICE_MS;

/// One block's roll-up of a batch of readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub gateway: i64,
    pub device: String,
    pub block: i64,
    pub periods: i64,
    pub export_max: Option<i64>,
}

/// The blocks a batch of readings touches, in key order (so that concurrent batches take
/// PostgreSQL's row locks in one order and cannot deadlock).
pub(crate) fn roll_up<'a>(rows: impl IntoIterator<Item = (GatewayId, &'a TelemetrySample)>) -> Vec<Block> {
    let mut blocks: BTreeMap<(i64, &str, i64), (i64, Option<i64>)> = BTreeMap::new();
    for (gateway, s) in rows {
        let block = s.at.0.div_euclid(BLOCK_MS);
        let slice = s.at.0.rem_euclid(BLOCK_MS) / SLICE_MS;
        let export = match (s.kind, s.quality, s.energy_out_wh) {
            (DeviceKind::GridMeter, q, Some(out)) if q != Quality::Suspect => Some(out.get()),
            _ => None,
        };
        let e = blocks
            .entry((gateway.0 as i64, s.device.as_str(), block))
            .or_insert((0, None));
        e.0 |= 1 << slice;
        e.1 = e.1.max(export);
    }
    blocks
        .into_iter()
        .map(|((gateway, device, block), (periods, export_max))| Block {
            gateway,
            device: device.to_owned(),
            block,
            periods,
            export_max,
        })
        .collect()
}

/// The upsert for SQLite, `rows` rows of five plain `?` placeholders.
pub(crate) fn sqlite_upsert(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO reading_blocks (gateway_id, device, block, periods, export_max) VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(?,?,?,?,?)" } else { ",(?,?,?,?,?)" });
    }
    sql.push_str(
        " ON CONFLICT (block, gateway_id, device) DO UPDATE SET periods = periods | excluded.periods, \
         export_max = CASE WHEN excluded.export_max IS NULL THEN export_max \
         WHEN export_max IS NULL THEN excluded.export_max ELSE max(export_max, excluded.export_max) END",
    );
    sql
}

/// Rows per SQLite upsert: 5 × 1,000 variables, under SQLite's 32,766.
pub(crate) const SQLITE_CHUNK: usize = 1_000;

/// The upsert for PostgreSQL, one statement for the whole batch.
pub(crate) const PG_UPSERT: &str = "INSERT INTO reading_blocks (gateway_id, device, block, periods, export_max) \
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) \
     ON CONFLICT (block, gateway_id, device) DO UPDATE SET periods = reading_blocks.periods | EXCLUDED.periods, \
     export_max = GREATEST(reading_blocks.export_max, EXCLUDED.export_max)";

/// Checks that `ms` (named `what`) is a positive whole number of `unit` ms.
pub(crate) fn whole(what: &str, ms: i64, unit: i64) -> Result<()> {
    if ms <= 0 || ms % unit != 0 {
        return Err(StorageError::Refused {
            constraint: what.into(),
            message: format!("{ms} ms is not a positive whole number of {} s", unit / 1000),
        });
    }
    Ok(())
}

/// Uptime periods of `period_ms` lying wholly in `[from, to)`: `(first, end)` as period numbers
/// (`at / period_ms`), `end` exclusive.
pub fn periods_in(from: i64, to: i64, period_ms: i64) -> (i64, i64) {
    let period = period_ms.max(1);
    let first = from.div_euclid(period) + i64::from(from.rem_euclid(period) != 0);
    (first, to.div_euclid(period).max(first))
}

/// Per gateway, how many of the periods in `[first, end)` (period numbers, `slices` slices each)
/// have a reading of every device the gateway reported in them, from its blocks `(gateway,
/// device, block, periods, …)` sorted by gateway (devices by any key). A gateway whose blocks have no reading in the
/// range is left out.
pub(crate) fn complete<D: Ord, T>(
    rows: &[(i64, D, i64, i64, T)],
    first: i64,
    end: i64,
    slices: i64,
) -> Vec<(i64, u64)> {
    let span = usize::try_from(end - first).unwrap_or(0);
    let words = span.div_ceil(64);
    let mut out = Vec::new();
    for gateway in rows.chunk_by(|a, b| a.0 == b.0) {
        // one bit per period of the range, per device
        let mut seen: BTreeMap<&D, Vec<u64>> = BTreeMap::new();
        for (_, device, block, periods, _) in gateway {
            let mut bits = *periods as u64;
            while bits != 0 {
                let i = i64::from(bits.trailing_zeros());
                bits &= bits - 1;
                let period = (block * SLICES + i).div_euclid(slices);
                if period < first || period >= end {
                    continue;
                }
                let k = (period - first) as usize;
                seen.entry(device).or_insert_with(|| vec![0; words])[k / 64] |= 1 << (k % 64);
            }
        }
        let mut devices = seen.values();
        let Some(all) = devices.next().cloned() else {
            continue;
        };
        let all = devices.fold(all, |acc, d| acc.iter().zip(d).map(|(a, b)| a & b).collect());
        out.push((gateway[0].0, all.iter().map(|w| u64::from(w.count_ones())).sum()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_in_counts_only_whole_periods() {
        assert_eq!(periods_in(0, 600_000, 60_000), (0, 10));
        // 35 s periods in a 15-minute span from 15:00: the first starts at 900,025 ms
        assert_eq!(periods_in(900_000, 1_800_000, 35_000), (26, 51));
        assert_eq!(periods_in(10, 20, 60_000), (1, 1));
    }

    #[test]
    fn a_period_is_complete_when_every_device_has_a_reading_in_one_of_its_slices() {
        // one-minute periods (12 slices); meter in slice 1 and inverter in slice 7 of minute 0,
        // only the meter in minute 1, both in minute 2; another gateway always alone
        let rows = vec![
            (1, "inverter".to_owned(), 0, (1 << 7) | (1 << 25), ()),
            (1, "meter".to_owned(), 0, (1 << 1) | (1 << 13) | (1 << 24), ()),
            (2, "meter".to_owned(), 0, 1 | (1 << 12), ()),
        ];
        assert_eq!(complete(&rows, 0, 5, 12), vec![(1, 2), (2, 2)]);
        // the range cuts minute 0 off
        assert_eq!(complete(&rows, 1, 5, 12), vec![(1, 1), (2, 1)]);
        // nothing in range: left out
        assert_eq!(complete(&rows, 3, 5, 12), vec![]);
    }
}
