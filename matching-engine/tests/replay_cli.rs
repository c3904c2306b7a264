//! The `gridshare-replay` binary: JSON lines in, events out; a journal
//! written during the run replays to byte-identical output; bad input is
//! reported with its line number.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gridshare-replay");
const SESSION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/session.jsonl");

#[test]
fn journal_replay_gives_the_same_events() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("session.journal");
    let first = Command::new(BIN)
        .args(["--write-journal", journal.to_str().unwrap(), SESSION])
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let text = String::from_utf8(first.stdout.clone()).unwrap();
    assert!(
        text.contains(r#""event":"trade""#) && text.contains(r#""event":"auction_result""#),
        "{text}"
    );
    assert!(text.contains(r#""reason":"price_off_tick""#));
    let again = Command::new(BIN)
        .args(["--journal", journal.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(first.stdout, again.stdout);
}

#[test]
fn reads_stdin_and_names_the_bad_line() {
    let mut child = Command::new(BIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        writeln!(stdin, r#"{{"cmd":"add_participant","owner":1,"node":1}}"#).unwrap();
        writeln!(
            stdin,
            r#"{{"cmd":"open_book","zone":1,"interval":"2026-11-25T10:20:00Z/PT15M"}}"#
        )
        .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line 2") && err.contains("aligned"), "{err}");
    assert!(String::from_utf8(out.stdout).unwrap().contains("participant_added"));
}
