//! Settlement as the API shows it: batches with their status and transactions, the Merkle proof
//! that one of my trades is in a settled batch (checkable by anyone with the vault's
//! `verifyTrade`), and my positions per interval with their true-ups.

use axum::extract::State;
use axum::http::StatusCode;
use gridshare_domain::{Timestamp, TradeId};
use gridshare_settlement::step::{OnchainTrade, proof_of};
use gridshare_storage::{StorageError, chain_txs, market, positions};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::api::Page;
use crate::auth::{Principal, Role, Scope};
use crate::error::{ApiError, ApiJson, ApiPath as Path, ApiQuery as Query};

/// A transaction of a batch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TxView {
    /// Hash.
    pub hash: String,
    /// Chunk of the batch.
    pub chunk: u32,
    /// Nonce.
    pub nonce: u64,
    /// `signed`, `broadcast`, `mined`, `confirmed`, `replaced`, `failed`.
    pub status: String,
    /// Block, once mined.
    pub block: Option<u64>,
    /// Last error.
    pub error: Option<String>,
}

/// A settlement batch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchView {
    /// Sequential id (the vault's batch id).
    pub batch_id: u64,
    /// First delivery interval start (RFC 3339).
    pub from: String,
    /// Last delivery interval end (RFC 3339).
    pub to: String,
    /// Trades in it.
    pub trades: u64,
    /// `built`, `submitting`, `confirmed` or `parked`.
    pub status: String,
    /// Why it is parked, or the last transient error while submitting.
    pub error: Option<String>,
    /// Merkle root of its trades.
    pub trades_root: String,
    /// The vault's state hash after it.
    pub state_hash: Option<String>,
    /// Accounts it moved.
    pub accounts: usize,
    /// The sum of its deltas, µ: always 0 (netting moves money, never makes it).
    pub net_micro: i64,
    /// Its transactions, oldest first.
    pub transactions: Vec<TxView>,
}

/// Settlement batches, newest first.
#[utoipa::path(get, path = "/api/v1/settlement/batches", tag = "settlement", security(("api_key" = [])), params(Page),
    responses((status = 200, description = "Batches", body = Vec<BatchView>)))]
pub async fn batches(
    State(state): State<AppState>,
    who: Principal,
    Query(page): Query<Page>,
) -> Result<ApiJson<Vec<BatchView>>, ApiError> {
    who.require_scope(Scope::Read)?;
    let db = state.db()?;
    let rows = chain_txs::batches(db, page.before, page.limit()?, false).await?;
    let mut out = Vec::with_capacity(rows.len());
    for b in rows {
        let txs = chain_txs::txs_of_batch(db, b.batch_id).await?;
        out.push(BatchView {
            batch_id: b.batch_id,
            from: Timestamp(b.first_interval_start).to_rfc3339(),
            to: Timestamp(b.last_interval_end).to_rfc3339(),
            trades: b.trade_count,
            status: b.status,
            error: b.error,
            trades_root: b.trades_root,
            state_hash: b.state_hash,
            accounts: b.deltas.len(),
            net_micro: b.deltas.iter().map(|(_, d)| d).sum(),
            transactions: txs
                .iter()
                .map(|t| TxView {
                    hash: t.tx_hash.clone(),
                    chunk: t.chunk,
                    nonce: t.nonce,
                    status: t.status.as_str().to_owned(),
                    block: t.block_number,
                    error: t.last_error.clone(),
                })
                .collect(),
        });
    }
    Ok(ApiJson(out))
}

/// A trade's proof of settlement.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProofView {
    /// The batch it settled in.
    pub batch_id: u64,
    /// The batch's Merkle root (as stored by the vault).
    pub root: String,
    /// The trade as the vault's `Trade` struct (the `verifyTrade` argument), with its leaf hash.
    #[schema(value_type = Object)]
    pub trade: OnchainTrade,
    /// Sibling hashes from the leaf up.
    pub proof: Vec<String>,
}

/// The Merkle proof that one of my trades is in a settled batch.
#[utoipa::path(get, path = "/api/v1/trades/{id}/proof", tag = "settlement", security(("api_key" = [])),
    params(("id" = u64, Path, description = "Trade id")),
    responses(
        (status = 200, description = "Proof", body = ProofView),
        (status = 403, description = "Not your trade", body = crate::error::ErrorBody),
        (status = 404, description = "No such trade", body = crate::error::ErrorBody),
        (status = 409, description = "Not settled yet", body = crate::error::ErrorBody),
    ))]
pub async fn proof(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<u64>,
) -> Result<ApiJson<ProofView>, ApiError> {
    who.require_scope(Scope::Read)?;
    let db = state.db()?;
    let batch = match market::batch_of_trade(db, id).await {
        Ok(b) => b,
        Err(StorageError::NotFound { .. }) => return Err(ApiError::not_found(format!("no trade {id}"))),
        Err(e) => return Err(e.into()),
    };
    let Some(batch_id) = batch else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_settled",
            format!("trade {id} is not in a settlement batch yet"),
        ));
    };
    let trades = market::trades_of_batch(db, batch_id).await?;
    let t = trades
        .iter()
        .find(|t| t.trade_id == TradeId(id))
        .ok_or_else(|| ApiError::not_found(format!("no trade {id}")))?;
    who.require_self_or(t.buyer, &[Role::Operator])
        .or_else(|_| who.require_self_or(t.seller, &[Role::Operator]))?;
    let stored = market::onchain_trades_of_batch(db, batch_id).await?;
    let (trade, path, root) = proof_of(&stored, id)
        .map_err(|e| {
            tracing::error!(error = %e, trade = id, "stored on-chain trade");
            ApiError::internal("the stored proof data is damaged; an operator has been told")
        })?
        .ok_or_else(|| ApiError::not_found(format!("no trade {id} in batch {batch_id}")))?;
    Ok(ApiJson(ProofView {
        batch_id,
        root: root.to_string(),
        trade,
        proof: path.iter().map(ToString::to_string).collect(),
    }))
}

/// The correction of a position settled on an estimate, once its readings arrived.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrueUpView {
    /// The net import the readings show, Wh.
    pub metered_net_import_wh: i64,
    /// My side of the correction, µ (positive: credited; zero: the estimate was right).
    pub correction_micro: i64,
    /// The batch that posted it (none when it moved no money).
    pub batch_id: Option<u64>,
    /// When it was recorded (RFC 3339).
    pub at: Option<String>,
}

/// My position in one settled delivery interval.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PositionView {
    /// Delivery interval start (RFC 3339).
    pub interval_start: String,
    /// Its end (RFC 3339).
    pub interval_end: String,
    /// The batch that settled it.
    pub batch_id: u64,
    /// Energy bought in the market, Wh.
    pub bought_wh: i64,
    /// Energy sold in the market, Wh.
    pub sold_wh: i64,
    /// Metered net import (import − export), Wh; the traded net when `estimated`.
    pub metered_net_import_wh: i64,
    /// `measured`; `estimated` (my gateway's readings were late: settled as traded, no imbalance
    /// charged, trued up when they arrive); `trued_up` (see `true_up`).
    pub status: String,
    /// `metered − traded` net import, Wh: positive drawn from the utility, negative fed to it.
    pub imbalance_wh: i64,
    /// My cash for the imbalance at the utility tariff, µ (negative: I paid).
    pub imbalance_micro: i64,
    /// The true-up of an estimate.
    pub true_up: Option<TrueUpView>,
}

/// Positions: newest interval first, `before` an interval start (ms) from the previous page.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PositionPage {
    /// Only intervals that start earlier (ms since the epoch).
    pub before: Option<i64>,
    /// Items per page (1–500, default 100).
    pub limit: Option<u32>,
}

/// My positions per settled delivery interval: what I traded against what my meter measured,
/// the imbalance charged at the utility tariff, and the true-up of any that were settled on an
/// estimate.
#[utoipa::path(get, path = "/api/v1/settlement/positions", tag = "settlement", security(("api_key" = [])),
    params(PositionPage), responses((status = 200, description = "Positions", body = Vec<PositionView>)))]
pub async fn positions(
    State(state): State<AppState>,
    who: Principal,
    Query(page): Query<PositionPage>,
) -> Result<ApiJson<Vec<PositionView>>, ApiError> {
    who.require_scope(Scope::Read)?;
    let limit = Page {
        before: None,
        limit: page.limit,
    }
    .limit()?;
    let db = state.db()?;
    let rows = positions::of_participant(db, who.participant, page.before.map(Timestamp), limit).await?;
    Ok(ApiJson(rows.iter().map(position_view).collect()))
}

/// A stored position as the API shows it.
pub fn position_view(p: &positions::Position) -> PositionView {
    let s = &p.settled;
    let status = match (s.estimated, &p.true_up) {
        (false, _) => "measured",
        (true, None) => "estimated",
        (true, Some(_)) => "trued_up",
    };
    PositionView {
        interval_start: s.interval_start.to_rfc3339(),
        interval_end: s.interval_end.to_rfc3339(),
        batch_id: p.batch_id,
        bought_wh: s.bought.0,
        sold_wh: s.sold.0,
        metered_net_import_wh: s.metered_net_import.0,
        status: status.to_owned(),
        imbalance_wh: s.imbalance.0,
        imbalance_micro: s.imbalance_cash.0,
        true_up: p.true_up.map(|t| TrueUpView {
            metered_net_import_wh: t.real_net_import.0,
            correction_micro: t.cash.0,
            batch_id: p.true_up_batch_id,
            at: p.trued_up_at.map(Timestamp::to_rfc3339),
        }),
    }
}
