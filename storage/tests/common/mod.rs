//! Test databases: every storage test runs on a fresh SQLite file and on a
//! fresh PostgreSQL database (created from the superuser URL the test
//! services export, dropped afterwards).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use gridshare_domain::envelope::{GatewayKey, ReplayWindow};
use gridshare_domain::{GatewayId, NodeId, ParticipantId, Timestamp};
use gridshare_storage::Db;
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::participants::{self, Participant};
use sqlx::Connection;

/// A database under test and how to clean it up.
pub struct TestDb {
    pub name: &'static str,
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// Close the pool and drop the PostgreSQL database.
    pub async fn finish(self) {
        self.db.close().await;
        if let Some((admin_url, name)) = self.pg {
            let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
}

fn unique_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "gs_test_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh SQLite database in a temporary directory.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    TestDb {
        name: "sqlite",
        db,
        _dir: Some(dir),
        pg: None,
    }
}

/// A fresh PostgreSQL database, or None when no server is configured (outside CI).
pub async fn postgres() -> Option<TestDb> {
    let admin = gridshare_testkit::service(gridshare_testkit::POSTGRES_URL, "PostgreSQL")?;
    let name = unique_name();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let db = Db::open(&format!("{base}/{name}")).await.unwrap();
    Some(TestDb {
        name: "postgres",
        db,
        _dir: None,
        pg: Some((admin, name)),
    })
}

/// Both backends (PostgreSQL only when available).
pub async fn backends() -> Vec<TestDb> {
    let mut v = vec![sqlite().await];
    v.extend(postgres().await);
    v
}

pub const NOW: Timestamp = Timestamp(1_764_064_800_000);

/// A homeowner participant with a registered gateway of the same number.
pub async fn home_with_gateway(db: &Db, n: u64) -> (ParticipantId, GatewayId, GatewayKey) {
    let p = Participant {
        id: ParticipantId(n),
        name: format!("Home {n}"),
        role: "homeowner".into(),
        evm_address: None,
        feeder_node: Some(n as u32),
        custody_address: None,
    };
    participants::upsert(db, &p, NOW).await.unwrap();
    let mut secret = [0u8; 32];
    secret[24..].copy_from_slice(&(n + 1).to_be_bytes());
    let key = GatewayKey::from_bytes(&secret).unwrap();
    let g = Gateway {
        id: GatewayId(n),
        owner: p.id,
        installer: None,
        public_key: key.public(),
        feeder_node: NodeId(n as u32),
        window: ReplayWindow::default(),
        revoked_at: None,
    };
    gateways::register(db, &g, NOW).await.unwrap();
    (p.id, g.id, key)
}
