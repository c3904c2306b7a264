//! The journal's format, durability modes and recovery from torn tails.

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
            fees: None,
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

/// `sample()` written to a new journal `j` (without syncing) in a temporary directory.
fn sample_journal() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let mut w = JournalWriter::open(&path, Durability::None).unwrap();
    for c in sample() {
        w.append(&c).unwrap();
    }
    (dir, path)
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
    let (dir, path) = sample_journal();
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
    // A version this build does not know (3 is the newest).
    bytes[8] = 4;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        read(&path),
        Err(JournalError::BadHeader {
            reason: HeaderError::Version(4),
            ..
        })
    ));
}

#[test]
fn the_format_is_unchanged() {
    // The bytes of `sample()` as journal v1 has always written them: a
    // change here means existing journals no longer replay.
    let (_dir, path) = sample_journal();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!((bytes.len(), crc32c::crc32c(&bytes)), (240, 1_557_073_630));
}

fn version_of(path: &std::path::Path) -> u32 {
    let b = std::fs::read(path).unwrap();
    u32::from_le_bytes([b[8], b[9], b[10], b[11]])
}

/// A book opened with grid fees is a tag-7 record; the journal's header turns version 2 just
/// before the first one, and stays 1 (byte for byte as before) while there is none.
#[test]
fn a_book_with_fees_turns_the_journal_version_2() {
    let fees = crate::GridFees {
        per_hop: MicroPerKwh(3_000),
        per_kwh: MicroPerKwh(-7), // the engine refuses it; the journal keeps input as given
    };
    let with_fees = Command::OpenBook {
        zone: ZoneId(2),
        interval: iv(),
        fees: Some(fees),
    };
    let (_dir, path) = sample_journal();
    let before = std::fs::read(&path).unwrap();
    assert_eq!(version_of(&path), 1);
    {
        let mut w = JournalWriter::open(&path, Durability::None).unwrap();
        w.append(&sample()[0]).unwrap(); // pending when the header turns
        w.append(&with_fees).unwrap();
        w.append(&with_fees).unwrap();
    }
    assert_eq!(version_of(&path), 2);
    let after = std::fs::read(&path).unwrap();
    assert_eq!(
        after[12..before.len()],
        before[12..],
        "only the version changed in place"
    );
    let mut expected = sample();
    expected.extend([sample()[0], with_fees, with_fees]);
    let rec = read(&path).unwrap();
    assert_eq!(rec.commands, expected);
    assert!(rec.torn.is_none());
    // 1 tag + 4 zone + 9 interval + 8 per_hop + 8 per_kwh
    let mut payload = Vec::new();
    encode(&with_fees, &mut payload);
    assert_eq!(payload.len(), 30);
    assert_eq!(payload[0], 7);
    // appending to a version-2 journal keeps it so; a version-1 reader would refuse it whole
    drop(JournalWriter::open(&path, Durability::None).unwrap());
    assert_eq!(version_of(&path), 2);
    // without fees: tag 2, as always
    payload.clear();
    encode(&sample()[1], &mut payload);
    assert_eq!((payload[0], payload.len()), (2, 14));
}

/// A command a gateway sent is journaled with its origin (tag 8, just before it, in the same
/// write): read back paired with its command's index; the header turns version 3.
#[test]
fn origins_are_read_back_with_their_commands_and_turn_the_journal_version_3() {
    let origin = Origin {
        gateway: GatewayId(41),
        seq: 1_000_003,
        client_order_id: OrderId(77),
    };
    let (_dir, path) = sample_journal();
    {
        let mut w = JournalWriter::open(&path, Durability::EveryCommand).unwrap();
        w.append_origin(&origin).unwrap();
        w.append(&sample()[2]).unwrap();
        w.append(&sample()[5]).unwrap(); // no origin: the scheduler's
    }
    assert_eq!(version_of(&path), 3);
    let rec = read(&path).unwrap();
    assert!(rec.torn.is_none(), "{:?}", rec.torn);
    assert_eq!(rec.commands.len(), 8);
    assert_eq!(rec.origins, vec![(6, origin)]);
}

/// An origin whose command never reached the file (the write was cut between the two) is cut
/// off on recovery, so it can never be taken for the origin of the next command appended.
#[test]
fn an_origin_without_its_command_is_cut_off() {
    let origin = Origin {
        gateway: GatewayId(41),
        seq: 9,
        client_order_id: OrderId(1),
    };
    let (_dir, path) = sample_journal();
    let good = std::fs::metadata(&path).unwrap().len();
    {
        let mut w = JournalWriter::open(&path, Durability::None).unwrap();
        w.append_origin(&origin).unwrap();
    }
    let rec = recover(&path).unwrap();
    assert_eq!(
        (rec.valid_len, rec.torn.map(|t| (t.offset, t.reason))),
        (good, Some((good, RecordError::OriginWithoutCommand)))
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good, "cut off");
    {
        let mut w = JournalWriter::open(&path, Durability::None).unwrap();
        w.append(&sample()[5]).unwrap();
    }
    let rec = read(&path).unwrap();
    assert!(rec.origins.is_empty(), "{:?}", rec.origins);
    assert_eq!(rec.commands.len(), 7);

    // an origin followed by a torn command: both are cut
    let before = std::fs::metadata(&path).unwrap().len();
    {
        let mut w = JournalWriter::open(&path, Durability::None).unwrap();
        w.append_origin(&origin).unwrap();
        w.append(&sample()[2]).unwrap();
    }
    let len = std::fs::metadata(&path).unwrap().len();
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 3).unwrap();
    let rec = recover(&path).unwrap();
    assert_eq!((rec.valid_len, rec.commands.len()), (before, 7));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), before);
}
