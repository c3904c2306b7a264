//! The command journal: every accepted command is appended here before it is
//! acknowledged, so the engine's state can be rebuilt by replaying it.
//!
//! ```text
//! file   = header record*
//! header = "GSJOURNL" (8 bytes) ‖ version u32 LE (1) ‖ reserved u32 (0)
//! record = len u32 LE ‖ crc32c(payload) u32 LE ‖ payload (len bytes: one command, binary v1)
//! ```
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
    DeliveryInterval, IntervalLength, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side, TimeInForce,
    Timestamp, Wh, ZoneId,
};

use crate::engine::{ConfigError, SnapshotError};
use crate::types::{Command, OrderSpec};

const MAGIC: &[u8; 8] = b"GSJOURNL";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 16;
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
    #[error("{}: not a GridShare journal (version {VERSION}): {reason}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong with its header.
        reason: HeaderError,
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
        if len == 0 {
            let mut h = Vec::with_capacity(HEADER_LEN as usize);
            h.extend_from_slice(MAGIC);
            h.extend_from_slice(&VERSION.to_le_bytes());
            h.extend_from_slice(&0u32.to_le_bytes());
            file.write_all(&h).map_err(io())?;
            file.sync_data().map_err(io())?;
        } else {
            check_header(path, &mut file)?;
        }
        Ok(Self {
            path: path.to_owned(),
            file,
            buf: Vec::with_capacity(64 * 1024),
            durability,
            appended: 0,
            durable: 0,
            oldest_pending: None,
        })
    }

    /// Append one command. With `EveryCommand` it is on disk when this returns;
    /// otherwise see [`Self::durable`].
    pub fn append(&mut self, cmd: &Command) -> Result<(), JournalError> {
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
                    self.file.write_all(&self.buf).map_err(JournalError::io(&self.path))?;
                    self.buf.clear();
                }
            }
        }
        Ok(())
    }

    /// Write and fdatasync everything appended so far.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf).map_err(JournalError::io(&self.path))?;
            self.buf.clear();
        }
        if self.durability != Durability::None {
            self.file.sync_data().map_err(JournalError::io(&self.path))?;
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
        // Best effort: a clean shutdown loses nothing; errors surface on the next open.
        let _ = self.flush();
    }
}

fn check_header(path: &Path, file: &mut File) -> Result<(), JournalError> {
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
    if v != VERSION {
        return Err(bad(HeaderError::Version(v)));
    }
    Ok(())
}

/// Read every good command of a journal without changing the file.
pub fn read(path: &Path) -> Result<Recovered, JournalError> {
    let io = || JournalError::io(path);
    let mut file = File::open(path).map_err(io())?;
    check_header(path, &mut file)?;
    let total = file.metadata().map_err(io())?.len();
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut offset = HEADER_LEN;
    let mut commands = Vec::new();
    let mut payload = Vec::with_capacity(MAX_PAYLOAD as usize);
    let torn = loop {
        if offset == total {
            break None;
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
        match decode(&payload) {
            Ok(cmd) => commands.push(cmd),
            Err(e) => break torn(RecordError::Decode(e)),
        }
        offset += 8 + u64::from(len);
    };
    Ok(Recovered {
        commands,
        valid_len: offset,
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
        Command::OpenBook { zone, interval } => {
            out.push(2);
            out.extend_from_slice(&zone.0.to_le_bytes());
            put_interval(out, interval);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn iv() -> DeliveryInterval {
        DeliveryInterval::new(Timestamp(1_764_064_800_000), IntervalLength::Min15).unwrap_or_else(|e| panic!("{e}"))
    }

    fn sample() -> Vec<Command> {
        let order = OrderSpec {
            id: OrderId(7),
            owner: ParticipantId(2),
            node: NodeId(3),
            zone: ZoneId(1),
            interval: iv(),
            side: Side::Sell,
            quantity: Wh(500),
            price: MicroPerKwh(-12_000),
            tif: TimeInForce::FillOrKill,
            mode: OrderMode::Continuous,
        };
        vec![
            Command::AddParticipant {
                owner: ParticipantId(2),
                node: NodeId(3),
            },
            Command::OpenBook {
                zone: ZoneId(1),
                interval: iv(),
            },
            Command::Submit {
                at: Timestamp(5),
                order,
            },
            Command::Amend {
                at: Timestamp(6),
                id: OrderId(7),
                owner: ParticipantId(2),
                quantity: Wh(400),
                price: MicroPerKwh(9),
            },
            Command::Cancel {
                at: Timestamp(7),
                id: OrderId(7),
                owner: ParticipantId(2),
            },
            Command::CloseGate {
                at: Timestamp(8),
                zone: ZoneId(1),
                interval: iv(),
            },
        ]
    }

    #[test]
    fn round_trip_every_command_in_every_mode() {
        for durability in [
            Durability::EveryCommand,
            Durability::Group {
                max_commands: 4,
                max_wait: Duration::from_millis(1),
            },
            Durability::None,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("j");
            {
                let mut w = JournalWriter::open(&path, durability).unwrap();
                for c in sample() {
                    w.append(&c).unwrap();
                }
                w.flush().unwrap();
                assert_eq!(w.durable(), 6);
            }
            let rec = read(&path).unwrap();
            assert_eq!(rec.commands, sample());
            assert!(rec.torn.is_none());
        }
    }

    #[test]
    fn torn_and_corrupt_tails_are_cut_with_their_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut w = JournalWriter::open(&path, Durability::None).unwrap();
        for c in sample() {
            w.append(&c).unwrap();
        }
        drop(w);
        let full = std::fs::read(&path).unwrap();
        let good_len = read(&path).unwrap().valid_len;
        assert_eq!(good_len, full.len() as u64);
        // Each cut inside the last record loses only that record.
        let last_start = {
            let mut w = JournalWriter::open(&dir.path().join("k"), Durability::None).unwrap();
            for c in &sample()[..5] {
                w.append(c).unwrap();
            }
            drop(w);
            std::fs::metadata(dir.path().join("k")).unwrap().len()
        };
        for cut in [last_start + 1, last_start + 7, full.len() as u64 - 1] {
            std::fs::write(&path, &full[..cut as usize]).unwrap();
            let rec = recover(&path).unwrap();
            assert_eq!(rec.commands, sample()[..5].to_vec());
            assert_eq!(rec.torn.as_ref().map(|t| t.offset), Some(last_start), "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), last_start, "tail cut off");
            // appending resumes cleanly after recovery
            let mut w = JournalWriter::open(&path, Durability::None).unwrap();
            w.append(&sample()[5]).unwrap();
            drop(w);
            assert_eq!(read(&path).unwrap().commands, sample());
        }
        // A flipped bit in the middle: everything before it survives.
        let mut bad = full.clone();
        bad[HEADER_LEN as usize + 30] ^= 0x40;
        std::fs::write(&path, &bad).unwrap();
        let rec = read(&path).unwrap();
        assert!(
            rec.torn
                .as_ref()
                .is_some_and(|t| t.reason.to_string().contains("checksum")),
            "{:?}",
            rec.torn
        );
        assert!(matches!(
            rec.torn,
            Some(TornTail {
                reason: RecordError::Checksum { .. },
                ..
            })
        ));
        assert!(rec.commands.len() < 6);
        std::fs::write(&path, b"not a journal at all").unwrap();
        assert!(matches!(
            read(&path),
            Err(JournalError::BadHeader {
                reason: HeaderError::Magic,
                ..
            })
        ));
    }

    #[test]
    fn errors_name_the_file_the_offset_and_what_went_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        match read(&missing) {
            Err(e @ JournalError::Io { .. }) => {
                assert!(e.to_string().contains(&*missing.to_string_lossy()), "{e}");
                assert!(matches!(e, JournalError::Io { ref path, .. } if *path == missing));
            }
            other => panic!("{other:?}"),
        }
        // A record whose checksum holds but whose payload is no command.
        let path = dir.path().join("j");
        drop(JournalWriter::open(&path, Durability::None).unwrap());
        let mut bytes = std::fs::read(&path).unwrap();
        let payload = [99u8, 1, 2];
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        std::fs::write(&path, &bytes).unwrap();
        let torn = read(&path).unwrap().torn.unwrap();
        assert_eq!(
            torn,
            TornTail {
                offset: HEADER_LEN,
                reason: RecordError::Decode(DecodeError::Tag(99))
            }
        );
        assert_eq!(
            torn.to_string(),
            "torn or corrupt journal record at byte 16: undecodable command: unknown command tag 99"
        );
        // A wrong version.
        bytes[8] = 2;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            read(&path),
            Err(JournalError::BadHeader {
                reason: HeaderError::Version(2),
                ..
            })
        ));
    }

    #[test]
    fn the_format_is_unchanged() {
        // The bytes of `sample()` as journal v1 has always written them: a
        // change here means existing journals no longer replay.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut w = JournalWriter::open(&path, Durability::None).unwrap();
        for c in sample() {
            w.append(&c).unwrap();
        }
        drop(w);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((bytes.len(), crc32c::crc32c(&bytes)), (240, 1_557_073_630));
    }
}

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
    pub fn apply(&mut self, cmd: &Command, out: &mut impl crate::EventSink) -> Result<(), JournalError> {
        self.writer.append(cmd)?;
        self.commands += 1;
        self.engine.apply(cmd, out);
        if matches!(cmd, Command::CloseGate { .. }) {
            self.writer.flush()?;
            write_snapshot(&self.snapshot, &self.engine.snapshot(self.commands))?;
        }
        Ok(())
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
