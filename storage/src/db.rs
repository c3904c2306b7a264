//! Opening a database: SQLite (a file under a data directory, WAL mode) or
//! PostgreSQL (TimescaleDB when the extension is there), migrated on open.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::error::{Result, StorageError};

/// A connection pool to one of the two supported databases.
///
/// An enum rather than a trait object or sqlx's `Any` driver: each query is
/// written once (see `with_pool!`) and compiled for both concrete drivers, so
/// each keeps its native types and its own fast path where the dialects
/// differ (bulk ingest uses `UNNEST` on PostgreSQL, multi-row VALUES on SQLite).
#[derive(Debug, Clone)]
pub enum Db {
    /// Embedded SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL, with or without TimescaleDB.
    Postgres(PgPool),
}

/// Which backend a [`Db`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Run `$body` with `$pool` bound to the concrete pool of either backend.
/// The body is compiled twice, once per driver.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Remove a password from a URL before it goes into an error or a log.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl Db {
    /// Open and migrate the database named by `target`: a `postgres://` or
    /// `postgresql://` URL, a `sqlite://` URL, or a directory for an embedded
    /// SQLite file `gridshare.db` inside it (created if missing).
    pub async fn open(target: &str) -> Result<Self> {
        let db = if target.starts_with("postgres://") || target.starts_with("postgresql://") {
            Self::open_postgres(target).await?
        } else if let Some(path) = target.strip_prefix("sqlite://") {
            Self::open_sqlite(Path::new(path)).await?
        } else {
            let dir = Path::new(target);
            std::fs::create_dir_all(dir).map_err(|e| StorageError::Open {
                target: target.to_owned(),
                reason: e.to_string(),
            })?;
            Self::open_sqlite(&dir.join("gridshare.db")).await?
        };
        db.migrate().await?;
        Ok(db)
    }

    async fn open_sqlite(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: durable across process crashes, and across power
            // loss up to the last checkpoint; the usual choice for WAL.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|e| StorageError::Open {
                target: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self::Sqlite(pool))
    }

    async fn open_postgres(url: &str) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url).map_err(|e| StorageError::Open {
            target: redact(url),
            reason: e.to_string(),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(|e| StorageError::Open {
                target: redact(url),
                reason: e.to_string(),
            })?;
        Ok(Self::Postgres(pool))
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Apply pending migrations (run by [`Db::open`]; safe to call again).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Self::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Self::Postgres(pool) => {
                sqlx::migrate!("./migrations/postgres").run(pool).await?;
                crate::timescale::setup(pool).await?;
            }
        }
        Ok(())
    }

    /// Close every connection.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// Turn `$1`-style placeholders into SQLite's explicit `?1` form, so one SQL
/// text serves both backends and SQLite binds by number, not by appearance.
pub(crate) fn sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// A query over either backend from one SQL text with `$n` placeholders.
macro_rules! query {
    ($db:expr, $sql:expr, $pool:ident => |$q:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => {
                let $q = sqlx::query(sqlx::AssertSqlSafe($crate::db::sqlite_placeholders($sql)));
                $body
            }
            $crate::db::Db::Postgres($pool) => {
                let $q = sqlx::query($sql);
                $body
            }
        }
    };
}
pub(crate) use query;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_redaction() {
        assert_eq!(sqlite_placeholders("SELECT $1, '$x', $12"), "SELECT ?1, '$x', ?12");
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
