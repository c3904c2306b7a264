//! Turning energy × price into money so that every batch sums to exactly zero.
//!
//! The rule (ARCHITECTURE.md): `money = wh * price / 1000`, computed exactly
//! in `i128`; the **buyer pays rounded up**, the **seller receives rounded
//! down**, the grid operator receives its fee rounded down, and whatever is
//! left (always 0, 1 or 2 micro-units per trade) goes to the community fee
//! account. Rounding is toward −∞ / +∞ (not toward zero), so the rule holds
//! for negative prices too and the remainder is never negative.

use serde::{Deserialize, Serialize};

use crate::ids::ParticipantId;
use crate::units::{Micro, MicroPerKwh, UnitError, Wh};

/// An account money can be posted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Account {
    /// A market participant (home, trader).
    Participant(ParticipantId),
    /// The community fee account that collects rounding remainders.
    CommunityFee,
    /// The grid operator, paid the network fees.
    GridOperator,
    /// The utility, counterparty for imbalance.
    Utility,
}

/// The cash legs of one trade. `buyer_pays == seller_receives + grid_fee + community_fee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeCash {
    /// What the buyer is debited (energy at the trade price plus the path's grid fee), rounded up.
    pub buyer_pays: Micro,
    /// What the seller is credited (energy at the trade price), rounded down.
    pub seller_receives: Micro,
    /// What the grid operator is credited (energy at the path fee), rounded down.
    pub grid_fee: Micro,
    /// The rounding remainder, credited to the community fee account.
    pub community_fee: Micro,
}

fn floor_div(n: i128, d: i128) -> i128 {
    n.div_euclid(d)
}

fn ceil_div(n: i128, d: i128) -> i128 {
    -(-n).div_euclid(d)
}

fn to_micro(v: i128) -> Result<Micro, UnitError> {
    i64::try_from(v)
        .map(Micro)
        .map_err(|_| UnitError::Overflow { unit: Micro::UNIT })
}

/// The exact value of `energy` at `price`, rounded down (toward −∞).
pub fn value_floor(energy: Wh, price: MicroPerKwh) -> Result<Micro, UnitError> {
    to_micro(floor_div(i128::from(energy.0) * i128::from(price.0), 1000))
}

/// The exact value of `energy` at `price`, rounded up (toward +∞).
pub fn value_ceil(energy: Wh, price: MicroPerKwh) -> Result<Micro, UnitError> {
    to_micro(ceil_div(i128::from(energy.0) * i128::from(price.0), 1000))
}

/// The cash legs of a trade of `energy` at `price` whose path costs `grid_fee` per kWh.
pub fn trade_cash(energy: Wh, price: MicroPerKwh, grid_fee: MicroPerKwh) -> Result<TradeCash, UnitError> {
    let e = i128::from(energy.0);
    let gross = e * (i128::from(price.0) + i128::from(grid_fee.0));
    let buyer = ceil_div(gross, 1000);
    let seller = floor_div(e * i128::from(price.0), 1000);
    let grid = floor_div(e * i128::from(grid_fee.0), 1000);
    Ok(TradeCash {
        buyer_pays: to_micro(buyer)?,
        seller_receives: to_micro(seller)?,
        grid_fee: to_micro(grid)?,
        community_fee: to_micro(buyer - seller - grid)?,
    })
}

/// One movement of money: positive credits the account, negative debits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// The account moved.
    pub account: Account,
    /// The signed amount.
    pub amount: Micro,
}

impl TradeCash {
    /// The four postings of this trade (they sum to zero).
    pub fn postings(&self, buyer: ParticipantId, seller: ParticipantId) -> [Posting; 4] {
        [
            Posting {
                account: Account::Participant(buyer),
                amount: -self.buyer_pays,
            },
            Posting {
                account: Account::Participant(seller),
                amount: self.seller_receives,
            },
            Posting {
                account: Account::GridOperator,
                amount: self.grid_fee,
            },
            Posting {
                account: Account::CommunityFee,
                amount: self.community_fee,
            },
        ]
    }
}

/// Sum of postings in `i128`, so a check for zero can never overflow.
pub fn postings_sum<'a>(postings: impl IntoIterator<Item = &'a Posting>) -> i128 {
    postings.into_iter().map(|p| i128::from(p.amount.0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn example_rounds_buyer_up_seller_down() {
        // 333 Wh at 0.123457 €/kWh = 41.111181 µ... exactly 41111.181 µ
        let c = trade_cash(Wh(333), MicroPerKwh(123_457), MicroPerKwh(0)).unwrap();
        assert_eq!(c.buyer_pays, Micro(41_112));
        assert_eq!(c.seller_receives, Micro(41_111));
        assert_eq!(c.community_fee, Micro(1));
        assert_eq!(c.grid_fee, Micro(0));
    }

    #[test]
    fn exact_values_leave_no_remainder() {
        let c = trade_cash(Wh(1000), MicroPerKwh(250_000), MicroPerKwh(20_000)).unwrap();
        assert_eq!(c.buyer_pays, Micro(270_000));
        assert_eq!(c.seller_receives, Micro(250_000));
        assert_eq!(c.grid_fee, Micro(20_000));
        assert_eq!(c.community_fee, Micro(0));
    }

    #[test]
    fn negative_prices_keep_remainder_non_negative() {
        let c = trade_cash(Wh(7), MicroPerKwh(-1_001), MicroPerKwh(0)).unwrap();
        // -7.007 µ: buyer pays -7 (receives 7), seller receives -8 (pays 8), remainder 1
        assert_eq!(c.buyer_pays, Micro(-7));
        assert_eq!(c.seller_receives, Micro(-8));
        assert_eq!(c.community_fee, Micro(1));
    }

    #[test]
    fn overflow_is_an_error() {
        assert!(trade_cash(Wh(i64::MAX), MicroPerKwh(i64::MAX / 2), MicroPerKwh(0)).is_err());
    }

    proptest! {
        #[test]
        fn every_batch_sums_to_zero(trades in prop::collection::vec(
            (1i64..10_000_000, -5_000_000i64..5_000_000, 0i64..500_000, 0u64..50, 0u64..50), 0..200)
        ) {
            let mut batch = Vec::new();
            for (wh, price, fee, b, s) in trades {
                let cash = trade_cash(Wh(wh), MicroPerKwh(price), MicroPerKwh(fee)).unwrap();
                prop_assert!((0..=2).contains(&cash.community_fee.0), "remainder {}", cash.community_fee.0);
                let exact = i128::from(wh) * i128::from(price);
                // seller never gets more than the exact value, buyer never pays less
                prop_assert!(i128::from(cash.seller_receives.0) * 1000 <= exact);
                prop_assert!(i128::from(cash.buyer_pays.0) * 1000 >= exact + i128::from(wh) * i128::from(fee));
                batch.extend(cash.postings(ParticipantId(b), ParticipantId(s)));
            }
            prop_assert_eq!(postings_sum(&batch), 0);
        }
    }
}
