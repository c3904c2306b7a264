//! Sealing messages into the outbox: each message the poller has for the market is given the
//! next sequence number, signed with the gateway's key into an envelope, and appended to the
//! on-disk [`Outbox`]; the sender is then woken to send it.
//!
//! Sequence numbers (and the agent's client order ids) are counters kept in small files in the
//! data directory, reserved ahead of use in blocks of [`Sequence::BLOCK`] and written durably
//! (file and directory synced) before the first number of a block is used, so that a crash or a
//! power cut skips numbers but never repeats one. A repeated sequence number with other content
//! is what the market (and the staking contract) treat as forgery and slash the gateway's bond
//! for, so this must hold even when the power goes at the worst moment.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gridshare_domain::envelope::{EnvelopeError, GatewayKey};
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::wire::Message;
use gridshare_domain::{GatewayId, Timestamp};
use tokio::sync::Notify;

use crate::outbox::{Kind, Outbox};

/// A counter file that cannot be read or saved.
#[derive(Debug, thiserror::Error)]
pub enum SequenceError {
    /// The file holds something other than a number.
    #[error("{path}: not a sequence number")]
    Corrupt {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The next number of a counter kept in a file, never below what the outbox holds.
#[derive(Debug)]
pub(super) struct Sequence {
    path: PathBuf,
    next: u64,
    /// Every number below this one may have been used: the file holds it, synced to disk.
    reserved: u64,
}

impl Sequence {
    /// How many numbers are reserved by one durable write: a restart skips what was left of
    /// the block (fewer than the market's replay window, so nothing is refused for it).
    pub(super) const BLOCK: u64 = 32;

    /// Opens the counter `dir/file`; `outbox_last` is the highest number already in the outbox.
    pub(super) fn open(dir: &Path, file: &str, outbox_last: Option<u64>) -> Result<Self, SequenceError> {
        let path = dir.join(file);
        let saved = match std::fs::read_to_string(&path) {
            Ok(s) => match s.trim().parse::<u64>() {
                Ok(n) => n,
                Err(_) => return Err(SequenceError::Corrupt { path }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(source) => return Err(SequenceError::Io { path, source }),
        };
        let next = saved.max(outbox_last.map_or(1, |s| s + 1));
        Ok(Self {
            path,
            next,
            reserved: next,
        })
    }

    /// The number the next [`Sequence::take`] returns.
    pub(super) fn peek(&self) -> u64 {
        self.next
    }

    /// Takes a number; the first of each block is taken only once the block's end is on disk.
    pub(super) fn take(&mut self) -> Result<u64, SequenceError> {
        let n = self.next;
        if n >= self.reserved {
            let upto = n.saturating_add(Self::BLOCK);
            durable_write(&self.path, &upto.to_string()).map_err(|source| SequenceError::Io {
                path: self.path.clone(),
                source,
            })?;
            self.reserved = upto;
        }
        self.next = n + 1;
        Ok(n)
    }
}

/// Replaces `path` with `text` so that after a crash or power cut it holds either the old or
/// the new text: written to a temporary file, synced, renamed over, and the directory synced.
fn durable_write(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        std::fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })?
        .sync_all()?;
    }
    Ok(())
}

/// Why a message could not be put in the outbox.
#[derive(Debug, thiserror::Error)]
pub(super) enum StoreError {
    /// No sequence number could be saved.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// The message could not be signed (too large for an envelope, say).
    #[error(transparent)]
    Seal(#[from] EnvelopeError),
    /// The envelope could not be written as JSON.
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    /// The sender panicked while holding the outbox.
    #[error("outbox lock poisoned")]
    Poisoned,
    /// The outbox could not keep the message.
    #[error("outbox: {0}")]
    Outbox(std::io::Error),
}

/// Seals messages and appends them to the shared outbox.
#[derive(Debug)]
pub(super) struct Store {
    pub(super) gateway: GatewayId,
    pub(super) key: GatewayKey,
    pub(super) seq: Sequence,
    pub(super) outbox: Arc<Mutex<Outbox>>,
    /// Woken after each message stored: the sender sends it if it is connected.
    pub(super) wake: Arc<Notify>,
    /// Counts the messages made.
    pub(super) traffic: Arc<super::Traffic>,
}

impl Store {
    /// Stores `msg`, stamped `at`, for the gateway's `channel` topic. A message that cannot be
    /// stored is logged and lost: the poller goes on with the next cycle.
    pub(super) fn put(&mut self, kind: Kind, channel: Channel, at: Timestamp, msg: Message) {
        match self.push(kind, channel, at, &msg) {
            Ok(()) => {
                self.traffic.count_made();
                self.wake.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "storing a message"),
        }
    }

    fn push(&mut self, kind: Kind, channel: Channel, at: Timestamp, msg: &Message) -> Result<(), StoreError> {
        let n = self.seq.take()?;
        let env = self.key.seal(self.gateway, n, at, msg)?;
        let body = serde_json::to_vec(&env)?;
        let mut o = self.outbox.lock().map_err(|_| StoreError::Poisoned)?;
        o.push(n, kind, &topics::topic(self.gateway, channel), &body)
            .map_err(StoreError::Outbox)
    }

    /// How many messages wait in the outbox (0 if the sender panicked holding it).
    pub(super) fn waiting(&self) -> usize {
        self.outbox.lock().map(|o| o.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_resumes_after_what_was_saved_and_what_the_outbox_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sequence::open(dir.path(), "seq", None).unwrap();
        assert_eq!((s.take().unwrap(), s.take().unwrap()), (1, 2));
        // a restart (or a crash: nothing is written after the block's first number) goes on
        // after the reserved block, never below a number that may have been used
        let block = Sequence::BLOCK;
        assert_eq!(Sequence::open(dir.path(), "seq", None).unwrap().peek(), 1 + block);
        assert_eq!(Sequence::open(dir.path(), "seq", Some(9)).unwrap().peek(), 1 + block);
        assert_eq!(
            Sequence::open(dir.path(), "seq", Some(block + 5)).unwrap().peek(),
            block + 6
        );
        // a whole block and one more: the second block is reserved before its first number
        for want in 3..=block + 1 {
            assert_eq!(s.take().unwrap(), want);
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("seq")).unwrap(),
            (1 + 2 * block).to_string()
        );
        assert_eq!(Sequence::open(dir.path(), "seq", None).unwrap().peek(), 1 + 2 * block);
        std::fs::write(dir.path().join("seq"), "x").unwrap();
        let err = Sequence::open(dir.path(), "seq", None).unwrap_err().to_string();
        assert!(err.ends_with("seq: not a sequence number"), "{err}");
    }
}
