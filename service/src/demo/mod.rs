//! `gridshare demo`: a simulated neighbourhood on the embedded defaults, in one process.
//!
//! - **Homes**: `--homes N` (12 by default), a mix of PV only, PV + battery, PV + battery + EV and
//!   consumers; each has a grid meter. Every home's devices are served by its own simulator over
//!   Modbus TCP on a loopback port, and read by its own gateway (the real `gateway run` code, as
//!   a task), which signs telemetry, trades for the homeowner within limits that differ from home
//!   to home, and answers demand-response events.
//! - **Market**: `gridshare serve` with SQLite and the engine journal in the data directory, the
//!   embedded MQTT broker (a login per gateway), the in-process EVM with the contracts deployed,
//!   and the API on `--listen`. The feeder: a substation, one feeder line, a transformer per eight
//!   homes, each home on its own service line, with fees and limits.
//! - **Clock**: market time runs `--speed` times faster than real time (90 by default: a
//!   15-minute interval in 10 s) and starts at 06:00 UTC of the day, so the sun rises in the first
//!   minute. Gateways and simulators run on the same clock.
//! - **Operator**: every sixth interval the demo, as the grid operator, calls a demand-response
//!   event for the homes of one transformer (each in turn) through the API.
//! - **Community**: once the first rewards are on chain, the operator proposes one grid fee per
//!   hop and the homes vote on it with their rewards; the service casts their votes and executes
//!   the passed proposal within minutes.
//! - **State**: everything lives in `--data-dir` (a fresh temporary directory by default). The
//!   logins, keys and ports of a neighbourhood are kept in `demo.json` there; starting again with
//!   the same directory resumes from the journal and the database.
//!
//! Files: `neighbourhood.rs` (homes, feeder tree, configuration, the crash-safe first start),
//! `homes.rs` (a home's simulator and gateway), `operator.rs` (the demo's grid operator),
//! `equivocate.rs` (the gateway that lies, 90 s in), `community.rs` (a proposal and the homes'
//! votes); this file starts them and reports.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gridshare_domain::Timestamp;
use tokio::sync::watch;

use homes::{poll_period, start_home};
use neighbourhood::{first_start, six_in_the_morning};
use operator::metrics;

mod community;
mod equivocate;
mod homes;
mod neighbourhood;
mod operator;

pub use neighbourhood::{Home, HomeKind, Neighbourhood, network, service_config};

/// The password of every demo login.
pub const PASSWORD: &str = "gridshare-demo";
/// Most homes a demo may have.
pub const MAX_HOMES: usize = 500;
/// Homes per transformer.
const HOMES_PER_TRANSFORMER: usize = 8;
/// Participant ids of the other roles.
const OPERATOR: u64 = 100_001;
const INSTALLER: u64 = 100_002;
const TRADER: u64 = 100_003;
const ADMIN: u64 = 100_004;
/// Feeder nodes: substation, feeder line, transformers from 100, homes from 1000.
const SUBSTATION: u32 = 1;
const FEEDER: u32 = 2;

/// What `gridshare demo` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Homes (1 to [`MAX_HOMES`]); `None`: 12, or as many as the data directory holds.
    pub homes: Option<usize>,
    /// Market seconds per real second.
    pub speed: f64,
    /// Where state is kept; `None`: a fresh temporary directory.
    pub data_dir: Option<PathBuf>,
    /// The dashboard and API.
    pub listen: SocketAddr,
}

/// Runs the demo until `shutdown` resolves.
#[allow(clippy::print_stdout)] // the demo talks to its user on the terminal
pub async fn run(
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    if let Some(h) = opts.homes
        && (h == 0 || h > MAX_HOMES)
    {
        return Err(format!("--homes must be 1 to {MAX_HOMES}, got {h}"));
    }
    if !(opts.speed >= 1.0 && opts.speed <= 10_000.0) {
        return Err(format!("--speed must be 1 to 10000, got {}", opts.speed));
    }
    let data_dir = match &opts.data_dir {
        Some(d) => d.clone(),
        None => {
            let d = std::env::temp_dir().join(format!("gridshare-demo-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            d
        }
    };
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("data directory {}: {e}", data_dir.display()))?;
    // a taken port is named before anything else starts
    drop(std::net::TcpListener::bind(opts.listen).map_err(|e| {
        format!(
            "cannot listen on {}: {e} (another program has the port: choose another with --listen)",
            opts.listen
        )
    })?);

    let saved = data_dir.join("demo.json");
    let n: Neighbourhood = match std::fs::read_to_string(&saved) {
        Ok(text) => {
            let n: Neighbourhood = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", saved.display()))?;
            if opts.homes.is_some_and(|h| h != n.homes.len()) {
                return Err(format!(
                    "{} holds a neighbourhood of {} homes; start it without --homes, or use another --data-dir",
                    data_dir.display(),
                    n.homes.len()
                ));
            }
            println!("resuming the neighbourhood in {}", data_dir.display());
            n
        }
        Err(_) => first_start(&data_dir, &saved, opts.homes.unwrap_or(12)).await?,
    };
    let mut cfg = service_config(&opts, &data_dir, &n);
    cfg.validate().map_err(|e| e.to_string())?;

    // the service reads the same anchor (data_dir/clock.json), so both keep one market time
    let clock = crate::serve::start_clock(&cfg, Some(six_in_the_morning()))?;
    // reward epochs count from the hour the demo's market time first started
    let origin = crate::serve::market_origin(&cfg.data_dir).unwrap_or_else(|| clock.now());
    cfg.rewards.genesis = Some(Timestamp(origin.0 - origin.0.rem_euclid(3_600_000)).to_rfc3339());
    cfg.validate().map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut service = {
        let mut stop = stop_rx.clone();
        let cfg = cfg.clone();
        tokio::spawn(crate::serve::serve(cfg, Some(six_in_the_morning()), async move {
            let _ = stop.wait_for(|s| *s).await;
        }))
    };
    let base = format!("http://{}", opts.listen);
    // reqwest is built with rustls and no default crypto provider (see the settlement crate)
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    // wait for the API
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if service.is_finished() {
            return match service.await {
                Ok(Err(e)) => Err(e),
                _ => Err("the market service stopped while starting".into()),
            };
        }
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the market service did not come up within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let traffic = std::sync::Arc::new(gridshare_gateway::run::Traffic::default());
    let mut gateways = Vec::with_capacity(n.homes.len());
    for home in &n.homes {
        gateways.push(
            start_home(
                home,
                &data_dir,
                n.mqtt_port,
                opts.speed,
                poll_period(n.homes.len()),
                &clock,
                stop_rx.clone(),
                &traffic,
            )
            .await?,
        );
    }
    // one home's gateway is made to equivocate a while later: caught, stopped and slashed
    if let Some(liar) = n.homes.last() {
        let db = crate::serve::open_db(&cfg).await?;
        let (liar, dir, port, stop) = (liar.clone(), data_dir.clone(), n.mqtt_port, stop_rx.clone());
        tokio::spawn(async move { equivocate::run(db, liar, &dir, port, stop).await });
    }
    tokio::spawn(operator::run(
        client.clone(),
        base.clone(),
        n.operator_key.clone(),
        n.homes.len(),
        clock.clone(),
        stop_rx.clone(),
    ));

    // once the homes hold reward tokens, the operator proposes a fee and the homes vote on it
    tokio::spawn(community::run(
        client.clone(),
        base.clone(),
        n.operator_key.clone(),
        n.homes.iter().map(|h| h.api_key.clone()).collect(),
        stop_rx.clone(),
    ));

    let kinds = |k: HomeKind| n.homes.iter().filter(|h| h.kind == k).count();
    println!();
    println!(
        "GridShare demo: {} homes ({} PV, {} PV + battery, {} PV + battery + EV, {} consumers)",
        n.homes.len(),
        kinds(HomeKind::Pv),
        kinds(HomeKind::PvBattery),
        kinds(HomeKind::PvBatteryEv),
        kinds(HomeKind::Consumer)
    );
    println!("  dashboard and API   {base}/   (API docs: {base}/docs)");
    println!("  logins (password \"{PASSWORD}\"):");
    for (user, role) in &n.logins {
        println!("    {user:<10} {role}");
    }
    println!(
        "  data                {} (start again with --data-dir to resume)",
        data_dir.display()
    );
    println!(
        "  market clock        {}× real time: a 15-minute interval every {:.0} s",
        opts.speed,
        900.0 / opts.speed
    );
    println!("Ctrl-C stops.\n");

    // progress on the terminal until asked to stop
    let progress = {
        let client = client.clone();
        let base = base.clone();
        let clock = clock.clone();
        let traffic = traffic.clone();
        tokio::spawn(async move {
            let mut last = String::new();
            // gateway messages at the last report, and since when that number has not moved
            let mut arrived = (0.0, tokio::time::Instant::now());
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let m = metrics(&client, &base).await;
                let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
                let line = format!(
                    "market {} · {} gate closures · {} trades ({:.1} kWh) · {} batches settled on chain · {} gateway messages",
                    clock
                        .now()
                        .to_datetime()
                        .map(|d| d.format("%H:%M").to_string())
                        .unwrap_or_default(),
                    get("gridshare_gate_closures_total"),
                    get("gridshare_trades_total"),
                    get("gridshare_traded_wh_total") / 1_000.0,
                    get("gridshare_settlement_batches_total{status=\"confirmed\"}"),
                    m.iter()
                        .filter(|(k, _)| k.starts_with("gridshare_messages_in_total"))
                        .map(|(_, v)| v)
                        .sum::<f64>(),
                );
                let messages: f64 = m
                    .iter()
                    .filter(|(k, _)| k.starts_with("gridshare_messages_in_total"))
                    .map(|(_, v)| v)
                    .sum();
                let waiting = traffic.made().saturating_sub(traffic.receipted());
                let line = if messages > arrived.0 {
                    arrived = (messages, tokio::time::Instant::now());
                    format!("{line} ({waiting} waiting in outboxes)")
                } else {
                    // say so rather than print gate closures over an idle market
                    format!(
                        "{line} · NO gateway message for {} s ({waiting} waiting in outboxes): trading waits for them",
                        arrived.1.elapsed().as_secs()
                    )
                };
                if line != last {
                    println!("{line}");
                    last = line;
                }
            }
        })
    };

    let outcome = |r: Result<Result<(), String>, tokio::task::JoinError>| match r {
        Ok(r) => r,
        Err(e) => Err(format!("the market service failed: {e}")),
    };
    let early = tokio::select! {
        () = shutdown => None,
        r = &mut service => Some(outcome(r)),
    };
    progress.abort();
    println!("stopping…");
    // the gateways say goodbye, then the service drains its journal and recorder and stops
    let _ = stop_tx.send(true);
    for g in gateways {
        let _ = tokio::time::timeout(Duration::from_secs(10), g).await;
    }
    println!(
        "gateways made {} messages; the market receipted {} (stored, or refused for good); {} wait in their outboxes for the next start",
        traffic.made(),
        traffic.receipted(),
        traffic.made().saturating_sub(traffic.receipted())
    );
    match early {
        Some(r) => r,
        None => outcome(service.await),
    }
}
