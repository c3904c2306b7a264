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

/// A snapshot recovery could not use, and where it was moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Why it was not used (a [`RestoreError`]'s text: undecodable, not this configuration's,
    /// or covering more commands than the journal holds).
    pub reason: String,
    /// Where it is now, kept for whoever looks into it.
    pub moved_to: PathBuf,
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
    /// A snapshot that could not be used, set aside (the engine is the whole journal replayed).
    pub set_aside: Option<SetAside>,
}

/// Recovery: the snapshot at `snapshot` (if the file exists) plus the journal commands after
/// it. A torn journal tail is cut off and reported.
///
/// **The journal is the record; a snapshot only shortens the replay.** The journal holds every
/// command since the first start, so a snapshot that cannot be used — it does not decode, does
/// not fit the configuration, or covers more commands than the journal holds (a journal restored
/// from an older copy, or one written without fsync before a power cut, while the snapshot was
/// synced) — is renamed `<snapshot>.set-aside-<unix ms>` and the whole journal is replayed
/// instead; [`Restored::set_aside`] says why, and the caller says so loudly. A snapshot ahead
/// of the journal means commands the journal lost; the market goes on from the journal, which
/// is also what the database is rebuilt from, so engine and database stay together.
pub fn restore(cfg: crate::MarketConfig, snapshot: &Path, journal: &Path) -> Result<Restored, RestoreError> {
    let rec = recover(journal)?;
    let holds = rec.commands.len() as u64;
    let (mut engine, skip, set_aside) = match load_snapshot(cfg.clone(), snapshot, holds) {
        Ok(Some((engine, skip))) => (engine, skip, None),
        Ok(None) => (crate::Engine::new(cfg)?, 0, None),
        Err(
            e @ (RestoreError::SnapshotDecode { .. }
            | RestoreError::SnapshotMismatch { .. }
            | RestoreError::SnapshotAhead { .. }),
        ) => {
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let mut moved_to = snapshot.as_os_str().to_owned();
            moved_to.push(format!(".set-aside-{at}"));
            let moved_to = PathBuf::from(moved_to);
            std::fs::rename(snapshot, &moved_to).map_err(JournalError::io(snapshot))?;
            let set_aside = SetAside {
                reason: e.to_string(),
                moved_to,
            };
            (crate::Engine::new(cfg)?, 0, Some(set_aside))
        }
        Err(e) => return Err(e),
    };
    let mut sink = crate::CountingSink::default();
    let tail = &rec.commands[skip as usize..];
    for c in tail {
        engine.apply(c, &mut sink);
    }
    Ok(Restored {
        engine,
        replayed: tail.len() as u64,
        total: holds,
        torn: rec.torn,
        set_aside,
    })
}

/// The engine in the snapshot at `path` and the journal commands it covers; `None` when there
/// is no snapshot; an error when it does not decode, does not fit `cfg`, or covers more than the
/// `holds` commands of the journal.
fn load_snapshot(
    cfg: crate::MarketConfig,
    path: &Path,
    holds: u64,
) -> Result<Option<(crate::Engine, u64)>, RestoreError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JournalError::io(path)(e).into()),
    };
    let snap: crate::Snapshot =
        serde_json::from_reader(BufReader::new(f)).map_err(|source| RestoreError::SnapshotDecode {
            path: path.to_owned(),
            source,
        })?;
    if snap.journal_commands > holds {
        return Err(RestoreError::SnapshotAhead {
            snapshot: path.to_owned(),
            covers: snap.journal_commands,
            holds,
        });
    }
    let engine = crate::Engine::restore(cfg, &snap).map_err(|source| RestoreError::SnapshotMismatch {
        path: path.to_owned(),
        source,
    })?;
    Ok(Some((engine, snap.journal_commands)))
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
    /// A snapshot that could not be used, set aside (see [`restore`]).
    pub set_aside: Option<SetAside>,
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
                set_aside: None,
            }
        };
        let writer = JournalWriter::open(&journal, durability)?;
        let Restored {
            engine,
            replayed,
            total,
            torn,
            set_aside,
        } = restored;
        Ok((
            Self {
                engine,
                writer,
                snapshot,
                commands: total,
            },
            Recovery {
                replayed,
                total,
                torn,
                set_aside,
            },
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

    /// [`Self::apply`] for a command a gateway sent: its [`Origin`](super::Origin) is journaled
    /// with it, in the same write.
    pub fn apply_from(
        &mut self,
        origin: Option<&super::Origin>,
        cmd: &Command,
        out: &mut impl crate::EventSink,
    ) -> Result<AfterApply, JournalError> {
        if let Some(o) = origin {
            self.writer.append_origin(o)?;
        }
        self.apply(cmd, out)
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

    /// Commands appended since open.
    pub fn appended(&self) -> u64 {
        self.writer.appended()
    }

    /// The engine, for queries.
    pub fn engine(&self) -> &crate::Engine {
        &self.engine
    }
}
