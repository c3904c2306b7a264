//! A participant's balance three ways: what the settlement ledger has confirmed for their account,
//! what their trades not yet settled will add, and what the vault holds on chain. The first and
//! the last agree once every batch is confirmed (and before any deposit or withdrawal).

use std::future::Future;
use std::pin::Pin;

use alloy::primitives::Address;
use axum::extract::State;
use axum::http::StatusCode;
use gridshare_domain::money::trade_cash;
use gridshare_settlement::step::Accounts;
use gridshare_storage::{chain_txs, market, participants};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiJson};

/// Reads balances from the vault (the market service implements it over its chain backend).
pub trait OnChain: Send + Sync + std::fmt::Debug {
    /// The vault balance of `account`, µ.
    fn balance_of(&self, account: Address) -> Pin<Box<dyn Future<Output = Result<i128, String>> + Send + '_>>;
}

/// My balance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BalanceView {
    /// The settlement account (address on chain).
    pub account: String,
    /// Sum of my deltas in confirmed settlement batches, µ.
    pub settled: i64,
    /// Batches I was in.
    pub batches: i64,
    /// What my trades not yet settled will add (negative: I owe), µ.
    pub pending: i64,
    /// The vault's balance for my account, µ (none without a chain).
    pub on_chain: Option<i64>,
}

/// My balance: settled, pending and on chain.
#[utoipa::path(get, path = "/api/v1/balance", tag = "settlement", security(("api_key" = [])),
    responses((status = 200, description = "Balance", body = BalanceView), (status = 503, description = "The chain cannot be read", body = crate::error::ErrorBody)))]
pub async fn balance(State(state): State<AppState>, who: Principal) -> Result<ApiJson<BalanceView>, ApiError> {
    Ok(ApiJson(balance_of(&state, &who).await?))
}

/// `who`'s balance: settled, pending and on chain.
pub async fn balance_of(state: &AppState, who: &Principal) -> Result<BalanceView, ApiError> {
    who.require_scope(Scope::Read)?;
    let db = state.db()?;
    let me = participants::get(db, who.participant).await?;
    let address = Accounts::participant_address(&me).map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_account",
            format!("{e} (the market service assigns one when it starts)"),
        )
    })?;
    let (settled, batches) = chain_txs::settled_total(db, &address.to_string()).await?;
    let mut pending: i64 = 0;
    for t in market::unsettled_trades_of(db, who.participant).await? {
        let cash = trade_cash(t.quantity, t.price, t.grid_fee).map_err(|e| {
            tracing::error!(trade = t.trade_id.0, error = %e, "trade cash");
            ApiError::internal("a trade's amounts are out of range")
        })?;
        if t.buyer == who.participant {
            pending = pending.saturating_sub(cash.buyer_pays.0);
        }
        if t.seller == who.participant {
            pending = pending.saturating_add(cash.seller_receives.0);
        }
    }
    let on_chain = match &state.onchain {
        None => None,
        Some(c) => Some(
            c.balance_of(address)
                .await
                .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "chain_unavailable", e))?
                .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
        ),
    };
    Ok(BalanceView {
        account: address.to_string(),
        settled,
        batches,
        pending,
        on_chain,
    })
}
