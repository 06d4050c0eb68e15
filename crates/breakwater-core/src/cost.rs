//! Token usage and dollar cost.
//!
//! Money is counted in whole nanodollars ([`Cost`]), so sums are exact and the same on
//! every machine: $3 per million tokens is 3,000 nanodollars a token.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

/// Tokens an attempt was billed for. Attempts that failed after billing (a timeout
/// after output began, a stream cut short) report what the provider charged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Completion tokens.
    pub output_tokens: u32,
}

impl Usage {
    /// `input` prompt tokens and `output` completion tokens.
    #[must_use]
    pub const fn new(input_tokens: u32, output_tokens: u32) -> Usage {
        Usage {
            input_tokens,
            output_tokens,
        }
    }
}

/// An amount of money in nanodollars (10⁻⁹ $). Saturating arithmetic.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cost(u64);

impl Cost {
    /// Nothing.
    pub const ZERO: Cost = Cost(0);

    /// An amount in nanodollars.
    #[must_use]
    pub const fn from_nanodollars(n: u64) -> Cost {
        Cost(n)
    }

    /// The nearest amount to `dollars` (negative, NaN → zero; saturating).
    #[must_use]
    pub fn from_dollars(dollars: f64) -> Cost {
        // `as` saturates and maps NaN to 0.
        Cost((dollars * 1e9).round() as u64)
    }

    /// The amount in nanodollars.
    #[must_use]
    pub const fn nanodollars(self) -> u64 {
        self.0
    }

    /// The amount in dollars.
    #[must_use]
    pub fn dollars(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// The sum, saturating.
    #[must_use]
    pub const fn saturating_add(self, other: Cost) -> Cost {
        Cost(self.0.saturating_add(other.0))
    }
}

impl Add for Cost {
    type Output = Cost;
    fn add(self, other: Cost) -> Cost {
        self.saturating_add(other)
    }
}

impl AddAssign for Cost {
    fn add_assign(&mut self, other: Cost) {
        *self = self.saturating_add(other);
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${:.6}", self.dollars())
    }
}

/// A model's list price in dollars per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Dollars per million input tokens.
    pub input_per_mtok: f64,
    /// Dollars per million output tokens.
    pub output_per_mtok: f64,
}

impl Price {
    /// A price of `input` and `output` dollars per million tokens.
    #[must_use]
    pub const fn per_million(input_per_mtok: f64, output_per_mtok: f64) -> Price {
        Price {
            input_per_mtok,
            output_per_mtok,
        }
    }

    /// What `usage` costs at this price, to the nanodollar.
    #[must_use]
    pub fn cost(&self, usage: Usage) -> Cost {
        // $/Mtok × 1000 = nanodollars per token.
        let per_token = |dollars_per_mtok: f64| (dollars_per_mtok * 1000.0).max(0.0);
        let n = f64::from(usage.input_tokens) * per_token(self.input_per_mtok)
            + f64::from(usage.output_tokens) * per_token(self.output_per_mtok);
        Cost(n.round() as u64)
    }
}

/// List prices by model name. A model missing from the table costs nothing (and the
/// simulator and adapter say so when they load a route).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

impl PriceTable {
    /// An empty table.
    #[must_use]
    pub fn new() -> PriceTable {
        PriceTable::default()
    }

    /// The table with `model` priced at `price`.
    #[must_use]
    pub fn with(mut self, model: &str, price: Price) -> PriceTable {
        self.prices.insert(model.to_owned(), price);
        self
    }

    /// Sets `model`'s price.
    pub fn insert(&mut self, model: &str, price: Price) {
        self.prices.insert(model.to_owned(), price);
    }

    /// `model`'s price, if listed.
    #[must_use]
    pub fn price(&self, model: &str) -> Option<Price> {
        self.prices.get(model).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_costs_one_point_three_five_cents() {
        let sonnet = Price::per_million(3.0, 15.0);
        let cost = sonnet.cost(Usage::new(2_000, 500));
        assert_eq!(cost, Cost::from_dollars(0.0135));
        assert_eq!(cost.nanodollars(), 13_500_000);
        assert_eq!(cost.to_string(), "$0.013500");
    }

    #[test]
    fn fractional_cent_prices_are_exact() {
        let mini = Price::per_million(0.15, 0.60);
        assert_eq!(
            mini.cost(Usage::new(1_000_000, 1_000_000)),
            Cost::from_dollars(0.75)
        );
        assert_eq!(mini.cost(Usage::new(1, 0)).nanodollars(), 150);
    }

    #[test]
    fn nonsense_prices_do_not_panic() {
        for bad in [f64::NAN, -1.0, f64::INFINITY] {
            let _ = Price::per_million(bad, bad).cost(Usage::new(u32::MAX, u32::MAX));
        }
        assert_eq!(Cost::from_dollars(-5.0), Cost::ZERO);
        assert_eq!(Cost(u64::MAX) + Cost(1), Cost(u64::MAX));
    }

    #[test]
    fn price_table_reads_from_toml() {
        let table: PriceTable = toml::from_str(
            "[\"claude-sonnet-4-5\"]\ninput_per_mtok = 3.0\noutput_per_mtok = 15.0\n",
        )
        .unwrap();
        assert_eq!(
            table.price("claude-sonnet-4-5"),
            Some(Price::per_million(3.0, 15.0))
        );
        assert_eq!(table.price("unknown"), None);
    }
}
