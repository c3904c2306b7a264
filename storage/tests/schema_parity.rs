//! The SQLite and PostgreSQL migrations build the same schema: every table, column (type class,
//! nullability, whether it has a default), primary key, unique constraint, index and foreign key
//! of a freshly migrated SQLite database matches a freshly migrated PostgreSQL one. The two
//! migration folders are written by hand side by side; this is what keeps them from drifting
//! (0005 on PostgreSQL had to repair ids that 0001 left without a default there).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use gridshare_storage::Db;
use sqlx::{PgPool, Row, SqlitePool};

/// A column's type, reduced to what both backends can express.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Class {
    Integer,
    Real,
    Text,
    Blob,
    Bool,
    Timestamp,
    Numeric,
    Json,
    /// A type neither mapping knows: compared by its name, so a new kind of column is reported
    /// rather than matched by accident.
    Other(String),
}

/// How a column gets a value when an insert leaves it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    None,
    /// A `DEFAULT` expression (compared by presence: `FALSE` and `0`, `''` and `''::text` are
    /// the same default written in two dialects).
    Value,
    /// Numbered by the database: an identity column on PostgreSQL, a rowid alias (`INTEGER
    /// PRIMARY KEY`) on SQLite.
    Generated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    class: Class,
    nullable: bool,
    default: Fill,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Index {
    columns: Vec<String>,
    unique: bool,
    /// Has a `WHERE` clause (the predicate's text differs between the dialects).
    partial: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ForeignKey {
    columns: Vec<String>,
    table: String,
    to: Vec<String>,
    /// Upper case, as SQLite spells it: `NO ACTION`, `CASCADE`, …
    on_delete: String,
}

#[derive(Debug, Default)]
struct Table {
    columns: BTreeMap<String, Column>,
    primary_key: Vec<String>,
    unique: BTreeSet<Vec<String>>,
    /// Indexes created with `CREATE INDEX`, by name (those behind a primary key or a unique
    /// constraint are compared as such).
    indexes: BTreeMap<String, Index>,
    foreign_keys: BTreeSet<ForeignKey>,
}

type Schema = BTreeMap<String, Table>;

/// sqlx's own bookkeeping, present on both but not part of our schema.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// SQLite's type affinity rules (https://sqlite.org/datatype3.html §3.1), with `BOOLEAN` and the
/// date-time names kept apart: SQLite stores them as numbers, but the declared type is what says
/// the column is meant to be one.
fn sqlite_class(declared: &str) -> Class {
    let t = declared.to_ascii_uppercase();
    match t.as_str() {
        "BOOLEAN" | "BOOL" => return Class::Bool,
        "TIMESTAMP" | "DATETIME" | "DATE" => return Class::Timestamp,
        "JSON" | "JSONB" => return Class::Json,
        _ => {}
    }
    if t.contains("INT") {
        Class::Integer
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        Class::Text
    } else if t.contains("BLOB") || t.is_empty() {
        Class::Blob
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        Class::Real
    } else if t.contains("NUMERIC") || t.contains("DECIMAL") {
        Class::Numeric
    } else {
        Class::Other(t)
    }
}

fn postgres_class(data_type: &str) -> Class {
    match data_type {
        "smallint" | "integer" | "bigint" => Class::Integer,
        "text" | "character varying" | "character" => Class::Text,
        "bytea" => Class::Blob,
        "real" | "double precision" => Class::Real,
        "boolean" => Class::Bool,
        "numeric" => Class::Numeric,
        "json" | "jsonb" => Class::Json,
        t if t.starts_with("timestamp") || t == "date" => Class::Timestamp,
        t => Class::Other(t.to_owned()),
    }
}

async fn sqlite_schema(pool: &SqlitePool) -> Schema {
    // sqlite_* tables are SQLite's own (sqlite_sequence, sqlite_stat1, …).
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         AND name <> ?1 ORDER BY name",
    )
    .bind(MIGRATIONS_TABLE)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for name in names {
        let mut table = Table::default();
        let cols = sqlx::query("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)")
            .bind(&name)
            .fetch_all(pool)
            .await
            .unwrap();
        let mut pk: Vec<(i64, String)> = cols
            .iter()
            .filter(|c| c.get::<i64, _>("pk") > 0)
            .map(|c| (c.get("pk"), c.get("name")))
            .collect();
        pk.sort();
        table.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        for c in &cols {
            let col: String = c.get("name");
            let declared: String = c.get("type");
            // A lone INTEGER PRIMARY KEY is the rowid: a NULL written to it becomes the next
            // number, so it never holds NULL although table_info says it may. Any other primary
            // key column of a rowid table does accept NULL unless declared NOT NULL (a quirk
            // SQLite keeps for compatibility), so for those table_info is the truth.
            let rowid = table.primary_key == [col.as_str()] && declared.eq_ignore_ascii_case("INTEGER");
            table.columns.insert(
                col,
                Column {
                    class: sqlite_class(&declared),
                    nullable: c.get::<i64, _>("notnull") == 0 && !rowid,
                    default: if rowid {
                        Fill::Generated
                    } else if c.get::<Option<String>, _>("dflt_value").is_some() {
                        Fill::Value
                    } else {
                        Fill::None
                    },
                },
            );
        }
        let indexes = sqlx::query("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")
            .bind(&name)
            .fetch_all(pool)
            .await
            .unwrap();
        for i in indexes {
            let index: String = i.get("name");
            let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .bind(&index)
                .fetch_all(pool)
                .await
                .unwrap();
            match i.get::<String, _>("origin").as_str() {
                "pk" => {} // a non-rowid primary key's index: the key is compared above
                "u" => {
                    table.unique.insert(columns);
                }
                _ => {
                    table.indexes.insert(
                        index,
                        Index {
                            columns,
                            unique: i.get::<i64, _>("unique") != 0,
                            partial: i.get::<i64, _>("partial") != 0,
                        },
                    );
                }
            }
        }
        let fks = sqlx::query(
            "SELECT id, seq, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
        )
        .bind(&name)
        .fetch_all(pool)
        .await
        .unwrap();
        let mut by_id: BTreeMap<i64, ForeignKey> = BTreeMap::new();
        for f in fks {
            let fk = by_id.entry(f.get("id")).or_insert_with(|| ForeignKey {
                columns: Vec::new(),
                table: f.get("table"),
                to: Vec::new(),
                on_delete: f.get::<String, _>("on_delete").to_ascii_uppercase(),
            });
            fk.columns.push(f.get("from"));
            fk.to.push(f.get("to"));
        }
        table.foreign_keys = by_id.into_values().collect();
        schema.insert(name, table);
    }
    schema
}

/// Column names of constraint or index keys, in key order.
const CONSTRAINT_COLUMNS: &str = "SELECT array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) \
     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord)";

async fn postgres_schema(pool: &PgPool) -> Schema {
    // Only base tables of our schema: TimescaleDB's chunks live in its own schemas and its
    // continuous aggregates (readings_15m, readings_1d) are views.
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname <> $1 ORDER BY 1",
    )
    .bind(MIGRATIONS_TABLE)
    .fetch_all(pool)
    .await
    .unwrap();
    // create_hypertable adds an index on the time column; SQLite has no hypertables, and the
    // storage crate makes readings a hypertable only when the server has TimescaleDB.
    let timescale_index = gridshare_storage::timescale::enabled(pool)
        .await
        .unwrap()
        .then_some(("readings", "readings_at_idx"));
    let mut schema = Schema::new();
    for name in names {
        let mut table = Table::default();
        let cols = sqlx::query(
            "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text, is_identity::text \
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(&name)
        .fetch_all(pool)
        .await
        .unwrap();
        for c in cols {
            table.columns.insert(
                c.get("column_name"),
                Column {
                    class: postgres_class(&c.get::<String, _>("data_type")),
                    nullable: c.get::<String, _>("is_nullable") == "YES",
                    default: if c.get::<String, _>("is_identity") == "YES" {
                        Fill::Generated
                    } else if c.get::<Option<String>, _>("column_default").is_some() {
                        Fill::Value
                    } else {
                        Fill::None
                    },
                },
            );
        }
        let constraints = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT c.contype::text AS kind, ({CONSTRAINT_COLUMNS}) AS columns, \
             c.confrelid::regclass::text AS ref_table, \
             array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord) \
                   JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord) AS ref_columns, \
             c.confdeltype::text AS on_delete \
             FROM pg_constraint c WHERE c.conrelid = $1::regclass AND c.contype IN ('p', 'u', 'f')"
        )))
        .bind(&name)
        .fetch_all(pool)
        .await
        .unwrap();
        for c in constraints {
            let columns: Vec<String> = c.get("columns");
            match c.get::<String, _>("kind").as_str() {
                "p" => table.primary_key = columns,
                "u" => {
                    table.unique.insert(columns);
                }
                _ => {
                    let on_delete = match c.get::<String, _>("on_delete").as_str() {
                        "a" => "NO ACTION",
                        "r" => "RESTRICT",
                        "c" => "CASCADE",
                        "n" => "SET NULL",
                        "d" => "SET DEFAULT",
                        other => panic!("{name}: unknown foreign key action {other:?}"),
                    };
                    table.foreign_keys.insert(ForeignKey {
                        columns,
                        table: c.get("ref_table"),
                        to: c.get("ref_columns"),
                        on_delete: on_delete.to_owned(),
                    });
                }
            }
        }
        let indexes = sqlx::query(
            "SELECT ic.relname::text AS name, i.indisunique AS is_unique, i.indpred IS NOT NULL AS partial, \
             array(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts::int) k \
                   ORDER BY k) AS columns \
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
             WHERE i.indrelid = $1::regclass \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)",
        )
        .bind(&name)
        .fetch_all(pool)
        .await
        .unwrap();
        for i in indexes {
            let index: String = i.get("name");
            if timescale_index == Some((name.as_str(), index.as_str())) {
                continue;
            }
            table.indexes.insert(
                index,
                Index {
                    columns: i.get("columns"),
                    unique: i.get("is_unique"),
                    partial: i.get("partial"),
                },
            );
        }
        schema.insert(name, table);
    }
    schema
}

/// One way the backends differ: `subject` is a column, index or key of `table`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Difference {
    table: String,
    subject: String,
    aspect: &'static str,
    sqlite: String,
    postgres: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "table {}, {}: {} is {} on SQLite but {} on PostgreSQL",
            self.table, self.subject, self.aspect, self.sqlite, self.postgres
        )
    }
}

fn presence(present: bool) -> String {
    String::from(if present { "present" } else { "absent" })
}

fn shown<T: fmt::Debug>(v: Option<&T>) -> String {
    v.map_or_else(|| "absent".to_owned(), |v| format!("{v:?}"))
}

fn compare(sqlite: &Schema, postgres: &Schema) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut diff = |table: &str, subject: String, aspect: &'static str, s: String, p: String| {
        if s != p {
            out.push(Difference {
                table: table.to_owned(),
                subject,
                aspect,
                sqlite: s,
                postgres: p,
            });
        }
    };
    let names: BTreeSet<&String> = sqlite.keys().chain(postgres.keys()).collect();
    for name in names {
        let name = name.as_str();
        let (Some(s), Some(p)) = (sqlite.get(name), postgres.get(name)) else {
            let (s, p) = (
                presence(sqlite.contains_key(name)),
                presence(postgres.contains_key(name)),
            );
            diff(name, "the table".into(), "it", s, p);
            continue;
        };
        let columns: BTreeSet<&String> = s.columns.keys().chain(p.columns.keys()).collect();
        for col in columns {
            let subject = format!("column {col}");
            match (s.columns.get(col), p.columns.get(col)) {
                (Some(sc), Some(pc)) => {
                    diff(
                        name,
                        subject.clone(),
                        "the type",
                        format!("{:?}", sc.class),
                        format!("{:?}", pc.class),
                    );
                    let null = |n: bool| String::from(if n { "NULL" } else { "NOT NULL" });
                    diff(
                        name,
                        subject.clone(),
                        "nullability",
                        null(sc.nullable),
                        null(pc.nullable),
                    );
                    diff(
                        name,
                        subject,
                        "the default",
                        format!("{:?}", sc.default),
                        format!("{:?}", pc.default),
                    );
                }
                (sc, pc) => diff(name, subject, "the column", shown(sc), shown(pc)),
            }
        }
        diff(
            name,
            "primary key".into(),
            "the key",
            format!("{:?}", s.primary_key),
            format!("{:?}", p.primary_key),
        );
        for key in s.unique.symmetric_difference(&p.unique) {
            let it = format!("unique constraint on {key:?}");
            diff(
                name,
                it,
                "it",
                presence(s.unique.contains(key)),
                presence(p.unique.contains(key)),
            );
        }
        let indexes: BTreeSet<&String> = s.indexes.keys().chain(p.indexes.keys()).collect();
        for index in indexes {
            diff(
                name,
                format!("index {index}"),
                "its definition",
                shown(s.indexes.get(index)),
                shown(p.indexes.get(index)),
            );
        }
        for fk in s.foreign_keys.symmetric_difference(&p.foreign_keys) {
            diff(
                name,
                format!(
                    "foreign key {:?} → {}{:?} on delete {}",
                    fk.columns, fk.table, fk.to, fk.on_delete
                ),
                "it",
                presence(s.foreign_keys.contains(fk)),
                presence(p.foreign_keys.contains(fk)),
            );
        }
    }
    out
}

/// Differences that are meant, as (table, subject, aspect), each with its reason above it.
const INTENDED: &[(&str, &str, &str)] = &[
    // SQLite has no boolean storage class: a BOOLEAN column is a number column there too, and both
    // declarations hold 0 and 1, which sqlx reads as bool either way. 0001 declared these two
    // INTEGER; declaring them BOOLEAN on SQLite would mean rebuilding the tables (gateways is
    // referenced by seven others) for no change in what is stored.
    ("gateways", "column online", "the type"),
    ("dr_reports", "column confirmed", "the type"),
    // An INTEGER PRIMARY KEY on SQLite is the rowid and numbers itself; on PostgreSQL only the ids
    // the database assigns are identity columns. These ids always come from the caller: a
    // participant's and a gateway's from the directory, an order's and a trade's from the
    // matching engine, a batch's from settlement, an epoch's number from the epoch schedule, a parameter version from the chain, and
    // the two preference tables are keyed by their participant and gateway.
    ("participants", "column id", "the default"),
    ("gateways", "column id", "the default"),
    ("orders", "column order_id", "the default"),
    ("trades", "column trade_id", "the default"),
    ("settlement_batches", "column batch_id", "the default"),
    ("epochs", "column epoch", "the default"),
    // a version of the governed parameters is numbered by the contract on chain
    ("parameter_versions", "column version", "the default"),
    ("home_preferences", "column participant_id", "the default"),
    ("gateway_preferences", "column gateway_id", "the default"),
];

#[tokio::test]
async fn sqlite_and_postgres_migrations_build_the_same_schema() {
    let lite = common::sqlite().await;
    let Some(pg) = common::postgres().await else {
        lite.finish().await;
        return;
    };
    let (Db::Sqlite(lite_pool), Db::Postgres(pg_pool)) = (&lite.db, &pg.db) else {
        panic!("common::sqlite and common::postgres open one backend each");
    };
    let sqlite = sqlite_schema(lite_pool).await;
    let postgres = postgres_schema(pg_pool).await;
    lite.finish().await;
    pg.finish().await;

    // The comparison must have something to compare: a query that silently found nothing would
    // make every schema equal.
    for (backend, schema) in [("SQLite", &sqlite), ("PostgreSQL", &postgres)] {
        let positions = schema
            .get("positions")
            .unwrap_or_else(|| panic!("{backend}: no positions table"));
        assert_eq!(positions.primary_key, ["interval_start", "participant_id"], "{backend}");
        assert!(positions.indexes["positions_awaiting_readings"].partial, "{backend}");
        assert_eq!(positions.foreign_keys.len(), 3, "{backend}");
        assert!(
            schema["participants"].unique.contains(&vec!["evm_address".to_owned()]),
            "{backend}"
        );
        assert!(schema.len() >= 23, "{backend}: only {} tables", schema.len());
    }

    let differences = compare(&sqlite, &postgres);
    let intended = |d: &Difference| {
        INTENDED
            .iter()
            .any(|(t, s, a)| d.table == *t && d.subject == *s && d.aspect == *a)
    };
    let unexpected: Vec<String> = differences
        .iter()
        .filter(|d| !intended(d))
        .map(ToString::to_string)
        .collect();
    assert!(
        unexpected.is_empty(),
        "the SQLite and PostgreSQL schemas differ (fix it with a new migration on the wrong side, or list it in \
         INTENDED with the reason):\n  {}",
        unexpected.join("\n  ")
    );
    // An allowance for a difference that is gone would let it come back unnoticed.
    let stale: Vec<_> = INTENDED
        .iter()
        .filter(|(t, s, a)| {
            !differences
                .iter()
                .any(|d| d.table == *t && d.subject == *s && d.aspect == *a)
        })
        .collect();
    assert!(
        stale.is_empty(),
        "INTENDED lists differences that no longer exist: {stale:?}"
    );
}
