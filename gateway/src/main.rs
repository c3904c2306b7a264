//! `gateway`: the home gateway's command line.

// A command-line tool: its tables and JSON go to standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use gridshare_gateway::modbus::{Bus, Endpoint, Parity, read_points};
use gridshare_gateway::profile::{Profile, Table, ValueType, WordOrder, load_dir};
use gridshare_gateway::simulate::Simulator;

#[derive(Debug, Parser)]
#[command(
    name = "gateway",
    version,
    about = "GridShare home gateway: devices over Modbus, installer tools, simulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
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

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Read raw registers from a Modbus device and print them decoded.
    Read {
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
        /// Timeout per request, milliseconds.
        #[arg(long, default_value_t = 2_000)]
        timeout_ms: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Read every point of a device through its profile.
    Points {
        #[command(flatten)]
        target: Target,
        /// Modbus unit id (default: the profile's).
        #[arg(long)]
        unit: Option<u8>,
        /// The device's profile (a file in `hardware/`).
        #[arg(long)]
        profile: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check a configuration: validate it, read every configured point once, flag failing and
    /// out-of-range points. Exits non-zero when anything failed.
    Check {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Find Modbus devices on a host (Modbus TCP) or a serial line (Modbus RTU): SunSpec devices
    /// by their marker and model chain, others by the first profile whose points all read.
    Scan {
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
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Read a SunSpec device: discover its models and print every point of those the gateway
    /// knows (1, 101–103, 111–113, 120–124, 160, 201–204, 701–705, 802), scaled, with units;
    /// "absent" where the device does not implement a point.
    Sunspec {
        #[command(flatten)]
        target: Target,
        /// Modbus unit id.
        #[arg(long, default_value_t = 1)]
        unit: u8,
        /// Only this model.
        #[arg(long)]
        model: Option<u16>,
        /// Timeout per request, milliseconds.
        #[arg(long, default_value_t = 2_000)]
        timeout_ms: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the gateway: poll the configured devices and send signed telemetry to the market.
    Run {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Make a new gateway key: writes the private key (hex) to `--out` and prints the public key
    /// to register when commissioning.
    Keygen {
        /// Where to write the private key (refused if it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// List the profiles in a directory, checking each.
    Profiles {
        /// Directory.
        #[arg(long, default_value = "hardware")]
        dir: PathBuf,
        /// Print the supported-hardware table of the README (Markdown).
        #[arg(long)]
        markdown: bool,
    },
    /// Serve simulated devices over Modbus TCP, or Modbus RTU on a serial line or a new
    /// pseudo-terminal: each `--device UNIT=PROFILE`.
    Simulate {
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
        #[arg(long = "device", required = true)]
        devices: Vec<String>,
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
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

async fn run(cmd: Cmd) -> Result<(), String> {
    match cmd {
        Cmd::Read {
            target,
            unit,
            addr,
            count,
            table,
            format,
            timeout_ms,
            json,
        } => {
            if !(1..=125).contains(&count) {
                return Err(format!("--count must be 1 to 125, got {count}"));
            }
            let table = match table {
                TableArg::Holding => Table::Holding,
                TableArg::Input => Table::Input,
            };
            let mut link =
                Bus::new(target.endpoint().await?, Duration::ZERO).link(unit, Duration::from_millis(timeout_ms));
            let words = link.read(table, addr, count).await.map_err(|e| e.to_string())?;
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
                    .map(|(a, s)| serde_json::json!({"address": a, "value": s}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                println!("{:>8}  value", "address");
                for (a, s) in rows {
                    println!("{a:>8}  {s}");
                }
            }
            Ok(())
        }
        Cmd::Points {
            target,
            unit,
            profile,
            json,
        } => {
            let profile = Profile::load(&profile).map_err(|e| e.to_string())?;
            let unit = unit.unwrap_or(profile.device.default_unit);
            let mut link =
                Bus::new(target.endpoint().await?, Duration::from_millis(20)).link(unit, Duration::from_secs(2));
            let values = read_points(&mut link, &profile).await;
            let mut failed = false;
            if json {
                let v: Vec<_> = values
                    .iter()
                    .zip(&profile.points)
                    .map(|((name, r), p)| match r {
                        Ok(v) => serde_json::json!({"point": name, "value": v, "unit": p.unit}),
                        Err(e) => serde_json::json!({"point": name, "error": e.to_string()}),
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                println!("{:<20} {:>14}  unit", "point", "value");
                for ((name, r), p) in values.iter().zip(&profile.points) {
                    match r {
                        Ok(Some(v)) => println!("{name:<20} {v:>14.3}  {}", p.unit),
                        Ok(None) => println!("{name:<20} {:>14}  {}", "absent", p.unit),
                        Err(e) => println!("{name:<20} {:>14}  {e}", "FAILED"),
                    }
                }
            }
            for (_, r) in &values {
                failed |= r.is_err();
            }
            if failed {
                return Err("some points could not be read".into());
            }
            Ok(())
        }
        Cmd::Check { config, json } => check(&config, json).await,
        Cmd::Sunspec {
            target,
            unit,
            model,
            timeout_ms,
            json,
        } => {
            use gridshare_gateway::sunspec::{Value, discover, read_models};
            let mut link = Bus::new(target.endpoint().await?, Duration::from_millis(20))
                .link(unit, Duration::from_millis(timeout_ms));
            let device = discover(&mut link)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("unit {unit} answers, but has no SunSpec marker at 40000, 0 or 50000"))?;
            let mut models = read_models(&mut link, &device).await.map_err(|e| e.to_string())?;
            if let Some(id) = model {
                models.retain(|m| m.id == id);
                if models.is_empty() {
                    let ids: Vec<u16> = device.models.iter().map(|m| m.id).collect();
                    return Err(format!("model {id} is not on this device (it has {ids:?})"));
                }
            }
            if json {
                let v = serde_json::json!({
                    "base": device.base,
                    "chain": device.models.iter().map(|m| m.id).collect::<Vec<_>>(),
                    "models": models,
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
                .filter(|id| gridshare_gateway::sunspec::layout(*id).is_none())
                .collect();
            if !unknown.is_empty() {
                println!("models not decoded: {unknown:?}");
            }
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
        Cmd::Run { config } => {
            let (cfg, devices) = gridshare_gateway::config::Config::load(&config).map_err(|e| e.to_string())?;
            let key = gridshare_gateway::run::load_key(&cfg.gateway.key_file)?;
            let (stop, stopped) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                let _ = stop.send(true);
            });
            gridshare_gateway::run::run(cfg, devices, key, stopped)
                .await
                .map_err(|e| e.to_string())
        }
        Cmd::Keygen { out } => {
            let mut bytes = [0u8; 32];
            let key = loop {
                getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
                if let Ok(k) = gridshare_domain::envelope::GatewayKey::from_bytes(&bytes) {
                    break k;
                }
            };
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| format!("{}: {e}", out.display()))?;
            }
            use std::io::Write;
            writeln!(f, "{}", key.to_hex()).map_err(|e| format!("{}: {e}", out.display()))?;
            println!("public key: {}", key.public().to_hex());
            println!("address:    {}", key.public().address_hex());
            Ok(())
        }
        Cmd::Scan {
            host,
            ports,
            line,
            units,
            profiles,
            timeout_ms,
            json,
        } => {
            let endpoints = match (host, line.endpoint()) {
                (_, Some(serial)) => vec![serial],
                (Some(host), None) => {
                    let mut v = Vec::new();
                    for &port in &ports {
                        v.push(Endpoint::Tcp(resolve(&host, port).await?));
                    }
                    v
                }
                (None, None) => return Err("give --host (Modbus TCP) or --serial (Modbus RTU)".into()),
            };
            scan(&endpoints, &units, &profiles, Duration::from_millis(timeout_ms), json).await
        }
        Cmd::Profiles { dir, markdown } => {
            let profiles = load_dir(&dir).map_err(|e| e.to_string())?;
            if markdown {
                println!("| device | maker | kind | profile | reads | writes |");
                println!("|---|---|---|---|---|---|");
                for (path, p) in &profiles {
                    let file = path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let kind = serde_json::to_value(p.device.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(|k| k.replace('_', " ")))
                        .unwrap_or_default();
                    let reads: Vec<String> = p
                        .points
                        .iter()
                        .filter(|x| x.writable.is_none())
                        .map(|x| format!("{} ({})", x.name, if x.unit.is_empty() { "-" } else { &x.unit }))
                        .collect();
                    let writes: Vec<String> = p
                        .points
                        .iter()
                        .filter_map(|x| x.writable.map(|w| format!("{} {}–{} {}", x.name, w.min, w.max, x.unit)))
                        .collect();
                    println!(
                        "| {} | {} | {kind} | `hardware/{file}` | {} | {} |",
                        p.device.name,
                        p.device.manufacturer,
                        reads.join(", "),
                        if writes.is_empty() {
                            "-".to_owned()
                        } else {
                            writes.join(", ")
                        }
                    );
                }
                return Ok(());
            }
            println!("{:<34} {:<12} {:>6}  device", "file", "kind", "points");
            for (path, p) in profiles {
                let file = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let kind = serde_json::to_value(p.device.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                println!("{file:<34} {kind:<12} {:>6}  {}", p.points.len(), p.device.name);
            }
            Ok(())
        }
        Cmd::Simulate {
            listen,
            serial,
            baud,
            pty,
            devices,
            speed,
        } => {
            if !(speed > 0.0 && speed <= 100_000.0) {
                return Err(format!("--speed must be above 0 and at most 100000, got {speed}"));
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_secs_f64();
            let sim = Simulator::new(now);
            for d in &devices {
                let (unit, path) = d
                    .split_once('=')
                    .ok_or_else(|| format!("--device {d:?}: expected UNIT=PROFILE"))?;
                let unit: u8 = unit
                    .parse()
                    .map_err(|_| format!("--device {d:?}: unit {unit:?} is not 0–255"))?;
                sim.add(
                    unit,
                    Profile::load(std::path::Path::new(path)).map_err(|e| e.to_string())?,
                );
            }
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let tick = Duration::from_secs(1);
            if let Some(file) = pty {
                let pty = gridshare_gateway::simulate::Pty::open()
                    .map_err(|e| format!("cannot make a pseudo-terminal: {e}"))?;
                let path = pty.path().to_owned();
                println!("serving Modbus RTU on {}", path.display());
                if !file.as_os_str().is_empty() {
                    std::fs::write(&file, path.to_string_lossy().as_bytes())
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                }
                tracing::info!(line = %path.display(), devices = devices.len(), "simulating");
                return sim.serve_pty(pty, tick, speed, stop).await.map_err(|e| e.to_string());
            }
            if let Some(path) = serial {
                let port = tokio_serial::SerialStream::open(&tokio_serial::new(path.to_string_lossy(), baud))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                tracing::info!(line = %path.display(), baud, devices = devices.len(), "simulating");
                return sim.serve_rtu(port, tick, speed, stop).await.map_err(|e| e.to_string());
            }
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            tracing::info!(%listen, devices = devices.len(), "simulating");
            sim.serve(listener, tick, speed, stop).await.map_err(|e| e.to_string())
        }
    }
}

/// Why a point's value is out of range, if it is.
fn out_of_range(p: &gridshare_gateway::profile::Point, v: f64) -> Option<String> {
    use gridshare_gateway::profile::Quantity;
    if let Some(w) = p.writable
        && (v < w.min || v > w.max)
    {
        return Some(format!("outside its limits {}–{}", w.min, w.max));
    }
    match p.quantity {
        Some(Quantity::SocPermille) if !(0.0..=1_000.0).contains(&v) => Some("not a state of charge".into()),
        Some(Quantity::EnergyInWh | Quantity::EnergyOutWh) if v < 0.0 => Some("a negative energy counter".into()),
        _ => None,
    }
}

async fn check(path: &std::path::Path, json: bool) -> Result<(), String> {
    let (_, devices) = gridshare_gateway::config::Config::load(path).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for d in &devices {
        let mut link = match gridshare_gateway::config::links(std::slice::from_ref(d), Duration::from_millis(20)).await
        {
            Ok(mut l) if l.len() == 1 => l.remove(0),
            Ok(_) => continue,
            Err(e) => {
                rows.push((
                    d.config.name.clone(),
                    "-".to_owned(),
                    None,
                    String::new(),
                    Some(e.to_string()),
                ));
                continue;
            }
        };
        for ((name, value), p) in read_points(&mut link, &d.profile)
            .await
            .into_iter()
            .zip(&d.profile.points)
        {
            let problem = match &value {
                Err(e) => Some(e.to_string()),
                Ok(Some(v)) => out_of_range(p, *v),
                Ok(None) => None,
            };
            rows.push((
                d.config.name.clone(),
                name,
                value.ok().flatten(),
                p.unit.clone(),
                problem,
            ));
        }
    }
    let failed = rows.iter().filter(|r| r.4.is_some()).count();
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(dev, point, value, unit, problem)| {
                serde_json::json!({"device": dev, "point": point, "value": value, "unit": unit, "problem": problem})
            })
            .collect();
        println!("{}", serde_json::json!({"ok": failed == 0, "points": v}));
    } else {
        println!("{:<12} {:<20} {:>14}  {:<9} status", "device", "point", "value", "unit");
        for (dev, point, value, unit, problem) in &rows {
            let shown = value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
            let status = problem.as_deref().unwrap_or("ok");
            println!("{dev:<12} {point:<20} {shown:>14}  {unit:<9} {status}");
        }
        println!("{} points, {failed} failing", rows.len());
    }
    if failed > 0 {
        return Err(format!("{failed} of {} points failed the check", rows.len()));
    }
    Ok(())
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

async fn scan(
    endpoints: &[Endpoint],
    units: &str,
    profiles: &std::path::Path,
    timeout: Duration,
    json: bool,
) -> Result<(), String> {
    use gridshare_gateway::sunspec;
    let units = unit_range(units)?;
    let candidates = load_dir(profiles).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for endpoint in endpoints {
        let bus = Bus::new(endpoint.clone(), Duration::from_millis(10));
        let port = match endpoint {
            Endpoint::Tcp(addr) => serde_json::json!(addr.port()),
            Endpoint::Serial { path, .. } => serde_json::json!(path.display().to_string()),
        };
        for unit in units.clone() {
            let mut link = bus.link(unit, timeout);
            let what = match sunspec::discover(&mut link).await {
                Err(e) if e.is_link() && e.to_string().contains("connect") => {
                    tracing::info!(%endpoint, "nothing there: {e}");
                    break; // no device on this port at all
                }
                Err(_) => continue,
                Ok(Some(d)) => serde_json::json!({
                    "port": port, "unit": unit, "sunspec": true, "base": d.base,
                    "models": d.models.iter().map(|m| m.id).collect::<Vec<_>>(),
                    "manufacturer": d.manufacturer, "model": d.model, "serial": d.serial,
                }),
                Ok(None) => {
                    let mut matched = None;
                    for (path, p) in &candidates {
                        if read_points(&mut link, p).await.iter().all(|(_, v)| v.is_ok()) {
                            matched = Some((path.file_name().map(|f| f.to_string_lossy().into_owned()), p));
                            break;
                        }
                    }
                    match matched {
                        Some((file, p)) => serde_json::json!({
                            "port": port, "unit": unit, "sunspec": false, "profile": file,
                            "manufacturer": p.device.manufacturer, "model": p.device.name,
                        }),
                        None => continue, // no device here, or none we know
                    }
                }
            };
            found.push(what);
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(found));
    } else {
        println!(
            "{:>12} {:>4}  {:<8} {:<30} {:<24} details",
            "port", "unit", "sunspec", "model", "maker"
        );
        for f in &found {
            let details = if f["sunspec"] == true {
                format!("models {} at {}", f["models"], f["base"])
            } else {
                format!("profile {}", f["profile"].as_str().unwrap_or("-"))
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
        println!("{} devices found", found.len());
    }
    Ok(())
}
