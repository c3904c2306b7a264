//! `gridshare`: the market service binary. `gridshare serve` runs the matching engine (on its own
//! thread, journaled), the book scheduler (opens books ahead, closes gates on time), the recorder
//! and the HTTP API in one process; the other subcommands administer its database.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gridshare::config::Config;
use gridshare_domain::{NodeId, ParticipantId};
use gridshare_storage::Db;
use gridshare_storage::participants::{self, Participant};
use gridshare_web::auth::{Scope, TokenKind, new_token};
use gridshare_web::market::{self, JournalConfig, Market};
use gridshare_web::ratelimit::{RateLimit, RateLimiter};
use gridshare_web::{AppState, app};

#[derive(Debug, Parser)]
#[command(name = "gridshare", version, about = "GridShare: a neighbourhood energy market")]
struct Cli {
    /// Configuration file (TOML; see the service crate's docs). Every key is optional.
    #[arg(long, short, global = true, env = "GRIDSHARE_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database and the engine journal (overrides `data_dir`).
    #[arg(long, global = true, env = "GRIDSHARE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL, `postgres://…` or `sqlite://…` (overrides `database`; default SQLite in the data directory).
    #[arg(long, global = true, env = "GRIDSHARE_DATABASE")]
    database: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the market service: engine, scheduler, recorder and HTTP API, until Ctrl-C or SIGTERM.
    Serve {
        /// Address for the HTTP API (overrides `http.listen`).
        #[arg(long, env = "GRIDSHARE_LISTEN")]
        listen: Option<std::net::SocketAddr>,
        /// The gateways' MQTT broker, `mqtt://user:password@host:port` (overrides `mqtt.url`).
        #[arg(long, env = "GRIDSHARE_MQTT_URL")]
        mqtt: Option<String>,
        /// Address of the embedded MQTT broker, used when no broker URL is given (overrides `mqtt.listen`).
        #[arg(long, env = "GRIDSHARE_MQTT_LISTEN")]
        mqtt_listen: Option<std::net::SocketAddr>,
    },
    /// Add or update a participant (a home, trader, operator…).
    Participant {
        /// Id.
        #[arg(long)]
        id: u64,
        /// Display name.
        #[arg(long)]
        name: String,
        /// homeowner, installer, operator, trader or admin.
        #[arg(long)]
        role: String,
        /// Feeder node (homes and traders: where their energy flows).
        #[arg(long)]
        node: Option<u32>,
    },
    /// Make an API key for a participant; the secret is printed once and never stored.
    ApiKey {
        /// The participant it acts for.
        #[arg(long)]
        participant: u64,
        /// Comma-separated scopes: read, trade, demand_response.
        #[arg(long, default_value = "read")]
        scopes: String,
        /// A label to recognise it by.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Add a dashboard login for a participant; the password is read from the first line of stdin.
    User {
        /// Login name.
        #[arg(long)]
        username: String,
        /// The participant the user acts for.
        #[arg(long)]
        participant: u64,
    },
    /// Check the configuration and exit.
    CheckConfig,
}

fn load(cli: &Cli) -> Result<Config, String> {
    let mut cfg = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(d) = &cli.data_dir {
        cfg.data_dir.clone_from(d);
    }
    if let Some(db) = &cli.database {
        cfg.database = Some(db.clone());
    }
    if let Cmd::Serve {
        listen,
        mqtt,
        mqtt_listen,
    } = &cli.command
    {
        if let Some(l) = mqtt_listen {
            cfg.mqtt.listen = *l;
        }
        if let Some(l) = listen {
            cfg.http.listen = *l;
        }
        if let Some(m) = mqtt {
            cfg.mqtt.url = Some(m.clone());
        }
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

async fn open_db(cfg: &Config) -> Result<Db, String> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| format!("data directory {}: {e}", cfg.data_dir.display()))?;
    Db::open(&cfg.database_target()).await.map_err(|e| e.to_string())
}

#[allow(clippy::print_stdout)] // the secret is for the operator's eyes, once
async fn run(cli: Cli) -> Result<(), String> {
    let cfg = load(&cli)?;
    match cli.command {
        Cmd::CheckConfig => {
            println!("configuration OK");
            Ok(())
        }
        Cmd::Participant { id, name, role, node } => {
            let db = open_db(&cfg).await?;
            if gridshare_web::auth::Role::parse(&role).is_none() {
                return Err(format!(
                    "--role {role:?}: expected homeowner, installer, operator, trader or admin"
                ));
            }
            let p = Participant {
                id: ParticipantId(id),
                name,
                role,
                evm_address: None,
                feeder_node: node,
            };
            participants::upsert(&db, &p, market::now())
                .await
                .map_err(|e| e.to_string())?;
            println!("participant {id} saved");
            Ok(())
        }
        Cmd::ApiKey {
            participant,
            scopes,
            label,
        } => {
            let db = open_db(&cfg).await?;
            participants::get(&db, ParticipantId(participant))
                .await
                .map_err(|e| format!("participant {participant}: {e}"))?;
            let mut parsed = Vec::new();
            for s in scopes.split(',').map(str::trim) {
                serde_json::from_value::<Scope>(serde_json::Value::String(s.to_owned()))
                    .map_err(|_| format!("--scopes: unknown scope {s:?} (read, trade, demand_response)"))?;
                parsed.push(s.to_owned());
            }
            let t = new_token(TokenKind::ApiKey);
            gridshare_storage::api_keys::create(
                &db,
                &t.id,
                ParticipantId(participant),
                &t.hash,
                &parsed.join(","),
                &label,
                market::now(),
            )
            .await
            .map_err(|e| e.to_string())?;
            println!("{}", t.token);
            Ok(())
        }
        Cmd::User { username, participant } => {
            let db = open_db(&cfg).await?;
            participants::get(&db, ParticipantId(participant))
                .await
                .map_err(|e| format!("participant {participant}: {e}"))?;
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| format!("reading the password from stdin: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.chars().count() < gridshare_web::auth::MIN_PASSWORD_LEN {
                return Err(format!(
                    "the password needs at least {} characters",
                    gridshare_web::auth::MIN_PASSWORD_LEN
                ));
            }
            let hash = gridshare_web::auth::hash_password(password).map_err(|e| e.to_string())?;
            participants::create_user(&db, &username, &hash, ParticipantId(participant), market::now())
                .await
                .map_err(|e| format!("user {username}: {e}"))?;
            println!("user {username} created");
            Ok(())
        }
        Cmd::Serve { .. } => serve(cfg).await,
    }
}

/// Starts the accelerated market clock, if configured: market time is anchored to the first start
/// (kept in `data_dir/clock.json`) and keeps running, stopped or not, at `speed`.
fn start_clock(cfg: &Config) -> Result<(), String> {
    if cfg.market.speed == 1.0 {
        return Ok(());
    }
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Anchor {
        real_ms: i64,
        speed: f64,
    }
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let path = cfg.data_dir.join("clock.json");
    let anchor = match std::fs::read_to_string(&path) {
        Ok(t) => serde_json::from_str::<Anchor>(&t).map_err(|e| format!("{}: {e}", path.display()))?,
        Err(_) => {
            let a = Anchor {
                real_ms: real,
                speed: cfg.market.speed,
            };
            std::fs::write(&path, serde_json::to_string(&a).unwrap_or_default())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            a
        }
    };
    let market_now = anchor.real_ms + ((real - anchor.real_ms) as f64 * anchor.speed) as i64;
    market::set_clock(gridshare_domain::Timestamp(market_now), anchor.speed);
    tracing::info!(speed = anchor.speed, "market clock accelerated");
    Ok(())
}

async fn serve(cfg: Config) -> Result<(), String> {
    let db = open_db(&cfg).await?;
    start_clock(&cfg)?;
    let listener = tokio::net::TcpListener::bind(cfg.http.listen).await.map_err(|e| {
        format!(
            "cannot listen on {}: {e} (is another process using the port?)",
            cfg.http.listen
        )
    })?;
    let journal = JournalConfig {
        dir: cfg.data_dir.join("engine"),
        durability: cfg.market.durability.into(),
    };
    let metrics = Arc::new(gridshare_web::Metrics::new());
    let (market, recorder) =
        Market::start_with_metrics(cfg.market.engine.clone(), Some(journal), db.clone(), metrics.clone())
            .await
            .map_err(|e| e.to_string())?;
    let homes = participants::list(&db).await.map_err(|e| e.to_string())?;
    market::add_participants(
        &market,
        homes.iter().filter_map(|p| p.feeder_node.map(|n| (p.id, NodeId(n)))),
    )
    .await
    .map_err(|e| e.to_string())?;
    let (stop_mqtt, mqtt_stop) = tokio::sync::watch::channel(false);
    let (dr_out, dr_in) = tokio::sync::mpsc::unbounded_channel();
    let broker = match &cfg.mqtt.url {
        Some(url) => Some(gridshare::mqtt::Broker {
            ca_file: cfg.mqtt.ca_file.clone(),
            ..gridshare::mqtt::Broker::parse(url)?
        }),
        None if cfg.mqtt.embedded => {
            Some(gridshare::broker::start(cfg.mqtt.listen, &cfg.mqtt.users).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let mqtt = match broker {
        None => None,
        Some(broker) => Some(tokio::spawn(gridshare::mqtt::run(
            broker,
            cfg.mqtt.client_id.clone(),
            db.clone(),
            market.clone(),
            metrics.clone(),
            dr_in,
            mqtt_stop,
        ))),
    };
    // demand-response events that have ended: verify the response from telemetry, credit rewards
    let dr_db = db.clone();
    let dr_verifier = tokio::spawn(async move {
        loop {
            match gridshare_web::dr::credit_completed(&dr_db, market::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rewards = n, "demand-response rewards credited"),
                Err(e) => tracing::warn!(error = %e, "verifying demand-response events"),
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let (stop_settlement, settlement_stop) = tokio::sync::watch::channel(false);
    let (settlement, onchain) = gridshare::settle::start(&cfg, db.clone(), settlement_stop, metrics.clone()).await?;
    let scheduler = tokio::spawn(market::schedule(
        market.clone(),
        cfg.zones(),
        cfg.market.intervals,
        cfg.market.horizon,
        market::now,
        Duration::from_millis(250),
    ));
    let state = AppState {
        onchain,
        network: cfg.market.engine.network.clone().map(Arc::new),
        interval_length: cfg.market.intervals.length,
        dr_out: mqtt.is_some().then_some(dr_out),
        metrics,
        db: Some(db.clone()),
        market: Some(market.clone()),
        limiter: Arc::new(RateLimiter::new(RateLimit {
            per_second: cfg.http.rate_per_second,
            burst: cfg.http.rate_burst,
        })),
        ..AppState::default()
    };
    state.readiness.register("storage");
    state.readiness.register("market");
    state.readiness.set("storage", true);
    state.readiness.set("market", true);
    tracing::info!(listen = %cfg.http.listen, data_dir = %cfg.data_dir.display(), "GridShare market service running");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("HTTP server: {e}"))?;

    // Intake is stopped: close the books' scheduler, flush the journal, let the recorder drain.
    tracing::info!("shutting down: flushing the journal and the recorder");
    let _ = stop_mqtt.send(true);
    if let Some(task) = mqtt {
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(Err(e))) => tracing::error!("MQTT intake: {e}"),
            Err(_) => tracing::error!("MQTT intake did not stop within 10 s"),
            _ => {}
        }
    }
    scheduler.abort();
    let _ = scheduler.await;
    dr_verifier.abort();
    let _ = dr_verifier.await;
    market.flush().await.map_err(|e| e.to_string())?;
    drop(market);
    let _ = stop_settlement.send(true);
    if let Some(task) = settlement
        && tokio::time::timeout(Duration::from_secs(60), task).await.is_err()
    {
        tracing::error!("the settlement step did not finish within 60 s; its batch resumes at the next start");
    }
    if tokio::time::timeout(Duration::from_secs(30), recorder).await.is_err() {
        tracing::error!("the recorder did not drain within 30 s; the journal holds every command");
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
