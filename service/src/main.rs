//! `gridshare`: the market service binary. `gridshare serve` runs the matching engine (on its own
//! thread, journaled), the book scheduler (opens books ahead, closes gates on time), the recorder
//! and the HTTP API in one process; the other subcommands administer its database.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gridshare::config::Config;
use gridshare_domain::ParticipantId;
use gridshare_market::wall_clock;
use gridshare_storage::participants::{self, Participant};
use gridshare_web::auth::{Scope, TokenKind, new_token};

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
    /// Commission a gateway: register its public key (from `gateway keygen`) for a home.
    Gateway {
        /// The gateway's id (its configuration's `gateway.id`).
        #[arg(long)]
        id: u64,
        /// The home (participant) that owns it.
        #[arg(long)]
        owner: u64,
        /// Its public key, hex (compressed or uncompressed secp256k1).
        #[arg(long)]
        public_key: String,
        /// Where the home connects to the feeder (default: the owner's node).
        #[arg(long)]
        node: Option<u32>,
        /// The installer (participant) who commissioned it.
        #[arg(long)]
        installer: Option<u64>,
    },
    /// Print the market's public key, which every gateway's configuration holds
    /// (`mqtt.market_key`, or the file `mqtt.market_key_file` names): made in the data directory
    /// at the first use.
    MarketKey,
    /// Make an API key for a participant; the secret is printed once and never stored.
    ApiKey {
        /// The participant it acts for.
        #[arg(long)]
        participant: u64,
        /// Comma-separated scopes: read, trade, demand_response, keys (list, make and revoke keys).
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
    /// Reward epochs.
    Epoch {
        #[command(subcommand)]
        cmd: EpochCmd,
    },
    /// The custodial accounts the service holds for participants without an address of their own
    /// (their keys derive from the custody seed, `data_dir/custody.key`).
    Custody {
        #[command(subcommand)]
        cmd: CustodyCmd,
    },
    /// Run a simulated neighbourhood on the embedded defaults: homes with simulated devices and
    /// their gateways, the embedded MQTT broker, SQLite, the in-process EVM, the market and the
    /// dashboard, on an accelerated clock. `--data-dir` keeps its state (default: a fresh
    /// temporary directory).
    Demo {
        /// Homes (1–500; default 12, or as many as the data directory already holds).
        #[arg(long)]
        homes: Option<usize>,
        /// Market seconds per real second (90: a 15-minute interval every 10 s).
        #[arg(long, default_value_t = 90.0)]
        speed: f64,
        /// Address of the dashboard and API.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
}

/// What `gridshare custody` does.
#[derive(Debug, Subcommand)]
enum CustodyCmd {
    /// Print a participant's custodial address.
    Address {
        /// The participant.
        #[arg(long)]
        participant: u64,
    },
    /// Print a participant's custodial private key, for a homeowner who takes their account into
    /// a wallet of their own (then give them their `evm_address`: the service stops using the
    /// custodial one for them, but keeps the seed it derives from, so treat the printed key as
    /// known to the operator too and move the funds).
    ExportKey {
        /// The participant.
        #[arg(long)]
        participant: u64,
    },
}

/// What `gridshare epoch` does.
#[derive(Debug, Subcommand)]
enum EpochCmd {
    /// Check an epoch's report (`GET /api/v1/epochs/{n}/report`) from the document alone: every
    /// contribution against its rule, the scaling to the budget, each account's cumulative total
    /// and the Merkle root; prints the root and the report hash to compare with the chain.
    Verify {
        /// The report (JSON).
        report: std::path::PathBuf,
        /// The previous epoch's report: also check that this one carries its totals forward.
        #[arg(long)]
        previous: Option<std::path::PathBuf>,
    },
}

#[allow(clippy::print_stdout)] // the verdict is the command's output
fn epoch_verify(report: &std::path::Path, previous: Option<&std::path::Path>) -> Result<(), String> {
    use gridshare_market::epoch::report::{self, Report};
    let read = |p: &std::path::Path| -> Result<Report, String> {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: not an epoch report: {e}", p.display()))
    };
    let r = read(report)?;
    let (root, hash) = report::verify(&r).map_err(|e| format!("{}: {e}", report.display()))?;
    if let Some(prev) = previous {
        let p = read(prev)?;
        report::verify(&p).map_err(|e| format!("{}: {e}", prev.display()))?;
        if p.epoch + 1 != r.epoch {
            return Err(format!(
                "{} is epoch {}, not the one before {}",
                prev.display(),
                p.epoch,
                r.epoch
            ));
        }
        let before: std::collections::BTreeMap<&str, u64> =
            p.accounts.iter().map(|a| (a.account.as_str(), a.cumulative)).collect();
        let now: std::collections::BTreeMap<&str, u64> =
            r.accounts.iter().map(|a| (a.account.as_str(), a.previous)).collect();
        for (account, total) in &before {
            if now.get(account) != Some(total) {
                return Err(format!(
                    "account {account}: epoch {} ended at {total}, epoch {} starts it at {:?}",
                    p.epoch,
                    r.epoch,
                    now.get(account)
                ));
            }
        }
        if let Some((a, _)) = now.iter().find(|(a, v)| **v > 0 && !before.contains_key(*a)) {
            return Err(format!(
                "account {a} starts epoch {} with a total epoch {} did not give it",
                r.epoch, p.epoch
            ));
        }
    }
    println!(
        "epoch {}: the report verifies\n  root        {}\n  report hash {}\n  paid        {} of a budget of {} µ-token to {} participants\n  cumulative  {} µ-token over {} accounts",
        r.epoch,
        report::hex32(&root),
        report::hex32(&hash),
        r.paid,
        r.budget,
        r.participants.len(),
        r.cumulative_total,
        r.accounts.len()
    );
    Ok(())
}

fn load(cli: &Cli) -> Result<Config, String> {
    if matches!(cli.command, Cmd::Demo { .. } | Cmd::Epoch { .. }) {
        return Ok(Config::default()); // the demo makes its own; epoch tools need none
    }
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

use gridshare::serve::open_db;

#[allow(clippy::print_stdout)] // the secret is for the operator's eyes, once
async fn run(cli: Cli) -> Result<(), String> {
    let cfg = load(&cli)?;
    match cli.command {
        Cmd::Epoch {
            cmd: EpochCmd::Verify { report, previous },
        } => epoch_verify(&report, previous.as_deref()),
        Cmd::CheckConfig => {
            println!("configuration OK");
            Ok(())
        }
        Cmd::Custody { cmd } => {
            let custody = gridshare::custody::load(&cfg)?;
            match cmd {
                CustodyCmd::Address { participant } => {
                    println!("{}", custody.address_hex(ParticipantId(participant)));
                }
                CustodyCmd::ExportKey { participant } => {
                    let p = ParticipantId(participant);
                    eprintln!(
                        "the private key of participant {participant}'s custodial account {}: keep it secret",
                        custody.address_hex(p)
                    );
                    println!("0x{}", alloy::hex::encode(custody.secret(p)));
                }
            }
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
                custody_address: None,
            };
            participants::upsert(&db, &p, wall_clock())
                .await
                .map_err(|e| e.to_string())?;
            let custody = gridshare::custody::load(&cfg)?;
            gridshare::custody::assign(&db, &custody)
                .await
                .map_err(|e| format!("assigning custodial accounts: {e}"))?;
            let account = participants::get(&db, ParticipantId(id))
                .await
                .map_err(|e| e.to_string())?
                .account()
                .map(str::to_owned)
                .unwrap_or_default();
            println!("participant {id} saved; on-chain account {account}");
            Ok(())
        }
        Cmd::Gateway {
            id,
            owner,
            public_key,
            node,
            installer,
        } => {
            let db = open_db(&cfg).await?;
            let home = participants::get(&db, ParticipantId(owner))
                .await
                .map_err(|e| format!("owner {owner}: {e}"))?;
            let public_key = gridshare_domain::envelope::GatewayPublicKey::from_hex(public_key.trim())
                .map_err(|e| format!("--public-key: {e}"))?;
            let node = node
                .or(home.feeder_node)
                .ok_or_else(|| format!("participant {owner} has no feeder node: give --node"))?;
            if let Some(i) = installer {
                participants::get(&db, ParticipantId(i))
                    .await
                    .map_err(|e| format!("installer {i}: {e}"))?;
            }
            gridshare_storage::gateways::register(
                &db,
                &gridshare_storage::gateways::Gateway {
                    id: gridshare_domain::GatewayId(id),
                    owner: ParticipantId(owner),
                    installer: installer.map(ParticipantId),
                    public_key,
                    feeder_node: gridshare_domain::NodeId(node),
                    window: Default::default(),
                    revoked_at: None,
                },
                wall_clock(),
            )
            .await
            .map_err(|e| format!("gateway {id}: {e}"))?;
            println!("gateway {id} commissioned for participant {owner} at node {node}");
            // the gateway acts only on downlinks signed with this key: it goes in its configuration
            println!(
                "market key (the gateway's mqtt.market_key): {}",
                gridshare::signing::market_key(&cfg.data_dir)?.public().to_hex()
            );
            Ok(())
        }
        Cmd::MarketKey => {
            println!("{}", gridshare::signing::market_key(&cfg.data_dir)?.public().to_hex());
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
                    .map_err(|_| format!("--scopes: unknown scope {s:?} (read, trade, demand_response, keys)"))?;
                parsed.push(s.to_owned());
            }
            let t = new_token(TokenKind::ApiKey);
            let key = gridshare_storage::api_keys::NewKey {
                id: &t.id,
                participant: ParticipantId(participant),
                token_hash: &t.hash,
                scopes: &parsed.join(","),
                label: &label,
                parent: None,
            };
            gridshare_storage::api_keys::create(&db, &key, wall_clock())
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
            participants::create_user(&db, &username, &hash, ParticipantId(participant), wall_clock())
                .await
                .map_err(|e| format!("user {username}: {e}"))?;
            println!("user {username} created");
            Ok(())
        }
        Cmd::Serve { .. } => gridshare::serve::serve(cfg, None, shutdown_signal()).await,
        Cmd::Demo { homes, speed, listen } => {
            let opts = gridshare::demo::Options {
                homes,
                speed,
                data_dir: cli.data_dir.clone(),
                listen,
            };
            gridshare::demo::run(opts, shutdown_signal()).await
        }
    }
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
    let cli = Cli::parse();
    // the demo keeps the terminal for its own progress lines: only warnings, and none from the
    // embedded broker's connection handling (RUST_LOG overrides)
    let default = if matches!(cli.command, Cmd::Demo { .. }) {
        "warn,rumqttd=off"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
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
