//! Recovery: snapshots written atomically, and an engine rebuilt from the last snapshot plus the
//! journal commands after it.

use super::*;

/// Write a snapshot atomically (temporary file, fsync, rename), as JSON.
pub fn write_snapshot(path: &Path, snap: &crate::Snapshot) -> Result<(), JournalError> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(JournalError::io(&tmp))?;
        serde_json::to_writer(&mut f, snap).map_err(|source| JournalError::SnapshotEncode {
            path: tmp.clone(),
            source,
        })?;
        f.sync_all().map_err(JournalError::io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(JournalError::io(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the rename itself durable.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(JournalError::io(dir))?;
    }
    Ok(())
}

/// How the work after applying a command went (the command itself was applied).
#[derive(Debug)]
pub enum AfterApply {
    /// Journaled, applied, and (after a gate closure) flushed and snapshotted.
    Fine,
    /// The flush after a gate closure failed: the command is applied but may not be on disk, and
    /// the journal refuses every later command.
    FlushFailed(JournalError),
    /// The snapshot after a gate closure could not be written; the journal holds everything.
    SnapshotFailed(JournalError),
}

/// What recovery rebuilt.
#[derive(Debug)]
pub struct Restored {
    /// The engine, at the end of the journal.
    pub engine: crate::Engine,
    /// Journal commands replayed after the snapshot.
    pub replayed: u64,
    /// Commands in the journal in all.
    pub total: u64,
    /// A torn tail that was cut off, if any.
    pub torn: Option<TornTail>,
}

/// Recovery: the snapshot at `snapshot` (if the file exists) plus the journal
/// commands after it. A torn journal tail is cut off and reported.
pub fn restore(cfg: crate::MarketConfig, snapshot: &Path, journal: &Path) -> Result<Restored, RestoreError> {
    let (mut engine, skip) = match File::open(snapshot) {
        Ok(f) => {
            let snap: crate::Snapshot =
                serde_json::from_reader(BufReader::new(f)).map_err(|source| RestoreError::SnapshotDecode {
                    path: snapshot.to_owned(),
                    source,
                })?;
            let skip = snap.journal_commands;
            (
                crate::Engine::restore(cfg, &snap).map_err(|source| RestoreError::SnapshotMismatch {
                    path: snapshot.to_owned(),
                    source,
                })?,
                skip,
            )
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (crate::Engine::new(cfg)?, 0),
        Err(e) => return Err(JournalError::io(snapshot)(e).into()),
    };
    let rec = recover(journal)?;
    if (rec.commands.len() as u64) < skip {
        return Err(RestoreError::SnapshotAhead {
            snapshot: snapshot.to_owned(),
            covers: skip,
            holds: rec.commands.len() as u64,
        });
    }
    let mut sink = crate::CountingSink::default();
    let tail = &rec.commands[skip as usize..];
    for c in tail {
        engine.apply(c, &mut sink);
    }
    Ok(Restored {
        engine,
        replayed: tail.len() as u64,
        total: rec.commands.len() as u64,
        torn: rec.torn,
    })
}

/// Why recovery failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The journal (or the snapshot file) could not be read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The market configuration is invalid.
    #[error("market configuration: {0}")]
    Config(#[from] ConfigError),
    /// The snapshot file is not a snapshot.
    #[error("snapshot {}: cannot decode: {source}", path.display())]
    SnapshotDecode {
        /// The snapshot file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: serde_json::Error,
    },
    /// The snapshot does not fit the configuration.
    #[error("snapshot {}: {source}", path.display())]
    SnapshotMismatch {
        /// The snapshot file.
        path: PathBuf,
        /// What does not fit.
        #[source]
        source: SnapshotError,
    },
    /// The snapshot covers more commands than the journal holds.
    #[error("snapshot {} covers {covers} commands but the journal holds {holds}", snapshot.display())]
    SnapshotAhead {
        /// The snapshot file.
        snapshot: PathBuf,
        /// Commands the snapshot includes.
        covers: u64,
        /// Commands in the journal.
        holds: u64,
    },
}

/// What [`Journaled::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Journal commands replayed after the snapshot.
    pub replayed: u64,
    /// Commands in the journal in all.
    pub total: u64,
    /// A torn tail that was cut off, if any.
    pub torn: Option<TornTail>,
}

/// An engine whose commands are journaled before they take effect, with a
/// snapshot written after every gate closure — what a service runs.
///
/// Files in its directory: `engine.journal` and `engine.snapshot.json`.
/// Every command is journaled (rejected ones too: replaying them rejects them
/// again, so the journal stays a plain log of input). With group commit, hold
/// acknowledgements until [`Journaled::durable`] covers the command.
#[derive(Debug)]
pub struct Journaled {
    engine: crate::Engine,
    writer: JournalWriter,
    snapshot: std::path::PathBuf,
    commands: u64,
}

impl Journaled {
    /// Open (recovering from snapshot + journal if present) in `dir`.
    pub fn open(
        cfg: crate::MarketConfig,
        dir: &Path,
        durability: Durability,
    ) -> Result<(Self, Recovery), RestoreError> {
        std::fs::create_dir_all(dir).map_err(JournalError::io(dir))?;
        let journal = dir.join("engine.journal");
        let snapshot = dir.join("engine.snapshot.json");
        let restored = if journal.exists() {
            restore(cfg, &snapshot, &journal)?
        } else {
            let engine = crate::Engine::new(cfg)?;
            Restored {
                engine,
                replayed: 0,
                total: 0,
                torn: None,
            }
        };
        let writer = JournalWriter::open(&journal, durability)?;
        let Restored {
            engine,
            replayed,
            total,
            torn,
        } = restored;
        Ok((
            Self {
                engine,
                writer,
                snapshot,
                commands: total,
            },
            Recovery { replayed, total, torn },
        ))
    }

    /// Journal `cmd`, apply it, and after a gate closure flush and snapshot.
    ///
    /// `Err`: the command was not journaled and **not applied** (the engine is as it was); the
    /// journal then refuses every later command too ([`JournalError::Failed`]) until it is opened
    /// again, so what is on disk stays exactly what the engine applied. `Ok` with a
    /// [`AfterApply`] problem: the command was applied and its events are in `out`, but the
    /// flush or the snapshot after it failed. A failed snapshot only costs a longer replay at
    /// the next start; a failed flush stops the journal as above (see [`Self::failure`]).
    pub fn apply(&mut self, cmd: &Command, out: &mut impl crate::EventSink) -> Result<AfterApply, JournalError> {
        self.writer.append(cmd)?;
        self.commands += 1;
        self.engine.apply(cmd, out);
        if matches!(cmd, Command::CloseGate { .. }) {
            if let Err(e) = self.writer.flush() {
                return Ok(AfterApply::FlushFailed(e));
            }
            if let Err(e) = write_snapshot(&self.snapshot, &self.engine.snapshot(self.commands)) {
                return Ok(AfterApply::SnapshotFailed(e));
            }
        }
        Ok(AfterApply::Fine)
    }

    /// The first journal write failure, if one happened: every command is refused since.
    pub fn failure(&self) -> Option<&str> {
        self.writer.failure()
    }

    /// Flush the journal (e.g. on shutdown or a group-commit timer).
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.writer.flush()
    }

    /// Commands appended since open that are on disk: acknowledge up to here.
    pub fn durable(&self) -> u64 {
        self.writer.durable()
    }

    /// The engine, for queries.
    pub fn engine(&self) -> &crate::Engine {
        &self.engine
    }
}
