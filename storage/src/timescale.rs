//! TimescaleDB, when the server has it: readings become a hypertable
//! (one-day chunks) with compression after 7 days, retention of 2 years, and
//! continuous aggregates of 15-minute and daily totals. Without the extension
//! nothing here runs, and the same queries work on the plain indexed table.
//!
//! This is a step after the migrations, not a migration, because it depends
//! on the server, not on the schema version; every statement is idempotent.

use sqlx::PgPool;

use crate::error::Result;

/// The continuous aggregate `$view` of readings in buckets of `$bucket_ms` milliseconds.
macro_rules! rollup {
    ($view:literal, $bucket_ms:literal) => {
        concat!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS ",
            $view,
            " WITH (timescaledb.continuous) AS \
             SELECT gateway_id, device, time_bucket(",
            $bucket_ms,
            "::bigint, at) AS bucket, count(*) AS samples, \
             sum(power_w) AS power_sum, count(power_w) AS power_count, \
             max(energy_in_wh) AS energy_in_max, max(energy_out_wh) AS energy_out_max \
             FROM readings GROUP BY gateway_id, device, time_bucket(",
            $bucket_ms,
            "::bigint, at) WITH NO DATA"
        )
    };
}

/// Readings' time column is integer milliseconds: Timescale needs to know "now" in that unit.
const SETUP: &[&str] = &[
    "CREATE OR REPLACE FUNCTION gridshare_now_ms() RETURNS BIGINT LANGUAGE SQL STABLE AS \
     $$ SELECT (extract(epoch FROM now()) * 1000)::bigint $$",
    "SELECT create_hypertable('readings', by_range('at', 86400000::bigint), if_not_exists => TRUE, migrate_data => TRUE)",
    "SELECT set_integer_now_func('readings', 'gridshare_now_ms', replace_if_exists => TRUE)",
    "ALTER TABLE readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'gateway_id, device', \
     timescaledb.compress_orderby = 'at')",
    "SELECT add_compression_policy('readings', compress_after => 604800000::bigint, if_not_exists => TRUE)",
    "SELECT add_retention_policy('readings', drop_after => 63072000000::bigint, if_not_exists => TRUE)",
    rollup!("readings_15m", 900000),
    "SELECT add_continuous_aggregate_policy('readings_15m', start_offset => 86400000::bigint, \
     end_offset => 900000::bigint, schedule_interval => INTERVAL '5 minutes', if_not_exists => TRUE)",
    rollup!("readings_1d", 86400000),
    "SELECT add_continuous_aggregate_policy('readings_1d', start_offset => 604800000::bigint, \
     end_offset => 86400000::bigint, schedule_interval => INTERVAL '1 hour', if_not_exists => TRUE)",
];

/// True when the TimescaleDB extension is installed in this database.
pub async fn enabled(pool: &PgPool) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}

/// Enable TimescaleDB features if the server offers the extension.
pub async fn setup(pool: &PgPool) -> Result<()> {
    let available: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
        .fetch_one(pool)
        .await?;
    if available == 0 {
        tracing::info!("TimescaleDB not available: readings stay a plain indexed table");
        return Ok(());
    }
    sqlx::query("CREATE EXTENSION IF NOT EXISTS timescaledb")
        .execute(pool)
        .await?;
    for stmt in SETUP {
        sqlx::query(*stmt).execute(pool).await?;
    }
    tracing::info!("TimescaleDB enabled: readings hypertable, compression, retention, 15-minute and daily aggregates");
    Ok(())
}
