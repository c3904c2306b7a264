//! `gridshare-replay`: run matching-engine commands and print the events.
//!
//! ```text
//! gridshare-replay [--config MARKET.json] [--write-journal FILE] [COMMANDS.jsonl | -]
//! gridshare-replay [--config MARKET.json] --journal FILE
//! ```
//!
//! Commands come as JSON lines (a file, or standard input for `-` or no
//! argument), or from a binary journal; events go to standard output as JSON
//! lines. See the crate README for the format.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use gridshare_matching_engine::journal::{self, Durability, JournalWriter};
use gridshare_matching_engine::{Command, Engine, Event, MarketConfig};

const USAGE: &str = "usage: gridshare-replay [--config MARKET.json] [--write-journal FILE] [COMMANDS.jsonl | -]
       gridshare-replay [--config MARKET.json] --journal FILE

Runs matching-engine commands and prints one JSON event per line.
  --config FILE         market rules as JSON (tick, price and quantity bounds, network); default rules otherwise
  --journal FILE        read commands from a binary journal instead of JSON lines
  --write-journal FILE  also append every command read to this binary journal";

#[derive(Debug, Default)]
struct Args {
    config: Option<PathBuf>,
    journal: Option<PathBuf>,
    write_journal: Option<PathBuf>,
    input: Option<PathBuf>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    while let Some(arg) = argv.next() {
        let mut value = |name: &str| argv.next().map(PathBuf::from).ok_or(format!("{name} needs a file"));
        match arg.as_str() {
            "--config" => a.config = Some(value("--config")?),
            "--journal" => a.journal = Some(value("--journal")?),
            "--write-journal" => a.write_journal = Some(value("--write-journal")?),
            "-h" | "--help" => return Err(String::new()),
            "-" => a.input = None,
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => a.input = Some(PathBuf::from(s)),
        }
    }
    if a.journal.is_some() && (a.input.is_some() || a.write_journal.is_some()) {
        return Err("--journal cannot be combined with an input file or --write-journal".into());
    }
    Ok(a)
}

fn run(args: Args) -> Result<(), String> {
    let cfg = match &args.config {
        None => MarketConfig::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
    };
    let mut engine = Engine::new(cfg).map_err(|e| format!("market config: {e}"))?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut events: Vec<Event> = Vec::with_capacity(1024);
    let mut emit =
        |engine: &mut Engine, cmd: &Command, out: &mut BufWriter<io::StdoutLock<'_>>| -> Result<(), String> {
            events.clear();
            engine.apply(cmd, &mut events);
            for e in &events {
                serde_json::to_writer(&mut *out, e).map_err(|e| e.to_string())?;
                out.write_all(b"\n").map_err(|e| e.to_string())?;
            }
            Ok(())
        };

    if let Some(path) = &args.journal {
        let rec = journal::read(path).map_err(|e| e.to_string())?;
        for cmd in &rec.commands {
            emit(&mut engine, cmd, &mut out)?;
        }
        out.flush().map_err(|e| e.to_string())?;
        if let Some(t) = rec.torn {
            return Err(format!(
                "{}: stopped at byte {}: {}",
                path.display(),
                t.offset,
                t.reason
            ));
        }
        return Ok(());
    }

    let reader: Box<dyn BufRead> = match &args.input {
        Some(p) => Box::new(BufReader::new(
            File::open(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        None => Box::new(BufReader::new(io::stdin())),
    };
    let mut writer = match &args.write_journal {
        Some(p) => Some(JournalWriter::open(p, Durability::None).map_err(|e| e.to_string())?),
        None => None,
    };
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let cmd: Command = serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))?;
        if let Some(w) = writer.as_mut() {
            w.append(&cmd).map_err(|e| e.to_string())?;
        }
        emit(&mut engine, &cmd, &mut out)?;
    }
    if let Some(w) = writer.as_mut() {
        w.flush().map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            let mut err = io::stderr();
            if !msg.is_empty() {
                let _ = writeln!(err, "gridshare-replay: {msg}");
            }
            let _ = writeln!(err, "{USAGE}");
            return if msg.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            let _ = writeln!(io::stderr(), "gridshare-replay: {msg}");
            ExitCode::FAILURE
        }
    }
}
