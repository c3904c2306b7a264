//! Demand response: programs, events (targets and intervals as validated JSON documents, OpenADR 3
//! shapes) and the reports gateways send back.

use gridshare_domain::wire::DrReport;
use gridshare_domain::{EventId, GatewayId, ParticipantId, ProgramId, Timestamp, W};
use sqlx::Row;

use crate::db::{Db, query};
use crate::error::{Result, StorageError};

/// A program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Id.
    pub id: ProgramId,
    /// Name (unique).
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Made at (ms).
    pub created_at: i64,
}

/// Stores a program; `Duplicate` if the name is taken.
pub async fn create_program(db: &Db, name: &str, description: &str, now: Timestamp) -> Result<ProgramId> {
    let sql = "INSERT INTO dr_programs (name, description, created_at) VALUES ($1, $2, $3) RETURNING id";
    query!(db, sql, pool => |q| {
        let row = q.bind(name.to_owned()).bind(description.to_owned()).bind(now.0).fetch_one(pool).await?;
        Ok(ProgramId(row.try_get::<i64, _>("id")? as u64))
    })
}

/// Every program, by id.
pub async fn programs(db: &Db) -> Result<Vec<Program>> {
    let sql = "SELECT id, name, description, created_at FROM dr_programs ORDER BY id";
    query!(db, sql, pool => |q| {
        let rows = q.fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Program {
                    id: ProgramId(r.try_get::<i64, _>("id")? as u64),
                    name: r.try_get("name")?,
                    description: r.try_get("description")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()
    })
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Id.
    pub id: EventId,
    /// Its program.
    pub program: ProgramId,
    /// Priority (higher wins).
    pub priority: u32,
    /// Targets (JSON).
    pub targets: String,
    /// Intervals (JSON).
    pub intervals: String,
    /// First interval start (ms).
    pub starts_at: i64,
    /// Last interval end (ms).
    pub ends_at: i64,
    /// `scheduled`, `active`, `completed` or `cancelled`.
    pub status: String,
    /// Who made it.
    pub created_by: Option<ParticipantId>,
    /// Made at (ms).
    pub created_at: i64,
}

/// A new event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent<'a> {
    /// Its program.
    pub program: ProgramId,
    /// Priority.
    pub priority: u32,
    /// Targets (JSON).
    pub targets: &'a str,
    /// Intervals (JSON).
    pub intervals: &'a str,
    /// First interval start.
    pub starts_at: Timestamp,
    /// Last interval end.
    pub ends_at: Timestamp,
    /// Who makes it.
    pub created_by: ParticipantId,
}

/// Stores an event (status `scheduled`); `MissingReference` for an unknown program.
pub async fn create_event(db: &Db, e: &NewEvent<'_>, now: Timestamp) -> Result<EventId> {
    let sql = "INSERT INTO dr_events (program_id, priority, targets, intervals, starts_at, ends_at, status, created_by, \
               created_at) VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', $7, $8) RETURNING id";
    query!(db, sql, pool => |q| {
        let row = q
            .bind(e.program.0 as i64)
            .bind(i64::from(e.priority))
            .bind(e.targets.to_owned())
            .bind(e.intervals.to_owned())
            .bind(e.starts_at.0)
            .bind(e.ends_at.0)
            .bind(e.created_by.0 as i64)
            .bind(now.0)
            .fetch_one(pool)
            .await?;
        Ok(EventId(row.try_get::<i64, _>("id")? as u64))
    })
}

macro_rules! event_from_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<Event, StorageError>(Event {
            id: EventId(r.try_get::<i64, _>("id")? as u64),
            program: ProgramId(r.try_get::<i64, _>("program_id")? as u64),
            priority: u32::try_from(r.try_get::<i64, _>("priority")?).unwrap_or(0),
            targets: r.try_get("targets")?,
            intervals: r.try_get("intervals")?,
            starts_at: r.try_get("starts_at")?,
            ends_at: r.try_get("ends_at")?,
            status: r.try_get("status")?,
            created_by: r
                .try_get::<Option<i64>, _>("created_by")?
                .map(|p| ParticipantId(p as u64)),
            created_at: r.try_get("created_at")?,
        })
    }};
}

/// Events, newest first (at most `limit`).
pub async fn events(db: &Db, limit: u32) -> Result<Vec<Event>> {
    let sql = "SELECT id, program_id, priority, targets, intervals, starts_at, ends_at, status, created_by, created_at \
               FROM dr_events ORDER BY id DESC LIMIT $1";
    query!(db, sql, pool => |q| {
        let rows = q.bind(i64::from(limit)).fetch_all(pool).await?;
        rows.into_iter().map(|r| event_from_row!(r)).collect::<Result<Vec<_>>>()
    })
}

/// One event.
pub async fn event(db: &Db, id: EventId) -> Result<Option<Event>> {
    let sql = "SELECT id, program_id, priority, targets, intervals, starts_at, ends_at, status, created_by, created_at \
               FROM dr_events WHERE id = $1";
    query!(db, sql, pool => |q| {
        let row = q.bind(id.0 as i64).fetch_optional(pool).await?;
        row.map(|r| event_from_row!(r)).transpose()
    })
}

/// Cancels a scheduled or active event; `NotFound` when there is no such event still to cancel.
pub async fn cancel_event(db: &Db, id: EventId, now: Timestamp) -> Result<()> {
    let sql = "UPDATE dr_events SET status = 'cancelled', cancelled_at = $1 WHERE id = $2 \
               AND status IN ('scheduled', 'active')";
    let n = query!(db, sql, pool => |q| {
        q.bind(now.0).bind(id.0 as i64).execute(pool).await?.rows_affected()
    });
    if n == 0 {
        return Err(StorageError::NotFound {
            what: "cancellable event",
            key: id.0.to_string(),
        });
    }
    Ok(())
}

/// Stores a gateway's report for one interval of an event; a later report for the same
/// interval replaces it. `MissingReference` for an unknown event or gateway.
pub async fn record_report(db: &Db, gateway: GatewayId, r: &DrReport) -> Result<()> {
    let sql = "INSERT INTO dr_reports (event_id, gateway_id, interval_id, baseline_w, measured_w, confirmed, note, at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id, gateway_id, interval_id) DO UPDATE SET \
               baseline_w = excluded.baseline_w, measured_w = excluded.measured_w, confirmed = excluded.confirmed, \
               note = excluded.note, at = excluded.at";
    query!(db, sql, pool => |q| {
        q.bind(r.event_id.0 as i64)
            .bind(gateway.0 as i64)
            .bind(i64::from(r.interval_id))
            .bind(r.baseline_w.map(|w| w.0))
            .bind(r.measured_w.0)
            .bind(r.confirmed)
            .bind(r.note.clone())
            .bind(r.at.0)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// The reports of an event, by gateway then interval.
pub async fn reports(db: &Db, event: EventId) -> Result<Vec<(GatewayId, DrReport)>> {
    let sql = "SELECT gateway_id, interval_id, baseline_w, measured_w, confirmed, note, at FROM dr_reports \
               WHERE event_id = $1 ORDER BY gateway_id, interval_id";
    query!(db, sql, pool => |q| {
        let rows = q.bind(event.0 as i64).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    GatewayId(r.try_get::<i64, _>("gateway_id")? as u64),
                    DrReport {
                        event_id: event,
                        interval_id: u32::try_from(r.try_get::<i64, _>("interval_id")?).unwrap_or(0),
                        baseline_w: r.try_get::<Option<i64>, _>("baseline_w")?.map(W),
                        measured_w: W(r.try_get("measured_w")?),
                        confirmed: r.try_get::<bool, _>("confirmed")?,
                        note: r.try_get("note")?,
                        at: Timestamp(r.try_get("at")?),
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()
    })
}
