//! The store-and-forward outbox: every signed message waits here, on disk, until the market has
//! said it stored it (a signed [`Stored`] receipt), and goes out in the order it was made. The
//! broker's acknowledgement is not enough: a broker (the embedded one dies with the market
//! service) may lose what it acknowledged.
//!
//! One file per message, `<seq, 20 digits>.<kind>`, holding the topic on its first line and the
//! payload after it, written to a temporary name, flushed and renamed into place, so a crash
//! leaves either the whole message or none of it. A restart reads the directory back in sequence
//! order.
//!
//! **Bounded.** At most `capacity` messages. When full, the oldest *telemetry* is dropped first
//! (a gap in a history that the meters' energy counters bridge anyway); orders and
//! demand-response reports are never dropped, so the outbox may go over its bound by as many of
//! those as wait. With a 2-second telemetry period, the default capacity of 50,000 messages holds
//! more than a day of telemetry (at most 64 KiB each, in practice under 2 KiB: about 100 MB).

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

use gridshare_domain::wire::Stored;

/// What a message is, which decides whether it may be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Telemetry: dropped first when full.
    Telemetry,
    /// An order or cancel: never dropped.
    Order,
    /// A demand-response report: never dropped.
    DrReport,
    /// An answer to the market (preferences taken, a check's result): never dropped.
    Answer,
}

impl Kind {
    const fn suffix(self) -> &'static str {
        match self {
            Self::Telemetry => "telemetry",
            Self::Order => "order",
            Self::DrReport => "dr_report",
            Self::Answer => "answer",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "telemetry" => Some(Self::Telemetry),
            "order" => Some(Self::Order),
            "dr_report" => Some(Self::DrReport),
            "answer" => Some(Self::Answer),
            _ => None,
        }
    }
}

/// A waiting message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its envelope's sequence number.
    pub seq: u64,
    /// Its kind.
    pub kind: Kind,
    path: PathBuf,
}

/// The outbox.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    capacity: usize,
    entries: VecDeque<Entry>,
    dropped: u64,
    stored: u64,
}

/// The default bound, in messages.
pub const DEFAULT_CAPACITY: usize = 50_000;

impl Outbox {
    /// Opens (creating) the outbox in `dir`, reading back what waits there.
    pub fn open(dir: &Path, capacity: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut entries = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let path = e?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let Some((seq, kind)) = name.split_once('.') else {
                continue;
            };
            let (Ok(seq), Some(kind)) = (seq.parse::<u64>(), Kind::parse(kind)) else {
                if name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(&path); // a write cut short by a crash
                }
                continue;
            };
            entries.push(Entry { seq, kind, path });
        }
        entries.sort_by_key(|e| e.seq);
        Ok(Self {
            dir: dir.to_owned(),
            capacity: capacity.max(1),
            entries: entries.into(),
            dropped: 0,
            stored: 0,
        })
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Telemetry messages dropped since opening because the outbox was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Messages the market has receipted (and so deleted here) since opening.
    pub fn stored(&self) -> u64 {
        self.stored
    }

    /// The highest sequence number waiting.
    pub fn last_seq(&self) -> Option<u64> {
        self.entries.back().map(|e| e.seq)
    }

    /// Stores a message durably; drops the oldest telemetry when over capacity.
    pub fn push(&mut self, seq: u64, kind: Kind, topic: &str, payload: &[u8]) -> std::io::Result<()> {
        if self.entries.back().is_some_and(|e| e.seq >= seq) {
            return Err(std::io::Error::other(format!(
                "outbox: sequence {seq} is not after the last one waiting"
            )));
        }
        let path = self.dir.join(format!("{seq:020}.{}", kind.suffix()));
        let tmp = self.dir.join(format!("{seq:020}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(topic.as_bytes())?;
            f.write_all(b"\n")?;
            f.write_all(payload)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        self.entries.push_back(Entry { seq, kind, path });
        while self.entries.len() > self.capacity {
            let Some(i) = self.entries.iter().position(|e| e.kind == Kind::Telemetry) else {
                break; // only orders and reports: keep them all
            };
            if let Some(e) = self.entries.remove(i) {
                std::fs::remove_file(&e.path)?;
                self.dropped += 1;
            }
        }
        Ok(())
    }

    /// The oldest message: its entry, topic and payload.
    pub fn front(&self) -> std::io::Result<Option<(Entry, String, Vec<u8>)>> {
        self.next_after(None)
    }

    /// The first message after sequence `after` (`None`: the oldest): its entry, topic and payload.
    pub fn next_after(&self, after: Option<u64>) -> std::io::Result<Option<(Entry, String, Vec<u8>)>> {
        let i = after.map_or(0, |a| self.entries.partition_point(|e| e.seq <= a));
        self.entries.get(i).map(Self::read).transpose()
    }

    /// Deletes every waiting message the receipt names; returns how many there were.
    pub fn remove_stored(&mut self, receipt: &Stored) -> std::io::Result<usize> {
        let mut removed = 0;
        let mut result = Ok(());
        self.entries.retain(|e| {
            if !receipt.contains(e.seq) {
                return true;
            }
            removed += 1;
            if let Err(err) = std::fs::remove_file(&e.path)
                && err.kind() != std::io::ErrorKind::NotFound
                && result.is_ok()
            {
                result = Err(err);
            }
            false
        });
        self.stored += removed as u64;
        result.map(|()| removed)
    }

    fn read(e: &Entry) -> std::io::Result<(Entry, String, Vec<u8>)> {
        let bytes = std::fs::read(&e.path)?;
        let cut = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| std::io::Error::other(format!("outbox file {} has no topic line", e.path.display())))?;
        let topic = String::from_utf8_lossy(&bytes[..cut]).into_owned();
        Ok((e.clone(), topic, bytes[cut + 1..].to_vec()))
    }

    /// Removes the oldest message; `seq` must be the front's.
    pub fn pop(&mut self, seq: u64) -> std::io::Result<()> {
        if self.entries.front().is_some_and(|e| e.seq == seq)
            && let Some(e) = self.entries.pop_front()
        {
            std::fs::remove_file(&e.path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_across_reopen_and_drops_oldest_telemetry_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), 3).unwrap();
        o.push(1, Kind::Telemetry, "t", b"one").unwrap();
        o.push(2, Kind::Order, "o", b"two").unwrap();
        o.push(3, Kind::Telemetry, "t", b"three").unwrap();
        o.push(4, Kind::DrReport, "r", b"four").unwrap();
        assert_eq!(o.dropped(), 1, "telemetry 1 made room");
        assert!(o.push(4, Kind::Telemetry, "t", b"again").is_err(), "sequence must grow");
        drop(o);
        // a crash mid-write leaves a temporary file: ignored and cleaned up
        std::fs::write(dir.path().join("00000000000000000005.tmp"), b"t\nhalf").unwrap();
        let mut o = Outbox::open(dir.path(), 3).unwrap();
        let seqs: Vec<u64> = std::iter::from_fn(|| {
            let (e, topic, payload) = o.front().unwrap()?;
            assert!(!topic.is_empty() && !payload.is_empty());
            o.pop(e.seq).unwrap();
            Some(e.seq)
        })
        .collect();
        assert_eq!(seqs, vec![2, 3, 4]);
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing left on disk"
        );

        // orders are never dropped, even over capacity
        let mut o = Outbox::open(dir.path(), 1).unwrap();
        for seq in 10..15 {
            o.push(seq, Kind::Order, "o", b"x").unwrap();
        }
        assert_eq!((o.len(), o.dropped()), (5, 0));
    }

    #[test]
    fn a_receipt_deletes_exactly_what_it_names_wherever_it_waits() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), 100).unwrap();
        for seq in [3, 4, 6, 7, 9] {
            o.push(seq, Kind::Telemetry, "t", seq.to_string().as_bytes()).unwrap();
        }
        let next = |o: &Outbox, after| o.next_after(after).unwrap().map(|(e, _, p)| (e.seq, p));
        assert_eq!(next(&o, None), Some((3, b"3".to_vec())));
        assert_eq!(next(&o, Some(4)), Some((6, b"6".to_vec())), "5 was never made");
        assert_eq!(next(&o, Some(9)), None);
        // 5 and 8 are not waiting, 10 was never made: naming them deletes nothing else
        let receipt = gridshare_domain::wire::Stored {
            v: 1,
            seqs: vec![[4, 5], [7, 8], [10, 10]],
        };
        assert_eq!(o.remove_stored(&receipt).unwrap(), 2);
        assert_eq!((o.len(), o.stored()), (3, 2));
        assert_eq!(
            o.remove_stored(&receipt).unwrap(),
            0,
            "a receipt seen twice does nothing"
        );
        drop(o);
        let o = Outbox::open(dir.path(), 100).unwrap();
        let left: Vec<u64> =
            std::iter::successors(next(&o, None).map(|(s, _)| s), |s| next(&o, Some(*s)).map(|(s, _)| s)).collect();
        assert_eq!(left, vec![3, 6, 9], "deleted on disk too");
    }
}
