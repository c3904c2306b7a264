//! Unit newtypes: energy, power, price and money as integers.
//!
//! Everything inside GridShare is an `i64` in a fixed unit, so the compiler
//! keeps watt-hours apart from watts and money apart from prices. Humans see
//! decimals only at the edges (API, config, database), through the
//! `to_decimal`/`from_decimal` pairs here, which reject values that do not fit
//! instead of rounding silently.

use core::fmt;
use core::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

/// Why a unit conversion or checked operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The result does not fit in an `i64` of the unit.
    #[error("{unit}: value out of range")]
    Overflow {
        /// The unit that overflowed, e.g. `"Wh"`.
        unit: &'static str,
    },
    /// A decimal had more fractional digits than the unit can hold.
    #[error("{unit}: {value} has more than {max_scale} decimal places")]
    TooPrecise {
        /// The unit being converted to.
        unit: &'static str,
        /// The offending value, as given.
        value: Decimal,
        /// The most decimal places the unit accepts.
        max_scale: u32,
    },
}

macro_rules! integer_unit {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// Zero of this unit.
            pub const ZERO: Self = Self(0);
            /// The unit's short name, used in errors and display.
            pub const UNIT: &'static str = $label;

            /// The raw integer value.
            #[inline]
            pub const fn get(self) -> i64 {
                self.0
            }

            /// Addition that reports overflow instead of wrapping.
            #[inline]
            pub fn checked_add(self, rhs: Self) -> Result<Self, UnitError> {
                self.0.checked_add(rhs.0).map(Self).ok_or(UnitError::Overflow { unit: $label })
            }

            /// Subtraction that reports overflow instead of wrapping.
            #[inline]
            pub fn checked_sub(self, rhs: Self) -> Result<Self, UnitError> {
                self.0.checked_sub(rhs.0).map(Self).ok_or(UnitError::Overflow { unit: $label })
            }

            /// Negation that reports overflow (only `i64::MIN` fails).
            #[inline]
            pub fn checked_neg(self) -> Result<Self, UnitError> {
                self.0.checked_neg().map(Self).ok_or(UnitError::Overflow { unit: $label })
            }

            /// Absolute value, saturating at `i64::MAX`.
            #[inline]
            pub const fn abs(self) -> Self {
                Self(self.0.saturating_abs())
            }

            /// True when the value is strictly positive.
            #[inline]
            pub const fn is_positive(self) -> bool {
                self.0 > 0
            }

            /// The smaller of two values.
            #[inline]
            pub fn min(self, other: Self) -> Self {
                if other.0 < self.0 { other } else { self }
            }

            /// The larger of two values.
            #[inline]
            pub fn max(self, other: Self) -> Self {
                if other.0 > self.0 { other } else { self }
            }
        }

        // Plain operators panic on overflow in debug and wrap in release like
        // `i64`; code handling outside input uses the checked forms above.
        impl Add for $name {
            type Output = Self;
            #[inline]
            fn add(self, rhs: Self) -> Self {
                Self(self.0 + rhs.0)
            }
        }
        impl Sub for $name {
            type Output = Self;
            #[inline]
            fn sub(self, rhs: Self) -> Self {
                Self(self.0 - rhs.0)
            }
        }
        impl AddAssign for $name {
            #[inline]
            fn add_assign(&mut self, rhs: Self) {
                self.0 += rhs.0;
            }
        }
        impl SubAssign for $name {
            #[inline]
            fn sub_assign(&mut self, rhs: Self) {
                self.0 -= rhs.0;
            }
        }
        impl Neg for $name {
            type Output = Self;
            #[inline]
            fn neg(self) -> Self {
                Self(-self.0)
            }
        }
        impl core::iter::Sum for $name {
            fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
                iter.fold(Self::ZERO, |a, b| a + b)
            }
        }
    };
}

integer_unit!(
    /// Energy in watt-hours.
    Wh, "Wh"
);
integer_unit!(
    /// Power in watts.
    W, "W"
);
integer_unit!(
    /// Price in micro-currency per kWh: 0.25 €/kWh is `MicroPerKwh(250_000)`.
    MicroPerKwh, "µ/kWh"
);
integer_unit!(
    /// Money in micro-currency (1 € = 1_000_000). On chain, one token unit
    /// of the 6-decimal settlement token.
    Micro, "µ"
);

/// Scale of `Micro` and `MicroPerKwh` against the currency unit.
pub const MICROS_PER_UNIT: i64 = 1_000_000;

fn decimal_to_scaled(value: Decimal, scale: u32, unit: &'static str) -> Result<i64, UnitError> {
    let factor = Decimal::from(10i64.pow(scale));
    let scaled = value.checked_mul(factor).ok_or(UnitError::Overflow { unit })?;
    if scaled.fract() != Decimal::ZERO {
        return Err(UnitError::TooPrecise {
            unit,
            value,
            max_scale: scale,
        });
    }
    scaled.to_i64().ok_or(UnitError::Overflow { unit })
}

fn scaled_to_decimal(value: i64, scale: u32) -> Decimal {
    Decimal::new(value, scale)
}

impl Wh {
    /// Energy from a decimal kWh amount (at most 3 decimals: whole Wh).
    pub fn from_kwh_decimal(kwh: Decimal) -> Result<Self, UnitError> {
        decimal_to_scaled(kwh, 3, Self::UNIT).map(Self)
    }
    /// Energy as a decimal kWh amount, exact.
    pub fn to_kwh_decimal(self) -> Decimal {
        scaled_to_decimal(self.0, 3)
    }
}

impl MicroPerKwh {
    /// Price from a decimal currency-per-kWh amount (at most 6 decimals).
    pub fn from_decimal(per_kwh: Decimal) -> Result<Self, UnitError> {
        decimal_to_scaled(per_kwh, 6, Self::UNIT).map(Self)
    }
    /// Price as a decimal currency-per-kWh amount, exact.
    pub fn to_decimal(self) -> Decimal {
        scaled_to_decimal(self.0, 6)
    }
}

impl Micro {
    /// Money from a decimal currency amount (at most 6 decimals).
    pub fn from_decimal(amount: Decimal) -> Result<Self, UnitError> {
        decimal_to_scaled(amount, 6, Self::UNIT).map(Self)
    }
    /// Money as a decimal currency amount, exact.
    pub fn to_decimal(self) -> Decimal {
        scaled_to_decimal(self.0, 6)
    }
}

impl W {
    /// Energy delivered by this power held for `millis` milliseconds,
    /// rounded toward zero (meter counters never report energy not yet seen).
    pub fn energy_over_millis(self, millis: i64) -> Result<Wh, UnitError> {
        let wh = i128::from(self.0) * i128::from(millis) / 3_600_000;
        i64::try_from(wh)
            .map(Wh)
            .map_err(|_| UnitError::Overflow { unit: Wh::UNIT })
    }
}

impl fmt::Display for Wh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Wh", self.0)
    }
}
impl fmt::Display for W {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} W", self.0)
    }
}
impl fmt::Display for MicroPerKwh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/kWh", self.to_decimal())
    }
}
impl fmt::Display for Micro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_default()
    }

    #[test]
    fn price_decimal_round_trip() {
        let p = MicroPerKwh::from_decimal(dec("0.25")).unwrap();
        assert_eq!(p, MicroPerKwh(250_000));
        assert_eq!(p.to_decimal(), dec("0.250000"));
        assert_eq!(p.to_string(), "0.250000/kWh");
    }

    #[test]
    fn too_precise_is_rejected_not_rounded() {
        let err = MicroPerKwh::from_decimal(dec("0.1234567")).unwrap_err();
        assert!(matches!(err, UnitError::TooPrecise { max_scale: 6, .. }), "{err}");
        assert!(Wh::from_kwh_decimal(dec("1.0005")).is_err());
        assert_eq!(Wh::from_kwh_decimal(dec("1.5")).unwrap(), Wh(1500));
    }

    #[test]
    fn out_of_range_is_rejected() {
        let huge = Decimal::from(i64::MAX);
        assert_eq!(Micro::from_decimal(huge), Err(UnitError::Overflow { unit: "µ" }));
        assert!(Wh(i64::MAX).checked_add(Wh(1)).is_err());
        assert!(Wh(i64::MIN).checked_neg().is_err());
    }

    #[test]
    fn power_to_energy() {
        assert_eq!(W(4000).energy_over_millis(15 * 60 * 1000).unwrap(), Wh(1000));
        assert_eq!(W(-3600).energy_over_millis(1000).unwrap(), Wh(-1));
        assert_eq!(W(3599).energy_over_millis(1000).unwrap(), Wh(0));
    }
}
