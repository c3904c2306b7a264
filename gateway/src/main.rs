//! `gateway`: the home gateway's command line. `main` parses the arguments, runs the subcommand
//! asked for, and reports its error with a non-zero exit. Each subcommand is one function here
//! that turns its arguments into library calls and prints the result; the work is in the
//! library (`gridshare_gateway`).

// A command-line tool: its tables and JSON go to standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use gridshare_gateway::config::Config;
use gridshare_gateway::modbus::{Bus, Endpoint, Link, Parity, read_points_tried};
use gridshare_gateway::profile::{Profile, Table, ValueType, WordOrder, load_dir};
use gridshare_gateway::scan::{Found, Identified};
use gridshare_gateway::simulate::Simulator;

/// What a subcommand ends with: an error is printed after `error: `.
type Outcome = Result<(), Box<dyn Error>>;

#[derive(Debug, Parser)]
#[command(
    name = "gateway",
    version,
    about = "GridShare home gateway: devices over Modbus, installer tools, simulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read raw registers from a Modbus device and print them decoded.
    Read(ReadArgs),
    /// Read every point of a device through its profile.
    Points(PointsArgs),
    /// Check a configuration: validate it, read every configured point once, flag failing and
    /// out-of-range points. Exits non-zero when anything failed.
    Check(CheckArgs),
    /// Find Modbus devices on a host (Modbus TCP) or a serial line (Modbus RTU): SunSpec devices
    /// by their marker and model chain, others by the first profile whose points all read.
    Scan(ScanArgs),
    /// Read a SunSpec device: discover its models and print every point of those the gateway
    /// knows (1, 101–103, 111–113, 120–124, 160, 201–204, 701–705, 802), scaled, with units;
    /// "absent" where the device does not implement a point.
    Sunspec(SunspecArgs),
    /// Run the gateway: poll the configured devices and send signed telemetry to the market.
    Run(RunArgs),
    /// Make a new gateway key: writes the private key (hex) to `--out` and prints the public key
    /// to register when commissioning.
    Keygen(KeygenArgs),
    /// List the profiles in a directory, checking each.
    Profiles(ProfilesArgs),
    /// Serve simulated devices over Modbus TCP, or Modbus RTU on a serial line or a new
    /// pseudo-terminal: each `--device UNIT=PROFILE`.
    Simulate(SimulateArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Outcome {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(async {
        match cli.command {
            Command::Read(args) => read(args).await,
            Command::Points(args) => points(args).await,
            Command::Check(args) => check(args).await,
            Command::Scan(args) => scan(args).await,
            Command::Sunspec(args) => sunspec(args).await,
            Command::Run(args) => run_gateway(args).await,
            Command::Keygen(args) => keygen(args),
            Command::Profiles(args) => profiles(args),
            Command::Simulate(args) => simulate(args).await,
        }
    })
}

// ---- where a device is -------------------------------------------------------------------

/// A serial line's settings (Modbus RTU).
#[derive(Debug, Clone, clap::Args)]
struct Line {
    /// Modbus RTU: the serial device, e.g. /dev/ttyUSB0.
    #[arg(long)]
    serial: Option<PathBuf>,
    /// Serial speed, bits per second.
    #[arg(long, default_value_t = 9_600)]
    baud: u32,
    /// Serial parity.
    #[arg(long, value_enum, default_value = "none")]
    parity: ParityArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ParityArg {
    None,
    Even,
    Odd,
}

impl Line {
    fn endpoint(&self) -> Option<Endpoint> {
        self.serial.clone().map(|path| Endpoint::Serial {
            path,
            baud: self.baud,
            parity: match self.parity {
                ParityArg::None => Parity::None,
                ParityArg::Even => Parity::Even,
                ParityArg::Odd => Parity::Odd,
            },
        })
    }
}

/// One device: a host and port (Modbus TCP) or a serial line (Modbus RTU).
#[derive(Debug, Clone, clap::Args)]
struct Target {
    /// Modbus TCP: device host or IP.
    #[arg(long, required_unless_present = "serial", conflicts_with = "serial")]
    host: Option<String>,
    /// Modbus TCP: port.
    #[arg(long, default_value_t = 502)]
    port: u16,
    #[command(flatten)]
    line: Line,
}

impl Target {
    async fn endpoint(&self) -> Result<Endpoint, String> {
        match (&self.host, self.line.endpoint()) {
            (_, Some(serial)) => Ok(serial),
            (Some(host), None) => Ok(Endpoint::Tcp(resolve(host, self.port).await?)),
            (None, None) => Err("give --host (Modbus TCP) or --serial (Modbus RTU)".into()),
        }
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port}: no address"))
}

/// How long to wait for a device, and how often to ask again.
#[derive(Debug, clap::Args)]
struct Patience {
    /// Timeout per request, milliseconds.
    #[arg(long, default_value_t = 2_000)]
    timeout_ms: u64,
    /// Tries again after no answer (or a garbled one), this many times.
    #[arg(long, default_value_t = 2)]
    retries: u32,
}

impl Patience {
    /// A link to `unit` on `bus` with this timeout and these retries.
    fn link(&self, bus: Bus, unit: u8) -> Link {
        bus.link(unit, Duration::from_millis(self.timeout_ms))
            .with_retries(self.retries)
    }
}

// ---- read --------------------------------------------------------------------------------

#[derive(Debug, clap::Args)]
struct ReadArgs {
    #[command(flatten)]
    target: Target,
    /// Modbus unit id.
    #[arg(long, default_value_t = 1)]
    unit: u8,
    /// First register address (0-based, as on the wire).
    #[arg(long)]
    addr: u16,
    /// Number of registers (1–125).
    #[arg(long, default_value_t = 1)]
    count: u16,
    /// Register table.
    #[arg(long = "type", value_enum, default_value = "holding")]
    table: TableArg,
    /// How to show the values (32-bit formats take register pairs, high word first).
    #[arg(long, value_enum, default_value = "u16")]
    format: Format,
    #[command(flatten)]
    patience: Patience,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TableArg {
    Holding,
    Input,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    U16,
    I16,
    U32,
    I32,
    F32,
    Hex,
}

async fn read(args: ReadArgs) -> Outcome {
    let ReadArgs {
        target,
        unit,
        addr,
        count,
        table,
        format,
        patience,
        json,
    } = args;
    if !(1..=125).contains(&count) {
        return Err(format!("--count must be 1 to 125, got {count}").into());
    }
    let table = match table {
        TableArg::Holding => Table::Holding,
        TableArg::Input => Table::Input,
    };
    let mut link = patience.link(Bus::new(target.endpoint().await?, Duration::ZERO), unit);
    let words = link
        .read(table, addr, count)
        .await
        .map_err(|e| tried(&e, link.last_tries()))?;
    let tries = link.last_tries();
    let ty = match format {
        Format::U16 | Format::Hex => ValueType::U16,
        Format::I16 => ValueType::I16,
        Format::U32 => ValueType::U32,
        Format::I32 => ValueType::I32,
        Format::F32 => ValueType::F32,
    };
    let step = usize::from(ty.registers());
    let rows: Vec<(u16, String)> = words
        .chunks(step)
        .enumerate()
        .map(|(i, w)| {
            let a = addr + (i * step) as u16;
            let shown = match (format, ty.decode(w, WordOrder::Big)) {
                (Format::Hex, _) => format!("0x{:04x}", w[0]),
                (_, Some(v)) => v.to_string(),
                (_, None) => "(odd register left over)".into(),
            };
            (a, shown)
        })
        .collect();
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(a, s)| serde_json::json!({"address": a, "value": s, "tries": tries}))
            .collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        println!("{:>8}  value", "address");
        for (a, s) in rows {
            println!("{a:>8}  {s}");
        }
        println!("{}", tries_text(tries));
    }
    Ok(())
}

/// "read in 1 try", "read in 3 tries".
fn tries_text(tries: u32) -> String {
    format!("read in {tries} {}", if tries == 1 { "try" } else { "tries" })
}

/// A failed request's error, with its tries when there was more than one.
fn tried(e: &gridshare_gateway::modbus::ModbusError, tries: u32) -> String {
    if tries > 1 {
        format!("{e} (after {tries} tries)")
    } else {
        e.to_string()
    }
}

// ---- points ------------------------------------------------------------------------------

#[derive(Debug, clap::Args)]
struct PointsArgs {
    #[command(flatten)]
    target: Target,
    /// Modbus unit id (default: the profile's).
    #[arg(long)]
    unit: Option<u8>,
    /// The device's profile (a file in `hardware/`).
    #[arg(long)]
    profile: PathBuf,
    #[command(flatten)]
    patience: Patience,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

async fn points(args: PointsArgs) -> Outcome {
    let profile = Profile::load(&args.profile)?;
    let unit = args.unit.unwrap_or(profile.device.default_unit);
    let mut link = args
        .patience
        .link(Bus::new(args.target.endpoint().await?, Duration::from_millis(20)), unit);
    let values = read_points_tried(&mut link, &profile).await;
    if args.json {
        let v: Vec<_> = values
            .iter()
            .zip(&profile.points)
            .map(|((name, r, tries), p)| match r {
                Ok(v) => serde_json::json!({"point": name, "value": v, "unit": p.unit, "tries": tries}),
                Err(e) => serde_json::json!({"point": name, "error": e.to_string(), "tries": tries}),
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        println!("{:<20} {:>14}  {:<6} tries", "point", "value", "unit");
        for ((name, r, tries), p) in values.iter().zip(&profile.points) {
            match r {
                Ok(Some(v)) => println!("{name:<20} {v:>14}  {:<6} {tries}", p.unit),
                Ok(None) => println!("{name:<20} {:>14}  {:<6} {tries}", "absent", p.unit),
                Err(e) => println!("{name:<20} {:>14}  {e} ({tries} tries)", "FAILED"),
            }
        }
    }
    if values.iter().any(|(_, r, _)| r.is_err()) {
        return Err("some points could not be read".into());
    }
    Ok(())
}

// ---- check -------------------------------------------------------------------------------

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

async fn check(args: CheckArgs) -> Outcome {
    let (_, devices) = Config::load(&args.config)?;
    let rows = gridshare_gateway::check::check_devices(&devices).await;
    let failed = rows.iter().filter(|r| r.problem.is_some()).count();
    if args.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({"device": r.device, "point": r.point, "value": r.value, "unit": r.unit, "problem": r.problem})
            })
            .collect();
        println!("{}", serde_json::json!({"ok": failed == 0, "points": v}));
    } else {
        println!("{:<12} {:<20} {:>14}  {:<9} status", "device", "point", "value", "unit");
        for r in &rows {
            let shown = r.value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
            let status = r.problem.as_deref().unwrap_or("ok");
            println!("{:<12} {:<20} {shown:>14}  {:<9} {status}", r.device, r.point, r.unit);
        }
        println!("{} points, {failed} failing", rows.len());
    }
    if failed > 0 {
        return Err(format!("{failed} of {} points failed the check", rows.len()).into());
    }
    Ok(())
}

// ---- scan --------------------------------------------------------------------------------

#[derive(Debug, clap::Args)]
struct ScanArgs {
    /// Modbus TCP: host or IP.
    #[arg(long, required_unless_present = "serial", conflicts_with = "serial")]
    host: Option<String>,
    /// Modbus TCP: ports, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "502")]
    ports: Vec<u16>,
    #[command(flatten)]
    line: Line,
    /// Unit ids: a range such as `1-10`, or one id.
    #[arg(long, default_value = "1-10")]
    units: String,
    /// Profiles to try on devices that are not SunSpec.
    #[arg(long, default_value = "hardware")]
    profiles: PathBuf,
    /// Timeout per request, milliseconds.
    #[arg(long, default_value_t = 500)]
    timeout_ms: u64,
    /// Tries a probe again after no answer (or a garbled one), this many times.
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn unit_range(s: &str) -> Result<std::ops::RangeInclusive<u8>, String> {
    let bad = || format!("--units {s:?}: expected a unit id (0–247) or a range such as 1-10");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u8, u8) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a > b || b > 247 {
        return Err(bad());
    }
    Ok(a..=b)
}

async fn scan(args: ScanArgs) -> Outcome {
    let endpoints = match (&args.host, args.line.endpoint()) {
        (_, Some(serial)) => vec![serial],
        (Some(host), None) => {
            let mut v = Vec::new();
            for &port in &args.ports {
                v.push(Endpoint::Tcp(resolve(host, port).await?));
            }
            v
        }
        (None, None) => return Err("give --host (Modbus TCP) or --serial (Modbus RTU)".into()),
    };
    let units = unit_range(&args.units)?;
    let candidates = load_dir(&args.profiles)?;
    let found: Vec<serde_json::Value> = gridshare_gateway::scan::scan(
        &endpoints,
        units.clone(),
        &candidates,
        Duration::from_millis(args.timeout_ms),
        args.retries,
    )
    .await
    .iter()
    .map(found_json)
    .collect();
    if args.json {
        println!("{}", serde_json::Value::Array(found));
        return Ok(());
    }
    println!(
        "{:>12} {:>4}  {:<8} {:<30} {:<24} details",
        "port", "unit", "sunspec", "model", "maker"
    );
    for f in &found {
        let details = match f["status"].as_str() {
            Some("sunspec") => format!("models {} at {}", f["models"], f["base"]),
            Some("profile") => {
                let file = f["profile"].as_str().unwrap_or("-");
                let also: Vec<&str> = f["also"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default();
                if also.is_empty() {
                    format!("profile {file}")
                } else {
                    format!(
                        "profile {file}; the registers of {} read too: check the label",
                        also.join(", ")
                    )
                }
            }
            Some("exceptions-only") => format!("answers only exceptions: {}", f["exceptions"]),
            Some("no-answer") => format!(
                "answered, then no answer after {} tries: {}",
                f["tries"],
                f["error"].as_str().unwrap_or("-")
            ),
            _ => "answers, but is not SunSpec and matches no profile".to_owned(),
        };
        println!(
            "{:>12} {:>4}  {:<8} {:<30} {:<24} {details}",
            f["port"].as_str().map_or_else(|| f["port"].to_string(), str::to_owned),
            f["unit"],
            if f["sunspec"] == true { "yes" } else { "no" },
            f["model"].as_str().unwrap_or("-"),
            f["manufacturer"].as_str().unwrap_or("-"),
        );
    }
    let answered: Vec<u64> = found.iter().filter_map(|f| f["unit"].as_u64()).collect();
    let silent = units.filter(|u| !answered.contains(&u64::from(*u))).count();
    println!(
        "{} units answered; {silent} silent (no answer after {} tries, or a gateway's \"no such unit\")",
        found.len(),
        args.retries + 1
    );
    Ok(())
}

/// A device found, as `scan --json` prints it (and the table reads it).
fn found_json(f: &Found) -> serde_json::Value {
    let port = match &f.endpoint {
        Endpoint::Tcp(addr) => serde_json::json!(addr.port()),
        Endpoint::Serial { path, .. } => serde_json::json!(path.display().to_string()),
    };
    match &f.what {
        Identified::SunSpec(d) => serde_json::json!({
            "port": port, "unit": f.unit, "status": "sunspec", "sunspec": true, "base": d.base,
            "models": d.models.iter().map(|m| m.id).collect::<Vec<_>>(),
            "manufacturer": d.manufacturer, "model": d.model, "serial": d.serial,
        }),
        Identified::Profile {
            file,
            manufacturer,
            model,
            also,
        } => serde_json::json!({
            "port": port, "unit": f.unit, "status": "profile", "sunspec": false, "profile": file,
            "manufacturer": manufacturer, "model": model, "also": also,
        }),
        Identified::ExceptionsOnly { exceptions } => serde_json::json!({
            "port": port, "unit": f.unit, "status": "exceptions-only", "sunspec": false,
            "exceptions": exceptions.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>(),
        }),
        Identified::NoAnswer { tries, error } => serde_json::json!({
            "port": port, "unit": f.unit, "status": "no-answer", "sunspec": false,
            "tries": tries, "error": error,
        }),
        Identified::Unknown => serde_json::json!({
            "port": port, "unit": f.unit, "status": "unknown", "sunspec": false,
        }),
    }
}

// ---- sunspec -----------------------------------------------------------------------------

#[derive(Debug, clap::Args)]
struct SunspecArgs {
    #[command(flatten)]
    target: Target,
    /// Modbus unit id.
    #[arg(long, default_value_t = 1)]
    unit: u8,
    /// Only this model.
    #[arg(long)]
    model: Option<u16>,
    #[command(flatten)]
    patience: Patience,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

async fn sunspec(args: SunspecArgs) -> Outcome {
    use gridshare_gateway::sunspec::{Value, discover, layout, read_models};
    let unit = args.unit;
    let mut link = args
        .patience
        .link(Bus::new(args.target.endpoint().await?, Duration::from_millis(20)), unit);
    let device = discover(&mut link).await.map_err(|e| tried(&e, link.last_tries()))?;
    let Some(device) = device else {
        let heard = link.heard();
        if heard.answers == 0 && !heard.exceptions.is_empty() {
            let names: Vec<String> = heard.exceptions.iter().map(|c| format!("{c:?} ({c})")).collect();
            return Err(format!(
                "unit {unit} has no SunSpec marker: it answered every request for one (at 40000, 0 and 50000) with a Modbus exception: {}",
                names.join(", ")
            )
            .into());
        }
        return Err(format!("unit {unit} answers, but has no SunSpec marker at 40000, 0 or 50000").into());
    };
    let mut models = read_models(&mut link, &device)
        .await
        .map_err(|e| tried(&e, link.last_tries()))?;
    let heard = link.heard().clone();
    if let Some(id) = args.model {
        models.retain(|m| m.id == id);
        if models.is_empty() {
            let ids: Vec<u16> = device.models.iter().map(|m| m.id).collect();
            return Err(format!("model {id} is not on this device (it has {ids:?})").into());
        }
    }
    if args.json {
        let v = serde_json::json!({
            "base": device.base,
            "chain": device.models.iter().map(|m| m.id).collect::<Vec<_>>(),
            "models": models,
            "requests": heard.answers,
            "retried": heard.retried,
            "most_tries": heard.most_tries,
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "SunSpec at {}: {} {} (serial {})",
        device.base,
        device.manufacturer.as_deref().unwrap_or("-"),
        device.model.as_deref().unwrap_or("-"),
        device.serial.as_deref().unwrap_or("-")
    );
    let unknown: Vec<u16> = device
        .models
        .iter()
        .map(|m| m.id)
        .filter(|id| layout(*id).is_none())
        .collect();
    if !unknown.is_empty() {
        println!("models not decoded: {unknown:?}");
    }
    println!(
        "{} requests, {} of them tried more than once (at most {} tries)",
        heard.answers, heard.retried, heard.most_tries
    );
    for m in &models {
        println!("\nmodel {} — {}", m.id, m.label);
        for d in &m.points {
            let shown = match &d.value {
                None => "absent".to_owned(),
                Some(Value::Number(v)) => format!("{v}"),
                Some(Value::Code(c)) => format!("{c} (0x{c:x})"),
                Some(Value::Text(t)) => t.clone(),
            };
            println!("  {:<24} {:>20}  {}", d.path, shown, d.units.as_deref().unwrap_or(""));
        }
    }
    Ok(())
}

// ---- run ---------------------------------------------------------------------------------

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
}

async fn run_gateway(args: RunArgs) -> Outcome {
    let signals = stop_signals()?;
    let loaded = Config::load_all(&args.config)?;
    let key = gridshare_gateway::key::load_key(&loaded.config.gateway.key_file)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let name = signals.await;
        tracing::info!("{name}: stopping");
        let _ = stop.send(true);
    });
    gridshare_gateway::run::run_loaded(loaded, key, stopped).await?;
    Ok(())
}

/// A future that resolves, with the signal's name, on SIGINT (Ctrl-C) or SIGTERM (`docker
/// stop`, systemd). The handlers are installed before it returns, so a signal that comes while
/// the gateway starts is not lost.
#[cfg(unix)]
fn stop_signals() -> Result<impl std::future::Future<Output = &'static str>, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    })
}

/// Ctrl-C, where there is no SIGTERM.
#[cfg(not(unix))]
fn stop_signals() -> Result<impl std::future::Future<Output = &'static str>, String> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    })
}

// ---- keygen ------------------------------------------------------------------------------

#[derive(Debug, clap::Args)]
struct KeygenArgs {
    /// Where to write the private key (refused if it exists).
    #[arg(long)]
    out: PathBuf,
}

fn keygen(args: KeygenArgs) -> Outcome {
    let key = gridshare_gateway::key::generate(&args.out)?;
    println!("public key: {}", key.public().to_hex());
    println!("address:    {}", key.public().address_hex());
    Ok(())
}

// ---- profiles ----------------------------------------------------------------------------

#[derive(Debug, clap::Args)]
struct ProfilesArgs {
    /// Directory.
    #[arg(long, default_value = "hardware")]
    dir: PathBuf,
    /// Print the supported-hardware table of the README (Markdown).
    #[arg(long)]
    markdown: bool,
}

fn profiles(args: ProfilesArgs) -> Outcome {
    let profiles = load_dir(&args.dir)?;
    if args.markdown {
        print!("{}", gridshare_gateway::profile::markdown_table(&profiles));
        return Ok(());
    }
    println!("{:<34} {:<12} {:>6}  device", "file", "kind", "points");
    for (path, p) in profiles {
        let file = gridshare_gateway::profile::file_name(&path);
        let kind = p.kind_name();
        println!("{file:<34} {kind:<12} {:>6}  {}", p.points.len(), p.device.name);
    }
    Ok(())
}

// ---- simulate ----------------------------------------------------------------------------

#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// Modbus TCP: address to listen on.
    #[arg(long, default_value = "127.0.0.1:1502")]
    listen: SocketAddr,
    /// Modbus RTU on this serial device instead of TCP.
    #[arg(long, conflicts_with = "pty")]
    serial: Option<PathBuf>,
    /// Serial speed (with --serial).
    #[arg(long, default_value_t = 9_600)]
    baud: u32,
    /// Modbus RTU on a new pseudo-terminal instead of TCP; its path is printed (and written
    /// to this file if given, for scripts).
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    pty: Option<PathBuf>,
    /// A device: unit id and profile file, e.g. `1=hardware/eastron-sdm630.toml`.
    #[arg(long = "device", required_unless_present = "exception_units")]
    devices: Vec<String>,
    /// A unit that answers every request with a Modbus exception, e.g. `3=4` (server device
    /// failure): what installers meet on a device whose Modbus serves nothing asked of it.
    #[arg(long = "exception-unit")]
    exception_units: Vec<String>,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

async fn simulate(args: SimulateArgs) -> Outcome {
    let SimulateArgs {
        listen,
        serial,
        baud,
        pty,
        devices,
        exception_units,
        speed,
    } = args;
    if !(speed > 0.0 && speed <= 100_000.0) {
        return Err(format!("--speed must be above 0 and at most 100000, got {speed}").into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    let sim = Simulator::new(now);
    for d in &devices {
        let (unit, path) = d
            .split_once('=')
            .ok_or_else(|| format!("--device {d:?}: expected UNIT=PROFILE"))?;
        let unit: u8 = unit
            .parse()
            .map_err(|_| format!("--device {d:?}: unit {unit:?} is not 0–255"))?;
        sim.add(unit, Profile::load(Path::new(path))?);
    }
    for e in &exception_units {
        let (unit, code) = e
            .split_once('=')
            .ok_or_else(|| format!("--exception-unit {e:?}: expected UNIT=CODE, e.g. 3=4"))?;
        let unit: u8 = unit
            .parse()
            .map_err(|_| format!("--exception-unit {e:?}: unit {unit:?} is not 0–255"))?;
        let code: u8 = code
            .parse()
            .ok()
            .filter(|c| (1..=0x7f).contains(c))
            .ok_or_else(|| format!("--exception-unit {e:?}: exception code {code:?} is not 1–127"))?;
        sim.add_exception_only(unit, tokio_modbus::ExceptionCode::new(code));
    }
    let signals = stop_signals()?;
    let stop = async {
        signals.await;
    };
    let tick = Duration::from_secs(1);
    if let Some(file) = pty {
        let pty =
            gridshare_gateway::simulate::Pty::open().map_err(|e| format!("cannot make a pseudo-terminal: {e}"))?;
        let path = pty.path().to_owned();
        println!("serving Modbus RTU on {}", path.display());
        if !file.as_os_str().is_empty() {
            std::fs::write(&file, path.to_string_lossy().as_bytes()).map_err(|e| format!("{}: {e}", file.display()))?;
        }
        tracing::info!(line = %path.display(), devices = devices.len(), "simulating");
        sim.serve_pty(pty, tick, speed, stop).await?;
        return Ok(());
    }
    if let Some(path) = serial {
        let port = tokio_serial::SerialStream::open(&tokio_serial::new(path.to_string_lossy(), baud))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        tracing::info!(line = %path.display(), baud, devices = devices.len(), "simulating");
        sim.serve_rtu(port, tick, speed, stop).await?;
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, devices = devices.len(), "simulating");
    sim.serve(listener, tick, speed, stop).await?;
    Ok(())
}
