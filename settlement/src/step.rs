//! The settlement step the market service runs on a timer: every delivery interval whose metering
//! window has closed and that has unsettled trades becomes one batch — its trades' cash legs and
//! the traders' positions netted to one delta per account, the trades' Merkle root — stored, then
//! settled on chain through the crash-safe [`TxQueue`]. Batches left unfinished by a crash or a
//! chain outage are taken up first, so batch ids stay sequential and nothing is settled twice.
//!
//! ```text
//!  trades (batch_id NULL, interval ended + metering window) ─┬▶ BatchBuilder ─▶ NettedBatch
//!  estimated positions whose readings have arrived (true-ups) ─┘
//!      ─▶ account indices (registered on the vault when new) ─▶ settlement_batches + batch_deltas
//!         (+ trades.batch_id, positions, true-ups: one transaction) ─▶ TxQueue::settle ─▶ confirmed | parked
//! ```
//!
//! **Accounts.** A participant settles to its own `evm_address`, or else to the custodial account
//! the service holds for it (`participants.custody_address`, derived from the service's custody
//! seed: `gridshare_domain::accounts::Custody`). A participant with neither stops the step with
//! [`Inconsistency::NoAccount`] (the service assigns custodial accounts before it loads them);
//! nothing is ever paid to an address nobody holds a key for. The community, grid-operator and
//! utility accounts are configured addresses.
//!
//! **Readings.** Positions are built for every participant who traded in the interval. Their
//! metered net import comes from their gateways' grid-meter energy counters at the interval's
//! start and end ([`metered_net_import`]); the difference from what they traded is the imbalance,
//! priced at the utility tariff. A participant without readings at both ends is *estimated* with
//! the ledger's late-reading rule: the traded net stands in and no imbalance is charged. Every
//! position is stored with its batch (`positions`).
//!
//! **True-ups.** Gateways store and forward, so readings can arrive after their interval was
//! settled. Once a minute (market time) the step looks at the estimated positions of intervals
//! that started within [`StepConfig::true_up_window_ms`]; for each whose readings are now there,
//! [`crate::ledger::true_up`] prices the difference between the real and the estimated imbalance
//! at the tariff the position was settled at. The correction is posted between the participant
//! and the utility in the next batch — the next due interval's, or one of true-ups only (no
//! trades, an empty trades root) — and recorded on the position in the same transaction. A
//! correction of zero moves no money and is recorded at once. A participant without a gateway
//! keeps the estimate, as does one whose readings do not arrive within the window.

use std::collections::{BTreeSet, HashMap};

use alloy::primitives::{Address, B256};
use gridshare_domain::money::Account;
use gridshare_domain::wire::TradeReport;
use gridshare_domain::{DeliveryInterval, IntervalLength, IntervalRules, Micro, MicroPerKwh, ParticipantId, Timestamp};
use gridshare_storage::Db;
use gridshare_storage::chain_txs::{self, NewBatch, StoredBatch};
use gridshare_storage::positions::{self, NewPosition, TrueUp};
use gridshare_storage::{market, participants};

use crate::chain::Chain;
use crate::contracts::EnergySettlementVault;
use crate::ledger::{BatchBuilder, LedgerError, MeterSource, Position, SettledTrade, Tariff, position, true_up};
use crate::merkle::MerkleTree;
use crate::onchain::{AccountIndex, OnchainBatch, SubmitError, Submitter, Wallet, vault_state};
use crate::queue::{QueueError, TxQueue};

/// Errors of a settlement step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The queue failed (transient errors are already on the batch's status).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Registering accounts or reading the vault failed.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] gridshare_storage::StorageError),
    /// A batch could not be built.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The database and the vault disagree, or the database holds what settlement cannot have
    /// written: an operator must look.
    #[error("inconsistent: {0}")]
    Inconsistent(#[from] Inconsistency),
}

/// What is inconsistent (see [`StepError::Inconsistent`]).
#[derive(Debug, thiserror::Error)]
pub enum Inconsistency {
    /// A participant has neither an address of their own nor a custodial account (assigned by the
    /// service), or trades without being a participant at all.
    #[error("participant {0} has no on-chain account: neither an evm_address nor a custodial account")]
    NoAccount(ParticipantId),
    /// A participant's `evm_address` (or custodial address) is not an address.
    #[error("participant {participant} has an invalid account address {address:?}: {source}")]
    ParticipantAddress {
        /// The participant.
        participant: ParticipantId,
        /// The stored text.
        address: String,
        /// Why it is not an address.
        #[source]
        source: alloy::hex::FromHexError,
    },
    /// A stored position's interval is not a delivery interval.
    #[error("stored position of participant {participant} at {interval_start}: {source}")]
    PositionInterval {
        /// The participant.
        participant: ParticipantId,
        /// Its interval start, ms.
        interval_start: i64,
        /// Why it is not an interval.
        #[source]
        source: gridshare_domain::interval::TimeError,
    },
    /// A settled trade's stored on-chain form is not the JSON settlement writes.
    #[error("stored on-chain trade: {0}")]
    OnchainTrade(#[source] serde_json::Error),
    /// An address in a settled trade's stored on-chain form is not an address.
    #[error("stored address {address:?}: {source}")]
    TradeAddress {
        /// The stored text.
        address: String,
        /// Why it is not an address.
        #[source]
        source: alloy::hex::FromHexError,
    },
    /// A settled trade's stored Merkle leaf is not a 32-byte hash.
    #[error("stored leaf {leaf:?}: {source}")]
    Leaf {
        /// The stored text.
        leaf: String,
        /// Why it is not a hash.
        #[source]
        source: alloy::hex::FromHexError,
    },
    /// A stored batch's delta names an account that is not a vault account index.
    #[error("stored batch {batch_id}: account {account:?}: {source}")]
    BatchAccount {
        /// The batch.
        batch_id: u64,
        /// The stored account.
        account: String,
        /// Why it is not an index.
        #[source]
        source: std::num::ParseIntError,
    },
    /// A stored batch's trades root is not a 32-byte hash.
    #[error("stored batch {batch_id}: root {root:?}: {source}")]
    BatchRoot {
        /// The batch.
        batch_id: u64,
        /// The stored root.
        root: String,
        /// Why it is not a hash.
        #[source]
        source: alloy::hex::FromHexError,
    },
    /// An interval's trades net to nothing (every trade moves cash, so this is a bug).
    #[error("the {trades} trades of the interval starting at {interval_start} move no money")]
    TradesMoveNoMoney {
        /// How many trades.
        trades: usize,
        /// The interval's start, ms.
        interval_start: i64,
    },
    /// An account with a delta has no vault index after registering.
    #[error("{account:?} ({address}) is not registered on the vault")]
    NotRegistered {
        /// The ledger account.
        account: Account,
        /// Its address.
        address: Address,
    },
    /// The next batch here does not follow the vault's last settled one.
    #[error(
        "the next batch here is {next_batch} but the vault has settled up to {vault_last}; is another settler \
         using this vault, or was the database restored from an old backup?"
    )]
    BatchOutOfStep {
        /// The batch id this database would use next.
        next_batch: u64,
        /// The vault's last settled batch.
        vault_last: u64,
    },
}

/// Where each ledger account settles on chain.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// The community account (rounding remainders).
    pub community: Address,
    /// The grid operator (network fees).
    pub grid_operator: Address,
    /// The utility (imbalance).
    pub utility: Address,
    participants: HashMap<ParticipantId, Address>,
}

impl Accounts {
    /// The configured system accounts and every participant's address from the database.
    pub async fn load(
        db: &Db,
        community: Address,
        grid_operator: Address,
        utility: Address,
    ) -> Result<Self, StepError> {
        let mut map = HashMap::new();
        for p in participants::list(db).await? {
            map.insert(p.id, Self::participant_address(&p)?);
        }
        Ok(Self {
            community,
            grid_operator,
            utility,
            participants: map,
        })
    }

    /// The address of a participant: its own `evm_address`, else its custodial account.
    pub fn participant_address(p: &participants::Participant) -> Result<Address, Inconsistency> {
        let a = p.account().ok_or(Inconsistency::NoAccount(p.id))?;
        a.parse().map_err(|source| Inconsistency::ParticipantAddress {
            participant: p.id,
            address: a.to_owned(),
            source,
        })
    }

    /// The address of `account`.
    pub fn of(&self, account: &Account) -> Result<Address, Inconsistency> {
        Ok(match account {
            Account::Participant(p) => *self.participants.get(p).ok_or(Inconsistency::NoAccount(*p))?,
            Account::CommunityFee => self.community,
            Account::GridOperator => self.grid_operator,
            Account::Utility => self.utility,
        })
    }
}

/// Settings of the step.
#[derive(Debug, Clone, Copy)]
pub struct StepConfig {
    /// The utility's tariff for imbalance.
    pub tariff: Tariff,
    /// Interval rules (the metering window decides when an interval is due).
    pub rules: IntervalRules,
    /// Most accounts per chunk transaction.
    pub max_accounts: usize,
    /// Confirmation depth.
    pub confirmations: u64,
    /// How long after an interval started its estimated positions are still trued up when their
    /// readings arrive, ms; after that the estimate stands.
    pub true_up_window_ms: i64,
}

/// How often the step looks for late readings of estimated positions (market time), ms.
pub const TRUE_UP_SCAN_MS: i64 = 60_000;
/// Most estimated positions looked at in one scan; the next scan goes on from there, so a week of
/// an offline home's estimates does not keep newer ones from being looked at.
const TRUE_UP_SCAN_LIMIT: u32 = 2_000;

/// The delivery interval of a stored position.
fn stored_interval(p: &NewPosition) -> Result<DeliveryInterval, StepError> {
    let bad = |source| Inconsistency::PositionInterval {
        participant: p.participant,
        interval_start: p.interval_start.0,
        source,
    };
    let length = IntervalLength::from_minutes((p.interval_end.0 - p.interval_start.0) / 60_000).map_err(bad)?;
    Ok(DeliveryInterval::new(p.interval_start, length).map_err(bad)?)
}

/// The ledger's form of a stored position.
fn ledger_position(p: &NewPosition) -> Position {
    Position {
        participant: p.participant,
        interval_start: p.interval_start,
        bought: p.bought,
        sold: p.sold,
        metered_net_import: p.metered_net_import,
        source: if p.estimated {
            MeterSource::Estimated
        } else {
            MeterSource::Measured
        },
        imbalance: p.imbalance,
        imbalance_cash: p.imbalance_cash,
    }
}

/// What a participant's grid meters say of an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metered {
    /// The net import (import − export) over the interval.
    Net(gridshare_domain::Wh),
    /// No gateway, or one of them lacks a reading at either end.
    Missing,
    /// A counter of this gateway's went backwards over the interval (a replaced or reset meter).
    WentBackwards(gridshare_domain::GatewayId),
}

/// What the grid meters of a participant's `gateways` say of `interval`, from their energy
/// counters read within [`meter_tolerance_ms`] of its start and of its end.
pub async fn metered(
    db: &Db,
    gateways: &[gridshare_domain::GatewayId],
    interval: gridshare_domain::DeliveryInterval,
) -> Result<Metered, StepError> {
    use gridshare_storage::readings::grid_counters_near;
    if gateways.is_empty() {
        return Ok(Metered::Missing);
    }
    let tolerance = meter_tolerance_ms(interval);
    let mut net = 0i64;
    for g in gateways {
        let (Some((_, in0, out0)), Some((_, in1, out1))) = (
            grid_counters_near(db, *g, interval.start(), tolerance).await?,
            grid_counters_near(db, *g, interval.end(), tolerance).await?,
        ) else {
            return Ok(Metered::Missing);
        };
        let (imported, exported) = (in1.0 - in0.0, out1.0 - out0.0);
        if imported < 0 || exported < 0 {
            return Ok(Metered::WentBackwards(*g));
        }
        net += imported - exported;
    }
    Ok(Metered::Net(gridshare_domain::Wh(net)))
}

/// The metered net import of a participant's gateways over `interval` ([`metered`]), `None`
/// (the position is then estimated) when a reading is missing or a counter went backwards; the
/// latter is logged.
pub async fn metered_net_import(
    db: &Db,
    gateways: &[gridshare_domain::GatewayId],
    interval: gridshare_domain::DeliveryInterval,
) -> Result<Option<gridshare_domain::Wh>, StepError> {
    Ok(match metered(db, gateways, interval).await? {
        Metered::Net(wh) => Some(wh),
        Metered::Missing => None,
        Metered::WentBackwards(g) => {
            tracing::warn!(gateway = %g, %interval, "a grid meter counter went backwards; position estimated");
            None
        }
    })
}

/// How far from an interval's start or end a counter reading may be to count as read there: a
/// fifteenth of the interval (60 s for 15 minutes).
pub fn meter_tolerance_ms(interval: gridshare_domain::DeliveryInterval) -> i64 {
    (interval.end().0 - interval.start().0) / 15
}

/// The vault's `Trade` (a Merkle leaf) of a trade.
pub fn leaf_trade(t: &TradeReport, accounts: &Accounts) -> Result<EnergySettlementVault::Trade, StepError> {
    let cash = settled(t).cash().map_err(LedgerError::from)?;
    Ok(EnergySettlementVault::Trade {
        tradeId: t.trade_id.0,
        intervalStartMs: t.interval.start().0 as u64,
        buyer: accounts.of(&Account::Participant(t.buyer))?,
        seller: accounts.of(&Account::Participant(t.seller))?,
        energyWh: t.quantity.0 as u64,
        priceMicroPerKwh: t.price.0,
        gridFeeMicroPerKwh: t.grid_fee.0 as u64,
        buyerPaysMicro: i128::from(cash.buyer_pays.0),
        sellerReceivesMicro: i128::from(cash.seller_receives.0),
    })
}

/// A settled trade as the vault committed to it: the `Trade` struct of its Merkle leaf (what
/// `verifyTrade` takes) and the leaf hash. Stored with the trade as JSON, so a proof served later
/// matches the batch even if a participant's address changes afterwards.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OnchainTrade {
    /// Trade id.
    pub trade_id: u64,
    /// Delivery interval start, ms.
    pub interval_start_ms: u64,
    /// Buyer's address.
    pub buyer: String,
    /// Seller's address.
    pub seller: String,
    /// Energy, Wh.
    pub energy_wh: u64,
    /// Price, µ/kWh.
    pub price_micro_per_kwh: i64,
    /// Grid fee, µ/kWh.
    pub grid_fee_micro_per_kwh: u64,
    /// What the buyer paid, µ.
    pub buyer_pays_micro: i64,
    /// What the seller received, µ.
    pub seller_receives_micro: i64,
    /// `keccak256(abi.encode(trade))`.
    pub leaf: String,
}

impl From<&EnergySettlementVault::Trade> for OnchainTrade {
    fn from(t: &EnergySettlementVault::Trade) -> Self {
        Self {
            trade_id: t.tradeId,
            interval_start_ms: t.intervalStartMs,
            buyer: t.buyer.to_string(),
            seller: t.seller.to_string(),
            energy_wh: t.energyWh,
            price_micro_per_kwh: t.priceMicroPerKwh,
            grid_fee_micro_per_kwh: t.gridFeeMicroPerKwh,
            buyer_pays_micro: t.buyerPaysMicro as i64,
            seller_receives_micro: t.sellerReceivesMicro as i64,
            leaf: crate::merkle::leaf(t).to_string(),
        }
    }
}

impl OnchainTrade {
    /// As stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// From storage.
    pub fn from_json(s: &str) -> Result<Self, StepError> {
        Ok(serde_json::from_str(s).map_err(Inconsistency::OnchainTrade)?)
    }

    /// The vault's `Trade` struct.
    pub fn to_trade(&self) -> Result<EnergySettlementVault::Trade, StepError> {
        let addr = |s: &str| {
            s.parse::<Address>().map_err(|source| Inconsistency::TradeAddress {
                address: s.to_owned(),
                source,
            })
        };
        Ok(EnergySettlementVault::Trade {
            tradeId: self.trade_id,
            intervalStartMs: self.interval_start_ms,
            buyer: addr(&self.buyer)?,
            seller: addr(&self.seller)?,
            energyWh: self.energy_wh,
            priceMicroPerKwh: self.price_micro_per_kwh,
            gridFeeMicroPerKwh: self.grid_fee_micro_per_kwh,
            buyerPaysMicro: i128::from(self.buyer_pays_micro),
            sellerReceivesMicro: i128::from(self.seller_receives_micro),
        })
    }
}

/// The Merkle proof of trade `trade_id` in its batch: the stored on-chain trades of the batch
/// (by trade id) rebuilt into the tree. None when the trade is not in those.
pub fn proof_of(batch: &[(u64, String)], trade_id: u64) -> Result<Option<(OnchainTrade, Vec<B256>, B256)>, StepError> {
    let trades = batch
        .iter()
        .map(|(_, j)| OnchainTrade::from_json(j))
        .collect::<Result<Vec<_>, _>>()?;
    let leaves = trades
        .iter()
        .map(|t| {
            t.leaf.parse::<B256>().map_err(|source| Inconsistency::Leaf {
                leaf: t.leaf.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Some(i) = batch.iter().position(|(id, _)| *id == trade_id) else {
        return Ok(None);
    };
    let tree = MerkleTree::new(leaves);
    Ok(tree.proof(i).map(|p| (trades[i].clone(), p, tree.root())))
}

fn settled(t: &TradeReport) -> SettledTrade {
    SettledTrade {
        trade_id: t.trade_id,
        interval_start: t.interval.start(),
        buyer: t.buyer,
        seller: t.seller,
        quantity: t.quantity,
        price: t.price,
        grid_fee: t.grid_fee,
    }
}

/// The step over one chain, database and vault.
#[derive(Debug)]
pub struct SettlementStep<'a, C> {
    chain: &'a C,
    db: &'a Db,
    wallet: Wallet,
    vault: Address,
    cfg: StepConfig,
    /// Account addresses (reload after participants change).
    pub accounts: Accounts,
    index: AccountIndex,
    /// Market time of the next look for late readings.
    next_true_up_scan: i64,
    /// Where the next look goes on from, when the last one stopped at its limit.
    true_up_cursor: Option<(Timestamp, ParticipantId)>,
}

impl<'a, C: Chain> SettlementStep<'a, C> {
    /// A step settling with `wallet` (which must hold the vault's settler role).
    pub async fn new(
        chain: &'a C,
        db: &'a Db,
        wallet: Wallet,
        vault: Address,
        cfg: StepConfig,
        accounts: Accounts,
    ) -> Result<Self, StepError> {
        let index = AccountIndex::load(chain, vault).await?;
        Ok(Self {
            chain,
            db,
            wallet,
            vault,
            cfg,
            accounts,
            index,
            next_true_up_scan: i64::MIN,
            true_up_cursor: None,
        })
    }

    fn queue(&self) -> TxQueue<'a, C> {
        let mut q = TxQueue::new(self.chain, self.db, self.wallet.clone(), self.vault);
        q.confirmations = self.cfg.confirmations;
        q
    }

    fn onchain(b: &StoredBatch) -> Result<OnchainBatch, StepError> {
        let mut deltas = b
            .deltas
            .iter()
            .map(|(a, d)| {
                let index = a.parse::<u32>().map_err(|source| Inconsistency::BatchAccount {
                    batch_id: b.batch_id,
                    account: a.clone(),
                    source,
                })?;
                Ok((index, i128::from(*d)))
            })
            .collect::<Result<Vec<_>, StepError>>()?;
        deltas.sort_unstable();
        let trades_root = b
            .trades_root
            .parse::<B256>()
            .map_err(|source| Inconsistency::BatchRoot {
                batch_id: b.batch_id,
                root: b.trades_root.clone(),
                source,
            })?;
        Ok(OnchainBatch {
            batch_id: b.batch_id,
            trades_root,
            deltas,
        })
    }

    /// Settles what is due at `now`: unfinished batches first, then each interval whose metering
    /// window has closed, with the true-ups of estimated positions whose readings have arrived
    /// since (looked for at most once a minute; in a batch of their own when no interval is due).
    /// Returns the ids of the batches confirmed.
    pub async fn run(&mut self, now: Timestamp) -> Result<Vec<u64>, StepError> {
        let mut confirmed = Vec::new();
        let mut unfinished = chain_txs::batches(self.db, None, 10_000, true).await?;
        unfinished.reverse(); // oldest first
        for b in &unfinished {
            let batch = Self::onchain(b)?;
            self.queue().settle(&batch, self.cfg.max_accounts).await?;
            confirmed.push(b.batch_id);
        }
        let mut true_ups = Vec::new();
        if now.0 >= self.next_true_up_scan {
            true_ups = self.due_true_ups(now).await?;
            self.next_true_up_scan = now.0 + TRUE_UP_SCAN_MS;
        }
        let window = self.cfg.rules.metering_window_minutes * 60_000;
        for interval in market::unsettled_intervals(self.db).await? {
            if interval.end().0 + window > now.0 {
                break;
            }
            let trades = market::unsettled_trades(self.db, interval).await?;
            if trades.is_empty() {
                continue;
            }
            let taken = std::mem::take(&mut true_ups);
            if let Some(id) = self.settle(Some((interval, trades)), taken).await? {
                confirmed.push(id);
            }
        }
        if !true_ups.is_empty()
            && let Some(id) = self.settle(None, true_ups).await?
        {
            confirmed.push(id);
        }
        Ok(confirmed)
    }

    /// The true-ups of estimated positions whose readings have arrived, of intervals that started
    /// within the true-up window. Those that move no money are recorded at once; the rest are
    /// returned for the next batch.
    async fn due_true_ups(&mut self, now: Timestamp) -> Result<Vec<(TrueUp, DeliveryInterval)>, StepError> {
        let since = Timestamp(now.0.saturating_sub(self.cfg.true_up_window_ms));
        let waiting = positions::awaiting_readings(self.db, since, self.true_up_cursor, TRUE_UP_SCAN_LIMIT).await?;
        // the next scan goes on after the last one looked at, or from the start again
        self.true_up_cursor = if waiting.len() < TRUE_UP_SCAN_LIMIT as usize {
            None
        } else {
            waiting
                .last()
                .map(|p| (p.settled.interval_start, p.settled.participant))
        };
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        let gateways = gridshare_storage::gateways::active(self.db).await?;
        let (mut due, mut zero) = (Vec::new(), Vec::new());
        for p in waiting {
            let p = p.settled;
            let own: Vec<_> = gateways
                .iter()
                .filter(|g| g.owner == p.participant)
                .map(|g| g.id)
                .collect();
            if own.is_empty() {
                continue; // its gateway was revoked since the query: the estimate stands
            }
            let interval = stored_interval(&p)?;
            // looked at again at every step until the window closes: a counter that went
            // backwards was said when the position was settled, not once a step since
            let Metered::Net(real) = metered(self.db, &own, interval).await? else {
                continue;
            };
            let tariff = Tariff {
                import: p.import_tariff,
                export: p.export_tariff,
            };
            let cash = true_up(&ledger_position(&p), real, tariff)?.unwrap_or(Micro(0));
            let t = TrueUp {
                interval_start: p.interval_start,
                participant: p.participant,
                real_net_import: real,
                cash,
            };
            tracing::info!(participant = %p.participant, %interval, estimated_wh = p.metered_net_import.0,
                metered_wh = real.0, correction_micro = cash.0, "late readings arrived: position trued up");
            if cash == Micro(0) {
                zero.push(t);
            } else {
                due.push((t, interval));
            }
        }
        if !zero.is_empty() {
            positions::record_unposted_true_ups(self.db, &zero, Timestamp(crate::queue::now_ms())).await?;
        }
        Ok(due)
    }

    /// The utility tariff imbalance in an interval starting at `start` is priced at: the
    /// governed one in force then (issue 22: the newest version of the parameters the service had
    /// seen by then), the configured one until the community first changes a parameter. A
    /// position keeps the tariff it was settled at, for its true-up too.
    async fn tariff_at(&self, start: Timestamp) -> Result<Tariff, StepError> {
        let Some(v) = gridshare_storage::parameters::in_force(self.db, start).await? else {
            return Ok(self.cfg.tariff);
        };
        if v.version == 0 {
            return Ok(self.cfg.tariff);
        }
        let price = |key: &str, configured: MicroPerKwh| -> Result<MicroPerKwh, StepError> {
            Ok(v.value(key)?
                .and_then(|x| i64::try_from(x).ok())
                .map_or(configured, MicroPerKwh))
        };
        Ok(Tariff {
            import: price("importTariff", self.cfg.tariff.import)?,
            export: price("exportTariff", self.cfg.tariff.export)?,
        })
    }

    /// Builds, stores and settles one batch: an interval's trades and positions (when given) and
    /// `true_ups` of earlier intervals. `None` when there was nothing to post (true-ups that
    /// cancel out are then recorded without a batch).
    async fn settle(
        &mut self,
        interval: Option<(DeliveryInterval, Vec<TradeReport>)>,
        due: Vec<(TrueUp, DeliveryInterval)>,
    ) -> Result<Option<u64>, StepError> {
        let (trades, (first_interval_start, last_interval_end)) = match &interval {
            Some((i, trades)) => (trades.as_slice(), (i.start().0, i.end().0)),
            None => (
                &[][..],
                (
                    due.iter().map(|(_, i)| i.start().0).min().unwrap_or_default(),
                    due.iter().map(|(_, i)| i.end().0).max().unwrap_or_default(),
                ),
            ),
        };
        let true_ups: Vec<TrueUp> = due.into_iter().map(|(t, _)| t).collect();
        let settled_trades: Vec<SettledTrade> = trades.iter().map(settled).collect();
        let mut b = BatchBuilder::new();
        let mut traders = BTreeSet::new();
        for t in &settled_trades {
            b.add_trade(t)?;
            traders.insert(t.buyer);
            traders.insert(t.seller);
        }
        let mut new_positions = Vec::with_capacity(traders.len());
        if let Some((interval, _)) = &interval {
            let tariff = self.tariff_at(interval.start()).await?;
            let gateways = gridshare_storage::gateways::active(self.db).await?;
            for p in traders {
                let own: Vec<_> = gateways.iter().filter(|g| g.owner == p).map(|g| g.id).collect();
                let metered = metered_net_import(self.db, &own, *interval).await?;
                let pos = position(p, interval.start(), &settled_trades, metered, None, tariff)?;
                b.add_position(&pos);
                new_positions.push(NewPosition {
                    interval_start: interval.start(),
                    interval_end: interval.end(),
                    participant: p,
                    bought: pos.bought,
                    sold: pos.sold,
                    metered_net_import: pos.metered_net_import,
                    estimated: pos.source == MeterSource::Estimated,
                    imbalance: pos.imbalance,
                    imbalance_cash: pos.imbalance_cash,
                    import_tariff: tariff.import,
                    export_tariff: tariff.export,
                });
            }
            let estimated = new_positions.iter().filter(|p| p.estimated).count();
            if estimated > 0 {
                tracing::info!(%interval, measured = new_positions.len() - estimated, estimated,
                    "positions without meter readings are settled as traded, to be trued up when they arrive");
            }
        }
        for t in &true_ups {
            b.add_utility_cash(t.participant, t.cash);
        }
        let netted = b.finish()?;
        if netted.deltas.is_empty() {
            if !trades.is_empty() {
                return Err(Inconsistency::TradesMoveNoMoney {
                    trades: trades.len(),
                    interval_start: first_interval_start,
                }
                .into());
            }
            positions::record_unposted_true_ups(self.db, &true_ups, Timestamp(crate::queue::now_ms())).await?;
            return Ok(None);
        }

        let addresses = netted
            .deltas
            .keys()
            .map(|a| self.accounts.of(a))
            .collect::<Result<Vec<Address>, _>>()?;
        if addresses.iter().any(|a| self.index.get(a).is_none()) {
            let mut s = Submitter::new(self.chain, self.wallet.clone()).await?;
            self.index.ensure(&mut s, self.vault, addresses.iter().copied()).await?;
        }
        let mut deltas = Vec::with_capacity(netted.deltas.len());
        for (account, d) in &netted.deltas {
            let addr = self.accounts.of(account)?;
            let i = self.index.get(&addr).ok_or(Inconsistency::NotRegistered {
                account: *account,
                address: addr,
            })?;
            deltas.push((i, i128::from(d.0)));
            chain_txs::save_account(self.db, i, &addr.to_string()).await?;
        }
        deltas.sort_unstable();
        let leaves = trades
            .iter()
            .map(|t| leaf_trade(t, &self.accounts))
            .collect::<Result<Vec<_>, _>>()?;
        let root = MerkleTree::from_trades(&leaves).root();

        let batch_id = chain_txs::max_batch_id(self.db).await?.map_or(1, |n| n + 1);
        let st = vault_state(self.chain, self.vault).await?;
        if st.last_batch_id + 1 != batch_id {
            return Err(Inconsistency::BatchOutOfStep {
                next_batch: batch_id,
                vault_last: st.last_batch_id,
            }
            .into());
        }
        let true_up_count = true_ups.len();
        chain_txs::insert_batch(
            self.db,
            &NewBatch {
                batch_id,
                first_interval_start,
                last_interval_end,
                prev_state_hash: st.state_hash.to_string(),
                trades_root: root.to_string(),
                trade_count: trades.len() as u64,
                deltas: deltas.iter().map(|(i, d)| (i.to_string(), *d as i64)).collect(),
                trades: trades
                    .iter()
                    .zip(&leaves)
                    .map(|(t, l)| (t.trade_id.0, OnchainTrade::from(l).to_json()))
                    .collect(),
                positions: new_positions,
                true_ups,
            },
            crate::queue::now_ms(),
        )
        .await?;
        tracing::info!(
            batch_id,
            first_interval_start,
            trades = trades.len(),
            true_ups = true_up_count,
            accounts = deltas.len(),
            "settlement batch built"
        );
        let batch = OnchainBatch {
            batch_id,
            trades_root: root,
            deltas,
        };
        self.queue().settle(&batch, self.cfg.max_accounts).await?;
        Ok(Some(batch_id))
    }
}
