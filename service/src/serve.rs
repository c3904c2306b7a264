//! `gridshare serve`: the engine, scheduler, recorder, MQTT intake, settlement and the HTTP API in
//! one process, until asked to stop; used by the binary and by the demo.

use std::sync::Arc;
use std::time::Duration;

use gridshare_domain::{NodeId, Timestamp};
use gridshare_market::{Clock, Downlinks, JournalConfig, Market};
use gridshare_storage::Db;
use gridshare_storage::participants;
use gridshare_web::ratelimit::{RateLimit, RateLimiter};
use gridshare_web::{AppState, app};

use crate::config::Config;

/// Opens (creating the data directory if needed) the configured database.
pub async fn open_db(cfg: &Config) -> Result<Db, String> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| format!("data directory {}: {e}", cfg.data_dir.display()))?;
    Db::open(&cfg.database_target()).await.map_err(|e| e.to_string())
}

/// The market's clock: the wall clock, or, when configured, an accelerated one anchored to the
/// first start (kept in `data_dir/clock.json`) that keeps running, stopped or not, at `speed`. At
/// the first start market time begins at `start_at` (default: now).
pub fn start_clock(cfg: &Config, start_at: Option<Timestamp>) -> Result<Clock, String> {
    if cfg.market.speed == 1.0 {
        return Ok(Clock::wall());
    }
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Anchor {
        real_ms: i64,
        /// Market time at `real_ms` (older files: the same as `real_ms`).
        #[serde(default)]
        market_ms: Option<i64>,
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
                market_ms: start_at.map(|t| t.0),
                speed: cfg.market.speed,
            };
            std::fs::write(&path, serde_json::to_string(&a).unwrap_or_default())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            a
        }
    };
    let market_now =
        anchor.market_ms.unwrap_or(anchor.real_ms) + ((real - anchor.real_ms) as f64 * anchor.speed) as i64;
    tracing::info!(speed = anchor.speed, "market clock accelerated");
    Ok(Clock::accelerated(Timestamp(market_now), anchor.speed))
}

/// The default start of epoch 1: midnight (UTC) of the market day the service first ran, kept in
/// `data_dir/epochs.json` so that restarts count the same epochs.
fn epoch_genesis(data_dir: &std::path::Path, now: Timestamp) -> Result<Timestamp, String> {
    let path = data_dir.join("epochs.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["genesis_ms"].as_i64())
            .map(Timestamp)
            .ok_or_else(|| format!("{}: no genesis_ms in {text:?}", path.display())),
        Err(_) => {
            let genesis = Timestamp(now.0 - now.0.rem_euclid(86_400_000));
            std::fs::write(&path, serde_json::json!({ "genesis_ms": genesis.0 }).to_string())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(genesis)
        }
    }
}

/// Market time when the clock in `data_dir` first started (from `clock.json`), if it was anchored.
pub fn market_origin(data_dir: &std::path::Path) -> Option<Timestamp> {
    let text = std::fs::read_to_string(data_dir.join("clock.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["market_ms"].as_i64().or_else(|| v["real_ms"].as_i64()).map(Timestamp)
}

/// Runs the market service until `shutdown` resolves (then stops cleanly). `start_at`: see
/// [`start_clock`].
pub async fn serve(
    cfg: Config,
    start_at: Option<Timestamp>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let db = open_db(&cfg).await?;
    // every participant without an address of their own gets their custodial account before
    // anything can pay or reward them
    let custody = crate::custody::load(&cfg)?;
    crate::custody::assign(&db, &custody)
        .await
        .map_err(|e| format!("assigning custodial accounts: {e}"))?;
    let clock = start_clock(&cfg, start_at)?;
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
    let metrics = Arc::new(gridshare_market::Metrics::new());
    let (market, recorder) = Market::start_with_metrics(
        cfg.market.engine.clone(),
        Some(journal),
        db.clone(),
        clock.clone(),
        metrics.clone(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let homes = participants::list(&db).await.map_err(|e| e.to_string())?;
    let connected: Vec<_> = homes
        .iter()
        .filter_map(|p| p.feeder_node.map(|n| (p.id, NodeId(n))))
        .collect();
    gridshare_market::add_participants(&market, connected)
        .await
        .map_err(|e| e.to_string())?;
    let (stop_mqtt, mqtt_stop) = tokio::sync::watch::channel(false);
    let (downlink, downlink_rx) = Downlinks::channel();
    let live = gridshare_market::live_channel();
    let broker = match &cfg.mqtt.url {
        Some(url) => Some(crate::mqtt::Broker {
            ca_file: cfg.mqtt.ca_file.clone(),
            ..crate::mqtt::Broker::parse(url)?
        }),
        None if cfg.mqtt.embedded => {
            let embedded =
                crate::broker::start(cfg.mqtt.listen, &cfg.mqtt.users, metrics.clone()).map_err(|e| e.to_string())?;
            if let Some((listen, tls)) = cfg.mqtt.tls().map_err(|e| e.to_string())? {
                embedded.start_tls(listen, tls).await.map_err(|e| e.to_string())?;
            }
            Some(embedded.service())
        }
        None => None,
    };
    let mqtt = match broker {
        None => None,
        Some(broker) => Some(tokio::spawn(crate::mqtt::run(
            broker,
            crate::mqtt::session_client_id(&cfg.mqtt.client_id),
            db.clone(),
            market.clone(),
            metrics.clone(),
            downlink_rx,
            mqtt_stop,
            Some(live.clone()),
            crate::signing::market_key(&cfg.data_dir)?,
            if cfg.settlement.enabled && cfg.rewards.enabled {
                crate::mqtt::Authority::Chain
            } else {
                crate::mqtt::Authority::Market
            },
        ))),
    };
    // demand-response events that have ended: verify the response from telemetry, credit rewards
    let dr_db = db.clone();
    let dr_network = cfg.market.engine.network.clone();
    let dr_clock = clock.clone();
    let dr_verifier = tokio::spawn(async move {
        loop {
            match gridshare_market::dr::credit_completed(&dr_db, dr_network.as_deref(), dr_clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rewards = n, "demand-response rewards credited"),
                Err(e) => tracing::warn!(error = %e, "verifying demand-response events"),
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    // reward epochs: verified contributions → rewards, report and root, once per epoch, with the
    // bonds the settlement task reads from chain
    let (bonds_tx, bonds_rx) = tokio::sync::watch::channel(None);
    let epochs = if cfg.rewards.enabled {
        let genesis = epoch_genesis(&cfg.data_dir, clock.now())?;
        let params = cfg
            .rewards
            .params(&cfg.market.intervals, genesis)
            .map_err(|e| e.to_string())?;
        Some(tokio::spawn(gridshare_market::epoch::collect::run(
            db.clone(),
            params,
            cfg.market.intervals.length.millis(),
            clock.clone(),
            Duration::from_secs(2),
            bonds_rx,
        )))
    } else {
        None
    };
    let (stop_settlement, settlement_stop) = tokio::sync::watch::channel(false);
    let (settlement, onchain) = crate::settle::start(
        &cfg,
        db.clone(),
        clock.clone(),
        settlement_stop,
        metrics.clone(),
        market.clone(),
        bonds_tx,
    )
    .await?;
    let scheduler = tokio::spawn(gridshare_market::schedule(
        market.clone(),
        cfg.zones(),
        cfg.market.intervals,
        cfg.market.horizon,
        Duration::from_millis(250),
    ));
    let state = AppState {
        onchain,
        ui_pkg: gridshare_web::pages::default_pkg_dir(),
        tariff: Some((cfg.settlement.import_tariff, cfg.settlement.export_tariff)),
        price_tick: cfg.market.engine.tick.0,
        live,
        network: cfg.market.engine.network.clone().map(Arc::new),
        interval_length: cfg.market.intervals.length,
        zones: cfg.zones(),
        downlink: if mqtt.is_some() { downlink } else { Downlinks::none() },
        clock,
        price_limits: Some((cfg.market.engine.min_price, cfg.market.engine.max_price)),
        metrics,
        db: Some(db.clone()),
        market: Some(market.clone()),
        limiter: Arc::new(RateLimiter::new(RateLimit {
            per_second: cfg.http.rate_per_second,
            burst: cfg.http.rate_burst,
        })),
        security: Arc::new(gridshare_web::guard::Security {
            secure_cookies: cfg.http.secure_cookies,
            allowed_origins: cfg.http.allowed_origins.clone(),
            metrics_token: cfg.http.metrics_token.clone(),
            trusted_proxies: cfg.http.trusted_proxies.clone(),
            ..gridshare_web::guard::Security::default()
        }),
        ..AppState::default()
    };
    state.readiness.register("storage");
    state.readiness.register("market");
    state.readiness.set("storage", true);
    state.readiness.set("market", true);
    // a market whose journal could not be written refuses every command: /readyz says so too
    let halt_watch = {
        let market = market.clone();
        let readiness = state.readiness.clone();
        tokio::spawn(async move {
            loop {
                if market.halted().is_some() {
                    readiness.set("market", false);
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    tracing::info!(listen = %cfg.http.listen, data_dir = %cfg.data_dir.display(), "GridShare market service running");
    let http_metrics = state.metrics.clone();
    gridshare_web::server::serve(listener, app(state), cfg.http.limits(), http_metrics, shutdown).await;

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
    halt_watch.abort();
    let _ = halt_watch.await;
    dr_verifier.abort();
    let _ = dr_verifier.await;
    if let Some(epochs) = epochs {
        epochs.abort();
        let _ = epochs.await;
    }
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
