//! Positions and netting: from trades and meter readings to one delta per account.
//!
//! **Trades.** Each trade posts its four cash legs (domain crate, `money::trade_cash`): the
//! buyer pays price + path fee rounded up, the seller receives the price rounded down, the grid
//! operator receives the fee rounded down, the 0–2 µ remainder goes to the community account.
//!
//! **Positions.** For each participant and delivery interval, the energy they traded
//! (`bought − sold`) is compared with what their meter measured (`net import = import − export`).
//! The difference is the *imbalance*, settled with the utility at its tariff:
//! - metered net import above the traded net: the participant drew the extra from the utility and
//!   pays it at the **import** tariff, rounded up;
//! - metered net import below the traded net (they exported more, or used less than they bought):
//!   the utility buys the difference at the **export** tariff, rounded down.
//!
//! **Late readings.** A participant with no reading for the interval when its batch is built is
//! settled on an *estimate*: the net import of their last interval with a real reading, or, with
//! none, their traded net (zero imbalance). The position is marked estimated. When the real reading
//! arrives, [`true_up`] computes the difference between the real and the estimated imbalance
//! charge, and it is posted in the next batch. Nothing is ever re-settled in place.
//!
//! **Netting.** [`BatchBuilder`] adds all postings of a batch into one signed delta per
//! account; the batch is refused unless the deltas sum to exactly zero.

use std::collections::BTreeMap;

use gridshare_domain::ids::{ParticipantId, TradeId};
use gridshare_domain::interval::Timestamp;
use gridshare_domain::money::{self, Account, Posting};
use gridshare_domain::units::{Micro, MicroPerKwh, UnitError, Wh};
use serde::{Deserialize, Serialize};

/// A trade as settlement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledTrade {
    /// The engine's trade id.
    pub trade_id: TradeId,
    /// Start of the delivery interval.
    pub interval_start: Timestamp,
    /// Who bought.
    pub buyer: ParticipantId,
    /// Who sold.
    pub seller: ParticipantId,
    /// Energy traded.
    pub quantity: Wh,
    /// Trade price per kWh (what the seller receives).
    pub price: MicroPerKwh,
    /// Grid fee per kWh along the path (paid by the buyer on top).
    pub grid_fee: MicroPerKwh,
}

impl SettledTrade {
    /// The trade's cash legs.
    pub fn cash(&self) -> Result<money::TradeCash, UnitError> {
        money::trade_cash(self.quantity, self.price, self.grid_fee)
    }
}

/// The utility's tariff for imbalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tariff {
    /// Price a participant pays per kWh drawn from the utility.
    pub import: MicroPerKwh,
    /// Price the utility pays per kWh it takes.
    pub export: MicroPerKwh,
}

/// Where a position's metered energy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterSource {
    /// A real reading of the interval.
    Measured,
    /// Estimated because the reading was late (see the module notes).
    Estimated,
}

/// One participant's position in one delivery interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The participant.
    pub participant: ParticipantId,
    /// Start of the delivery interval.
    pub interval_start: Timestamp,
    /// Energy bought in the market.
    pub bought: Wh,
    /// Energy sold in the market.
    pub sold: Wh,
    /// Metered net import (import − export); negative for a net exporter.
    pub metered_net_import: Wh,
    /// Whether the metered figure is real or estimated.
    pub source: MeterSource,
    /// `metered_net_import − (bought − sold)`: positive = drawn from the utility.
    pub imbalance: Wh,
    /// The participant's cash for the imbalance: negative = they pay the utility.
    pub imbalance_cash: Micro,
}

/// Errors of position and batch building.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LedgerError {
    /// An amount did not fit its unit.
    #[error("amount out of range: {0}")]
    Unit(#[from] UnitError),
    /// The batch's deltas did not sum to zero (a bug: every posting source is balanced).
    #[error("batch deltas sum to {0} µ, not zero")]
    Unbalanced(i128),
    /// An account's net delta did not fit in 64 bits.
    #[error("net delta of {0:?} out of range")]
    DeltaOverflow(Account),
}

/// The participant's cash for `imbalance` Wh at `tariff`: drawing pays the import tariff rounded
/// up; feeding in is paid the export tariff rounded down.
pub fn imbalance_cash(imbalance: Wh, tariff: Tariff) -> Result<Micro, UnitError> {
    if imbalance.0 > 0 {
        money::value_ceil(imbalance, tariff.import)?.checked_neg()
    } else {
        money::value_floor(imbalance.checked_neg()?, tariff.export)
    }
}

/// Builds a participant's position from their trades of the interval and their metered net
/// import (`None` when the reading is late: then `last_good` — the net import of their most recent
/// interval with a real reading — or, without one, the traded net stands in, see the module notes).
pub fn position(
    participant: ParticipantId,
    interval_start: Timestamp,
    trades: &[SettledTrade],
    metered_net_import: Option<Wh>,
    last_good: Option<Wh>,
    tariff: Tariff,
) -> Result<Position, LedgerError> {
    let mut bought = Wh::ZERO;
    let mut sold = Wh::ZERO;
    for t in trades.iter().filter(|t| t.interval_start == interval_start) {
        if t.buyer == participant {
            bought = bought.checked_add(t.quantity)?;
        }
        if t.seller == participant {
            sold = sold.checked_add(t.quantity)?;
        }
    }
    let traded_net = bought.checked_sub(sold)?;
    let (metered, source) = match metered_net_import {
        Some(m) => (m, MeterSource::Measured),
        None => (last_good.unwrap_or(traded_net), MeterSource::Estimated),
    };
    let imbalance = metered.checked_sub(traded_net)?;
    Ok(Position {
        participant,
        interval_start,
        bought,
        sold,
        metered_net_import: metered,
        source,
        imbalance,
        imbalance_cash: imbalance_cash(imbalance, tariff)?,
    })
}

/// The correction owed once the real reading of an estimated position arrives: the participant's
/// cash with the real reading minus the cash already settled. Positive = the participant is
/// credited. `None` when nothing changes.
pub fn true_up(estimated: &Position, real_net_import: Wh, tariff: Tariff) -> Result<Option<Micro>, LedgerError> {
    let traded_net = estimated.bought.checked_sub(estimated.sold)?;
    let real = imbalance_cash(real_net_import.checked_sub(traded_net)?, tariff)?;
    let diff = real.checked_sub(estimated.imbalance_cash)?;
    Ok((diff != Micro(0)).then_some(diff))
}

/// One netted batch: a delta per account, summing to zero.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NettedBatch {
    /// Net delta per account (accounts whose postings cancel out are left out).
    pub deltas: BTreeMap<Account, Micro>,
    /// Trades in the batch.
    pub trade_count: usize,
    /// Positions in the batch.
    pub position_count: usize,
}

impl NettedBatch {
    /// The sum of all deltas (zero for every batch [`BatchBuilder::finish`] returns).
    pub fn sum(&self) -> i128 {
        self.deltas.values().map(|m| i128::from(m.0)).sum()
    }
}

/// Adds up the postings of a batch.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    sums: BTreeMap<Account, i128>,
    trade_count: usize,
    position_count: usize,
}

impl BatchBuilder {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    fn post(&mut self, p: Posting) {
        *self.sums.entry(p.account).or_insert(0) += i128::from(p.amount.0);
    }

    /// Adds a trade's four cash legs.
    pub fn add_trade(&mut self, t: &SettledTrade) -> Result<(), LedgerError> {
        for p in t.cash()?.postings(t.buyer, t.seller) {
            self.post(p);
        }
        self.trade_count += 1;
        Ok(())
    }

    /// Adds a position's imbalance against the utility.
    pub fn add_position(&mut self, p: &Position) {
        self.add_utility_cash(p.participant, p.imbalance_cash);
        self.position_count += 1;
    }

    /// Adds a cash movement between a participant and the utility (an imbalance or a true-up):
    /// `amount` is the participant's side.
    pub fn add_utility_cash(&mut self, participant: ParticipantId, amount: Micro) {
        self.post(Posting {
            account: Account::Participant(participant),
            amount,
        });
        self.post(Posting {
            account: Account::Utility,
            amount: Micro(amount.0.wrapping_neg()),
        });
    }

    /// The netted batch; refused unless it sums to zero.
    pub fn finish(self) -> Result<NettedBatch, LedgerError> {
        let total: i128 = self.sums.values().sum();
        if total != 0 {
            return Err(LedgerError::Unbalanced(total));
        }
        let mut deltas = BTreeMap::new();
        for (account, sum) in self.sums {
            if sum != 0 {
                let v = i64::try_from(sum).map_err(|_| LedgerError::DeltaOverflow(account))?;
                deltas.insert(account, Micro(v));
            }
        }
        Ok(NettedBatch {
            deltas,
            trade_count: self.trade_count,
            position_count: self.position_count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TARIFF: Tariff = Tariff {
        import: MicroPerKwh(300_000),
        export: MicroPerKwh(80_000),
    };

    fn trade(id: u64, buyer: u64, seller: u64, wh: i64, price: i64, fee: i64) -> SettledTrade {
        SettledTrade {
            trade_id: TradeId(id),
            interval_start: Timestamp(0),
            buyer: ParticipantId(buyer),
            seller: ParticipantId(seller),
            quantity: Wh(wh),
            price: MicroPerKwh(price),
            grid_fee: MicroPerKwh(fee),
        }
    }

    #[test]
    fn drawing_more_than_bought_pays_import_tariff_rounded_up() {
        let trades = [trade(1, 7, 8, 500, 150_000, 10_000)];
        let p = position(ParticipantId(7), Timestamp(0), &trades, Some(Wh(501)), None, TARIFF).unwrap();
        assert_eq!(p.imbalance, Wh(1));
        // 1 Wh at 0.30/kWh = 300 µ exactly
        assert_eq!(p.imbalance_cash, Micro(-300));
        let q = position(ParticipantId(7), Timestamp(0), &trades, Some(Wh(500)), None, TARIFF).unwrap();
        assert_eq!(q.imbalance_cash, Micro(0));
    }

    #[test]
    fn selling_less_than_exported_is_paid_export_tariff() {
        let trades = [trade(1, 7, 8, 500, 150_000, 0)];
        // the seller exported 800 Wh but sold 500: 300 Wh go to the utility at 0.08
        let p = position(ParticipantId(8), Timestamp(0), &trades, Some(Wh(-800)), None, TARIFF).unwrap();
        assert_eq!(p.imbalance, Wh(-300));
        assert_eq!(p.imbalance_cash, Micro(24_000));
    }

    #[test]
    fn late_reading_is_estimated_then_trued_up() {
        let trades = [trade(1, 7, 8, 500, 150_000, 0)];
        let est = position(ParticipantId(7), Timestamp(0), &trades, None, Some(Wh(700)), TARIFF).unwrap();
        assert_eq!(est.source, MeterSource::Estimated);
        assert_eq!(est.imbalance_cash, Micro(-60_000)); // 200 Wh at 0.30
        // the real reading shows 600 Wh: 100 Wh less was drawn, 30 000 µ back
        assert_eq!(true_up(&est, Wh(600), TARIFF).unwrap(), Some(Micro(30_000)));
        assert_eq!(true_up(&est, Wh(700), TARIFF).unwrap(), None);
        // without any earlier reading the traded net stands in: no imbalance
        let none = position(ParticipantId(7), Timestamp(0), &trades, None, None, TARIFF).unwrap();
        assert_eq!(none.imbalance, Wh(0));
    }

    fn arb_trade() -> impl Strategy<Value = SettledTrade> {
        (
            1u64..1000,
            1u64..6,
            1u64..6,
            1i64..50_000,
            -50_000i64..500_000,
            0i64..60_000,
        )
            .prop_filter("no self trade", |(_, b, s, ..)| b != s)
            .prop_map(|(id, b, s, wh, price, fee)| trade(id, b, s, wh, price, fee))
    }

    proptest! {
        /// Every batch sums to zero, and each account's delta equals the sum of its postings
        /// computed trade by trade.
        #[test]
        fn batches_sum_to_zero_and_match_their_trades(
            trades in proptest::collection::vec(arb_trade(), 0..60),
            meters in proptest::collection::vec(proptest::option::of(-20_000i64..20_000), 6),
        ) {
            let mut b = BatchBuilder::new();
            let mut expected: BTreeMap<Account, i128> = BTreeMap::new();
            for t in &trades {
                b.add_trade(t).unwrap();
                for p in t.cash().unwrap().postings(t.buyer, t.seller) {
                    *expected.entry(p.account).or_insert(0) += i128::from(p.amount.0);
                }
            }
            for (i, m) in meters.iter().enumerate() {
                let who = ParticipantId(i as u64);
                let p = position(who, Timestamp(0), &trades, m.map(Wh), Some(Wh(123)), TARIFF).unwrap();
                b.add_position(&p);
                *expected.entry(Account::Participant(who)).or_insert(0) += i128::from(p.imbalance_cash.0);
                *expected.entry(Account::Utility).or_insert(0) -= i128::from(p.imbalance_cash.0);
            }
            let batch = b.finish().unwrap();
            prop_assert_eq!(batch.sum(), 0);
            expected.retain(|_, v| *v != 0);
            let got: BTreeMap<Account, i128> = batch.deltas.iter().map(|(a, m)| (*a, i128::from(m.0))).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
