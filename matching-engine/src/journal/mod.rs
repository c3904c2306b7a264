//! The command journal: every accepted command is appended here before it is
//! acknowledged, so the engine's state can be rebuilt by replaying it.
//!
//! ```text
//! file   = header record*
//! header = "GSJOURNL" (8 bytes) ‖ version u32 LE (1 or 2) ‖ reserved u32 (0)
//! record = len u32 LE ‖ crc32c(payload) u32 LE ‖ payload (len bytes: one command, binary v1)
//! ```
//!
//! **Versions.** Version 2 adds one record kind: a book opened with grid fees (tag 7; a book
//! opened without is tag 2, byte for byte as before). Version 3 adds another: the [`Origin`] of
//! the command that follows it (tag 8: the gateway, its envelope's sequence number and its own
//! order id), written in the same write as that command. A journal is created as version 1 and
//! its header is raised just before the first record that needs it is written, so a build that
//! knows only an older version refuses such a journal whole (a bad header) instead of taking the
//! record for a torn tail and cutting it off. This build reads all three.
//!
//! **Durability** is the caller's choice: `EveryCommand` (write + fdatasync
//! per append), `Group` (flush when N commands or T µs have gathered — the
//! caller acknowledges commands up to [`JournalWriter::durable`]), or `None`
//! (the OS decides; for tests and replays).
//!
//! **Recovery** reads records until the first one that is incomplete, too
//! long, fails its CRC or does not decode: that is a torn or corrupt tail,
//! reported with its byte offset and cut off; everything before it is kept.
//!
//! **Errors** are typed: [`JournalError`] (I/O with the file it concerns, a
//! bad header, a snapshot that cannot be written), [`TornTail`] with a
//! [`RecordError`] (where reading stopped and why: incomplete record, length
//! out of range, CRC mismatch, [`DecodeError`]), and [`RestoreError`].

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gridshare_domain::{
    DeliveryInterval, GatewayId, IntervalLength, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side,
    TimeInForce, Timestamp, Wh, ZoneId,
};

use crate::engine::{ConfigError, SnapshotError};
use crate::types::{Command, GridFees, OrderSpec};

mod recovery;
#[cfg(test)]
mod tests;

pub use recovery::{AfterApply, Journaled, Recovery, RestoreError, Restored, SetAside, restore, write_snapshot};

const MAGIC: &[u8; 8] = b"GSJOURNL";
/// The version a new journal starts with.
const VERSION: u32 = 1;
/// The version of a journal holding a book opened with grid fees (tag 7).
const VERSION_FEES: u32 = 2;
/// The version of a journal holding origins (tag 8); the newest read.
const VERSION_ORIGIN: u32 = 3;
const HEADER_LEN: u64 = 16;
/// Where a command came from when a gateway sent it: the gateway, the sequence number of the
/// signed envelope that carried it, and the gateway's own id for the order (the order a cancel
/// names). Journaled with the command, so after a crash the market knows which of a gateway's
/// messages it took (one sent again is not taken twice) and which market order a gateway's id
/// names, without anything else having been written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The gateway.
    pub gateway: GatewayId,
    /// Its envelope's sequence number.
    pub seq: u64,
    /// The gateway's id of the order.
    pub client_order_id: OrderId,
}

/// Longest payload accepted when reading (the longest command is 67 bytes).
const MAX_PAYLOAD: u32 = 1024;

/// When appended commands reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fdatasync after every command.
    EveryCommand,
    /// fdatasync when `max_commands` are pending or the oldest pending one is `max_wait` old.
    Group {
        /// Commands per flush.
        max_commands: u32,
        /// Longest a command waits.
        max_wait: Duration,
    },
    /// Never fsync (the OS writes back when it likes).
    None,
}

/// Journal I/O or format errors.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file system failed on `path` (the journal, a snapshot or its directory).
    #[error("journal I/O on {}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// Not a journal, or a version this build cannot read.
    #[error("{}: not a GridShare journal (version {VERSION} to {VERSION_ORIGIN}): {reason}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong with its header.
        reason: HeaderError,
    },
    /// An earlier write to the journal failed; to keep what is on disk exactly what the engine
    /// applied, nothing more is written until the journal is opened again (a restart).
    #[error("journal {}: an earlier write failed ({first}); nothing more is written until a restart", path.display())]
    Failed {
        /// The journal.
        path: PathBuf,
        /// The first failure.
        first: String,
    },
    /// A snapshot could not be encoded.
    #[error("snapshot {}: cannot encode: {source}", path.display())]
    SnapshotEncode {
        /// The snapshot file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: serde_json::Error,
    },
}

impl JournalError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What is wrong with a journal's 16-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The file ends before its header does.
    #[error("shorter than its header")]
    Short,
    /// The first 8 bytes are not `GSJOURNL`.
    #[error("wrong magic bytes")]
    Magic,
    /// A format version this build cannot read.
    #[error("version {0}")]
    Version(u32),
}

/// Why reading stopped at a record: a torn or corrupt tail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Fewer than 8 bytes left for the record's length and checksum.
    #[error("incomplete record header")]
    IncompleteHeader,
    /// A length of 0 or above the longest payload.
    #[error("record length {0} out of range")]
    LengthOutOfRange(u32),
    /// The file ends inside the payload.
    #[error("incomplete record payload")]
    IncompletePayload,
    /// The payload does not match its CRC32C.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// The checksum in the record.
        stored: u32,
        /// The checksum of the payload read.
        computed: u32,
    },
    /// The checksum holds but the payload is not a command.
    #[error("undecodable command: {0}")]
    Decode(#[from] DecodeError),
    /// An origin record with no command after it (they are written together: the write was cut).
    #[error("an origin record without its command")]
    OriginWithoutCommand,
}

/// A record payload that is not a command (binary v1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload ends inside a field.
    #[error("record too short")]
    Short,
    /// No command has this tag.
    #[error("unknown command tag {0}")]
    Tag(u8),
    /// Not a side (0 buy, 1 sell).
    #[error("side {0}")]
    Side(u8),
    /// Not a time in force (0-2).
    #[error("time in force {0}")]
    TimeInForce(u8),
    /// Not an order mode (0-1).
    #[error("mode {0}")]
    Mode(u8),
    /// Not a delivery interval (length or alignment).
    #[error("interval: {0}")]
    Interval(#[from] gridshare_domain::interval::TimeError),
    /// Bytes left after the command.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Where and why reading stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("torn or corrupt journal record at byte {offset}: {reason}")]
pub struct TornTail {
    /// Byte offset of the first bad record.
    pub offset: u64,
    /// What was wrong with it.
    pub reason: RecordError,
}

/// The commands read from a journal.
#[derive(Debug)]
pub struct Recovered {
    /// Every good command, in order.
    pub commands: Vec<Command>,
    /// The origins of the commands a gateway sent: (index in `commands`, origin).
    pub origins: Vec<(usize, Origin)>,
    /// Bytes of the file that hold good records (header included).
    pub valid_len: u64,
    /// The tail that was cut off, if any.
    pub torn: Option<TornTail>,
}

/// Appends commands to a journal file.
#[derive(Debug)]
pub struct JournalWriter {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    durability: Durability,
    appended: u64,
    durable: u64,
    oldest_pending: Option<Instant>,
    /// The first write failure, after which nothing more is written.
    failed: Option<String>,
    /// The header's version.
    version: u32,
}

impl JournalWriter {
    /// Open `path` for appending (creating it with a header if new). An
    /// existing journal should be [`recover`]ed first, so a torn tail is cut.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, JournalError> {
        let io = || JournalError::io(path);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io())?;
        let len = file.metadata().map_err(io())?.len();
        let version = if len == 0 {
            let mut h = Vec::with_capacity(HEADER_LEN as usize);
            h.extend_from_slice(MAGIC);
            h.extend_from_slice(&VERSION.to_le_bytes());
            h.extend_from_slice(&0u32.to_le_bytes());
            file.write_all(&h).map_err(io())?;
            file.sync_data().map_err(io())?;
            VERSION
        } else {
            check_header(path, &mut file)?
        };
        Ok(Self {
            version,
            path: path.to_owned(),
            file,
            buf: Vec::with_capacity(64 * 1024),
            durability,
            appended: 0,
            durable: 0,
            oldest_pending: None,
            failed: None,
        })
    }

    /// The first write failure, if a write has failed: the writer then refuses every append
    /// (a command whose write failed must not reach the disk later with the next one).
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    fn refuse_if_failed(&self) -> Result<(), JournalError> {
        match &self.failed {
            Some(first) => Err(JournalError::Failed {
                path: self.path.clone(),
                first: first.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records the first failure; returns it.
    fn fail(&mut self, e: JournalError) -> JournalError {
        if self.failed.is_none() {
            self.failed = Some(e.to_string());
        }
        e
    }

    /// Append one command. With `EveryCommand` it is on disk when this returns;
    /// otherwise see [`Self::durable`].
    pub fn append(&mut self, cmd: &Command) -> Result<(), JournalError> {
        self.refuse_if_failed()?;
        if self.version < VERSION_FEES && matches!(cmd, Command::OpenBook { fees: Some(_), .. }) {
            self.mark_version(VERSION_FEES)?;
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0u8; 8]);
        encode(cmd, &mut self.buf);
        let payload = &self.buf[start + 8..];
        let len = payload.len() as u32;
        let crc = crc32c::crc32c(payload);
        self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        self.appended += 1;
        match self.durability {
            Durability::EveryCommand => self.flush()?,
            Durability::Group { max_commands, max_wait } => {
                let pending = self.appended - self.durable;
                let oldest = *self.oldest_pending.get_or_insert_with(Instant::now);
                // Reading the clock costs ~20 ns: only every 64 commands.
                if pending >= u64::from(max_commands) || (pending.is_multiple_of(64) && oldest.elapsed() >= max_wait) {
                    self.flush()?;
                }
            }
            Durability::None => {
                if self.buf.len() >= 60 * 1024 {
                    if let Err(e) = self.file.write_all(&self.buf) {
                        return Err(self.fail(JournalError::io(&self.path)(e)));
                    }
                    self.buf.clear();
                }
            }
        }
        Ok(())
    }

    /// Append the origin of the command appended next (call [`Self::append`] right after: the
    /// two reach the disk in one write, and an origin without its command is cut off on
    /// recovery like a torn tail).
    pub fn append_origin(&mut self, o: &Origin) -> Result<(), JournalError> {
        self.refuse_if_failed()?;
        if self.version < VERSION_ORIGIN {
            self.mark_version(VERSION_ORIGIN)?;
        }
        let mut payload = [0u8; 25];
        payload[0] = 8;
        payload[1..9].copy_from_slice(&o.gateway.0.to_le_bytes());
        payload[9..17].copy_from_slice(&o.seq.to_le_bytes());
        payload[17..25].copy_from_slice(&o.client_order_id.0.to_le_bytes());
        self.buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        self.buf.extend_from_slice(&payload);
        Ok(())
    }

    /// Before the first record that needs it: what is pending is written, then the header's
    /// version becomes `version`, synced (4 bytes in place, in the first sector).
    fn mark_version(&mut self, version: u32) -> Result<(), JournalError> {
        use std::os::unix::fs::FileExt;
        if !self.buf.is_empty() {
            if let Err(e) = self.file.write_all(&self.buf) {
                return Err(self.fail(JournalError::io(&self.path)(e)));
            }
            self.buf.clear();
        }
        // The append-mode handle cannot write in place: a second one can.
        let bumped = OpenOptions::new().write(true).open(&self.path).and_then(|f| {
            f.write_all_at(&version.to_le_bytes(), 8)?;
            f.sync_data()
        });
        if let Err(e) = bumped {
            return Err(self.fail(JournalError::io(&self.path)(e)));
        }
        self.version = version;
        Ok(())
    }

    /// Write and fdatasync everything appended so far.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.refuse_if_failed()?;
        if !self.buf.is_empty() {
            if let Err(e) = self.file.write_all(&self.buf) {
                return Err(self.fail(JournalError::io(&self.path)(e)));
            }
            self.buf.clear();
        }
        if self.durability != Durability::None
            && let Err(e) = self.file.sync_data()
        {
            return Err(self.fail(JournalError::io(&self.path)(e)));
        }
        self.durable = self.appended;
        self.oldest_pending = None;
        Ok(())
    }

    /// Commands appended since open.
    pub fn appended(&self) -> u64 {
        self.appended
    }

    /// Commands known to be on disk: acknowledge up to here.
    pub fn durable(&self) -> u64 {
        self.durable
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        // Best effort: a clean shutdown loses nothing; errors surface on the next open. After a
        // failure nothing is written (see `failure`).
        if self.failed.is_none() {
            let _ = self.flush();
        }
    }
}

/// The header's version, if this build reads it.
fn check_header(path: &Path, file: &mut File) -> Result<u32, JournalError> {
    let bad = |reason| JournalError::BadHeader {
        path: path.to_owned(),
        reason,
    };
    let mut h = [0u8; HEADER_LEN as usize];
    file.seek(SeekFrom::Start(0)).map_err(JournalError::io(path))?;
    match file.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(bad(HeaderError::Short)),
        Err(e) => return Err(JournalError::io(path)(e)),
    }
    if &h[..8] != MAGIC {
        return Err(bad(HeaderError::Magic));
    }
    let v = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if !(VERSION..=VERSION_ORIGIN).contains(&v) {
        return Err(bad(HeaderError::Version(v)));
    }
    Ok(v)
}

/// Read every good command of a journal without changing the file.
pub fn read(path: &Path) -> Result<Recovered, JournalError> {
    let io = || JournalError::io(path);
    let mut file = File::open(path).map_err(io())?;
    // Every version reads the same way (tag-7 and tag-8 records are accepted wherever they are).
    check_header(path, &mut file)?;
    let total = file.metadata().map_err(io())?.len();
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut offset = HEADER_LEN;
    let mut commands = Vec::new();
    let mut origins = Vec::new();
    // an origin read, waiting for its command, and where its record starts
    let mut origin: Option<(Origin, u64)> = None;
    let mut payload = Vec::with_capacity(MAX_PAYLOAD as usize);
    let torn = loop {
        if offset == total {
            break origin.map(|(_, at)| TornTail {
                offset: at,
                reason: RecordError::OriginWithoutCommand,
            });
        }
        let torn = |reason| Some(TornTail { offset, reason });
        let mut head = [0u8; 8];
        if total - offset < 8 || r.read_exact(&mut head).is_err() {
            break torn(RecordError::IncompleteHeader);
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len == 0 || len > MAX_PAYLOAD {
            break torn(RecordError::LengthOutOfRange(len));
        }
        if total - offset - 8 < u64::from(len) {
            break torn(RecordError::IncompletePayload);
        }
        payload.resize(len as usize, 0);
        r.read_exact(&mut payload).map_err(io())?;
        let computed = crc32c::crc32c(&payload);
        if computed != crc {
            break torn(RecordError::Checksum { stored: crc, computed });
        }
        if payload.first() == Some(&8) {
            match decode_origin(&payload) {
                // a second origin in a row: the first one's command was never written
                Ok(_) if origin.is_some() => {
                    break Some(TornTail {
                        offset,
                        reason: RecordError::OriginWithoutCommand,
                    });
                }
                Ok(o) => origin = Some((o, offset)),
                Err(e) => break torn(RecordError::Decode(e)),
            }
        } else {
            match decode(&payload) {
                Ok(cmd) => {
                    if let Some((o, _)) = origin.take() {
                        origins.push((commands.len(), o));
                    }
                    commands.push(cmd);
                }
                Err(e) => break torn(RecordError::Decode(e)),
            }
        }
        offset += 8 + u64::from(len);
    };
    // an origin whose command did not follow is cut off with whatever came after it
    let valid_len = origin.map_or(offset, |(_, at)| at);
    let torn = torn.map(|t| TornTail {
        offset: valid_len,
        reason: t.reason,
    });
    Ok(Recovered {
        commands,
        origins,
        valid_len,
        torn,
    })
}

/// Read a journal and cut off a torn or corrupt tail, so appending can resume.
pub fn recover(path: &Path) -> Result<Recovered, JournalError> {
    let rec = read(path)?;
    if rec.torn.is_some() {
        let io = || JournalError::io(path);
        let f = OpenOptions::new().write(true).open(path).map_err(io())?;
        f.set_len(rec.valid_len).map_err(io())?;
        f.sync_all().map_err(io())?;
    }
    Ok(rec)
}

// ---- binary encoding, v1 -------------------------------------------------

fn put_interval(out: &mut Vec<u8>, iv: DeliveryInterval) {
    out.extend_from_slice(&iv.start().0.to_le_bytes());
    out.push(iv.length().minutes() as u8);
}

fn encode(cmd: &Command, out: &mut Vec<u8>) {
    match *cmd {
        Command::AddParticipant { owner, node } => {
            out.push(1);
            out.extend_from_slice(&owner.0.to_le_bytes());
            out.extend_from_slice(&node.0.to_le_bytes());
        }
        Command::OpenBook { zone, interval, fees } => {
            out.push(if fees.is_some() { 7 } else { 2 });
            out.extend_from_slice(&zone.0.to_le_bytes());
            put_interval(out, interval);
            if let Some(f) = fees {
                out.extend_from_slice(&f.per_hop.0.to_le_bytes());
                out.extend_from_slice(&f.per_kwh.0.to_le_bytes());
            }
        }
        Command::Submit { at, order: o } => {
            out.push(3);
            out.extend_from_slice(&at.0.to_le_bytes());
            out.extend_from_slice(&o.id.0.to_le_bytes());
            out.extend_from_slice(&o.owner.0.to_le_bytes());
            out.extend_from_slice(&o.node.0.to_le_bytes());
            out.extend_from_slice(&o.zone.0.to_le_bytes());
            put_interval(out, o.interval);
            out.push(match o.side {
                Side::Buy => 0,
                Side::Sell => 1,
            });
            out.extend_from_slice(&o.quantity.0.to_le_bytes());
            out.extend_from_slice(&o.price.0.to_le_bytes());
            out.push(match o.tif {
                TimeInForce::GoodTillGateClosure => 0,
                TimeInForce::ImmediateOrCancel => 1,
                TimeInForce::FillOrKill => 2,
            });
            out.push(match o.mode {
                OrderMode::Continuous => 0,
                OrderMode::AuctionOnly => 1,
            });
        }
        Command::Cancel { at, id, owner } => {
            out.push(4);
            out.extend_from_slice(&at.0.to_le_bytes());
            out.extend_from_slice(&id.0.to_le_bytes());
            out.extend_from_slice(&owner.0.to_le_bytes());
        }
        Command::Amend {
            at,
            id,
            owner,
            quantity,
            price,
        } => {
            out.push(5);
            out.extend_from_slice(&at.0.to_le_bytes());
            out.extend_from_slice(&id.0.to_le_bytes());
            out.extend_from_slice(&owner.0.to_le_bytes());
            out.extend_from_slice(&quantity.0.to_le_bytes());
            out.extend_from_slice(&price.0.to_le_bytes());
        }
        Command::CloseGate { at, zone, interval } => {
            out.push(6);
            out.extend_from_slice(&at.0.to_le_bytes());
            out.extend_from_slice(&zone.0.to_le_bytes());
            put_interval(out, interval);
        }
    }
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        if self.0.len() < N {
            return Err(DecodeError::Short);
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        let mut a = [0u8; N];
        a.copy_from_slice(head);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    fn interval(&mut self) -> Result<DeliveryInterval, DecodeError> {
        let start = self.i64()?;
        let len = IntervalLength::from_minutes(i64::from(self.u8()?))?;
        Ok(DeliveryInterval::new(Timestamp(start), len)?)
    }
}

fn decode_origin(bytes: &[u8]) -> Result<Origin, DecodeError> {
    let mut c = Cursor(bytes);
    let _tag = c.u8()?;
    let o = Origin {
        gateway: GatewayId(c.u64()?),
        seq: c.u64()?,
        client_order_id: OrderId(c.u64()?),
    };
    if !c.0.is_empty() {
        return Err(DecodeError::Trailing(c.0.len()));
    }
    Ok(o)
}

fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
    let mut c = Cursor(bytes);
    let cmd = match c.u8()? {
        1 => Command::AddParticipant {
            owner: ParticipantId(c.u64()?),
            node: NodeId(c.u32()?),
        },
        2 => Command::OpenBook {
            zone: ZoneId(c.u32()?),
            interval: c.interval()?,
            fees: None,
        },
        // v2: a book opened with grid fees (per_hop, then per_kwh); the engine checks them
        7 => Command::OpenBook {
            zone: ZoneId(c.u32()?),
            interval: c.interval()?,
            fees: Some(GridFees {
                per_hop: MicroPerKwh(c.i64()?),
                per_kwh: MicroPerKwh(c.i64()?),
            }),
        },
        3 => {
            let at = Timestamp(c.i64()?);
            let id = OrderId(c.u64()?);
            let owner = ParticipantId(c.u64()?);
            let node = NodeId(c.u32()?);
            let zone = ZoneId(c.u32()?);
            let interval = c.interval()?;
            let side = match c.u8()? {
                0 => Side::Buy,
                1 => Side::Sell,
                x => return Err(DecodeError::Side(x)),
            };
            let quantity = Wh(c.i64()?);
            let price = MicroPerKwh(c.i64()?);
            let tif = match c.u8()? {
                0 => TimeInForce::GoodTillGateClosure,
                1 => TimeInForce::ImmediateOrCancel,
                2 => TimeInForce::FillOrKill,
                x => return Err(DecodeError::TimeInForce(x)),
            };
            let mode = match c.u8()? {
                0 => OrderMode::Continuous,
                1 => OrderMode::AuctionOnly,
                x => return Err(DecodeError::Mode(x)),
            };
            Command::Submit {
                at,
                order: OrderSpec {
                    id,
                    owner,
                    node,
                    zone,
                    interval,
                    side,
                    quantity,
                    price,
                    tif,
                    mode,
                },
            }
        }
        4 => Command::Cancel {
            at: Timestamp(c.i64()?),
            id: OrderId(c.u64()?),
            owner: ParticipantId(c.u64()?),
        },
        5 => Command::Amend {
            at: Timestamp(c.i64()?),
            id: OrderId(c.u64()?),
            owner: ParticipantId(c.u64()?),
            quantity: Wh(c.i64()?),
            price: MicroPerKwh(c.i64()?),
        },
        6 => Command::CloseGate {
            at: Timestamp(c.i64()?),
            zone: ZoneId(c.u32()?),
            interval: c.interval()?,
        },
        x => return Err(DecodeError::Tag(x)),
    };
    if !c.0.is_empty() {
        return Err(DecodeError::Trailing(c.0.len()));
    }
    Ok(cmd)
}
