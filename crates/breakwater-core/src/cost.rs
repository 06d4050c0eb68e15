//! Token usage and dollar cost.
//!
//! Money is counted in whole nanodollars ([`Cost`]), so sums are exact and the same on
//! every machine: $3 per million tokens is 3,000 nanodollars a token.
//!
//! Each [`Price`] also knows its batch price: what the providers' asynchronous batch
//! APIs (Anthropic Message Batches, the OpenAI Batch API) charge for the same tokens.
//! Both bill batches at half the standard price, which is the default
//! ([`BATCH_DISCOUNT`]); a model whose batch price differs sets its own. A
//! [`BatchCost`] holds what a batch result cost beside what the same tokens would have
//! cost synchronously, so reports can show the saving.
//!
//! ```
//! use breakwater_core::{Cost, Price, Usage};
//!
//! let sonnet = Price::per_million(3.0, 15.0);
//! let bill = sonnet.batch_cost(Usage::new(2_000, 500));
//! assert_eq!(bill.batch, Cost::from_dollars(0.00675));
//! assert_eq!(bill.synchronous, Cost::from_dollars(0.0135));
//! assert_eq!(bill.saving(), Cost::from_dollars(0.00675));
//! ```

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

    /// The difference, or zero when `other` is larger.
    #[must_use]
    pub const fn saturating_sub(self, other: Cost) -> Cost {
        Cost(self.0.saturating_sub(other.0))
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

/// The share of the standard price that both Anthropic and OpenAI charge for a batch
/// request: half. A [`Price`] without a batch price of its own uses it.
pub const BATCH_DISCOUNT: f64 = 0.5;

/// A model's list price in dollars per million tokens, and its batch price.
///
/// In TOML the batch price is optional (`batch_input_per_mtok`,
/// `batch_output_per_mtok`); each one missing is [`BATCH_DISCOUNT`] times the standard
/// price.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Dollars per million input tokens.
    pub input_per_mtok: f64,
    /// Dollars per million output tokens.
    pub output_per_mtok: f64,
    /// Dollars per million input tokens sent through a batch API; `None`: half of
    /// `input_per_mtok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_input_per_mtok: Option<f64>,
    /// Dollars per million output tokens of a batch result; `None`: half of
    /// `output_per_mtok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_output_per_mtok: Option<f64>,
}

impl Price {
    /// A price of `input` and `output` dollars per million tokens, batches at half.
    #[must_use]
    pub const fn per_million(input_per_mtok: f64, output_per_mtok: f64) -> Price {
        Price {
            input_per_mtok,
            output_per_mtok,
            batch_input_per_mtok: None,
            batch_output_per_mtok: None,
        }
    }

    /// This price with its own batch price, `input` and `output` dollars per million
    /// tokens, instead of half the standard one.
    #[must_use]
    pub const fn with_batch(mut self, input_per_mtok: f64, output_per_mtok: f64) -> Price {
        self.batch_input_per_mtok = Some(input_per_mtok);
        self.batch_output_per_mtok = Some(output_per_mtok);
        self
    }

    /// What `usage` costs at this price, to the nanodollar.
    #[must_use]
    pub fn cost(&self, usage: Usage) -> Cost {
        cost_at(self.input_per_mtok, self.output_per_mtok, usage)
    }

    /// The batch price as a standard one: the explicit batch price where set, else
    /// [`BATCH_DISCOUNT`] times the standard price.
    #[must_use]
    pub fn batch(&self) -> Price {
        Price::per_million(
            self.batch_input_per_mtok
                .unwrap_or(self.input_per_mtok * BATCH_DISCOUNT),
            self.batch_output_per_mtok
                .unwrap_or(self.output_per_mtok * BATCH_DISCOUNT),
        )
    }

    /// What `usage` costs through a batch API, beside what it would have cost
    /// synchronously.
    #[must_use]
    pub fn batch_cost(&self, usage: Usage) -> BatchCost {
        BatchCost {
            batch: self.batch().cost(usage),
            synchronous: self.cost(usage),
        }
    }
}

/// `usage` at `input` and `output` dollars per million tokens, to the nanodollar.
fn cost_at(input_per_mtok: f64, output_per_mtok: f64, usage: Usage) -> Cost {
    // $/Mtok × 1000 = nanodollars per token.
    let per_token = |dollars_per_mtok: f64| (dollars_per_mtok * 1000.0).max(0.0);
    let n = f64::from(usage.input_tokens) * per_token(input_per_mtok)
        + f64::from(usage.output_tokens) * per_token(output_per_mtok);
    Cost(round(n))
}

/// `n.round() as u64`, bit for bit, without the call to libm's `round` (baseline
/// x86-64 has no rounding instruction): the fraction left by truncation is exact below
/// 2⁵², and from there on `n` is a whole number.
#[inline]
fn round(n: f64) -> u64 {
    /// 2⁵²: from here up every f64 is a whole number.
    const WHOLE: f64 = 4_503_599_627_370_496.0;
    // NaN and anything negative round to 0, as the cast after `round` makes them.
    let n = n.max(0.0);
    if n < WHOLE {
        // Through `i64`: one conversion instruction each way on x86-64, where `u64`
        // takes a dozen (no unsigned conversion before AVX-512).
        let whole = n as i64;
        (whole + i64::from(n - whole as f64 >= 0.5)) as u64
    } else {
        // Already whole; `as` saturates at u64::MAX from 2⁶⁴ up.
        n as u64
    }
}

/// What a batch result cost, and what the same tokens would have cost synchronously.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BatchCost {
    /// At the batch price: what was billed.
    pub batch: Cost,
    /// At the standard price: what a synchronous call would have been billed.
    pub synchronous: Cost,
}

impl BatchCost {
    /// What the batch saved (zero if a batch price was set above the standard one).
    #[must_use]
    pub const fn saving(&self) -> Cost {
        self.synchronous.saturating_sub(self.batch)
    }
}

impl Add for BatchCost {
    type Output = BatchCost;
    fn add(self, other: BatchCost) -> BatchCost {
        BatchCost {
            batch: self.batch + other.batch,
            synchronous: self.synchronous + other.synchronous,
        }
    }
}

impl AddAssign for BatchCost {
    fn add_assign(&mut self, other: BatchCost) {
        *self = *self + other;
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
    fn rounding_matches_the_standard_round() {
        let edges = [
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            0.49999999999999994,
            4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9_007_199_254_740_993.0,
            1e19,
            18_446_744_073_709_551_615.0,
            1e30,
            f64::INFINITY,
            f64::NAN,
            f64::MAX,
            f64::MIN_POSITIVE,
            -0.0,
            -0.4,
            -3.7,
            f64::NEG_INFINITY,
        ];
        for n in edges {
            assert_eq!(round(n), n.round() as u64, "{n}");
        }
    }

    proptest::proptest! {
        #[test]
        fn rounding_matches_the_standard_round_anywhere(bits in proptest::prelude::any::<u64>(), small in 0.0f64..1e7) {
            let n = f64::from_bits(bits);
            proptest::prop_assert_eq!(round(n), n.round() as u64);
            proptest::prop_assert_eq!(round(small), small.round() as u64);
        }
    }

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
    fn batches_cost_half_by_default() {
        let sonnet = Price::per_million(3.0, 15.0);
        assert_eq!(sonnet.batch(), Price::per_million(1.5, 7.5));
        let bill = sonnet.batch_cost(Usage::new(1_000_000, 1_000_000));
        assert_eq!(bill.batch, Cost::from_dollars(9.0));
        assert_eq!(bill.synchronous, Cost::from_dollars(18.0));
        assert_eq!(bill.saving(), Cost::from_dollars(9.0));
        // Odd token counts: each side is rounded once, to the nanodollar.
        let mini = Price::per_million(0.15, 0.6);
        let bill = mini.batch_cost(Usage::new(3, 1));
        assert_eq!(bill.synchronous.nanodollars(), 1_050);
        assert_eq!(bill.batch.nanodollars(), 525);
    }

    #[test]
    fn an_explicit_batch_price_wins() {
        let odd = Price::per_million(2.0, 8.0).with_batch(1.2, 8.0);
        let bill = odd.batch_cost(Usage::new(1_000_000, 1_000_000));
        assert_eq!(bill.batch, Cost::from_dollars(9.2));
        assert_eq!(bill.saving(), Cost::from_dollars(0.8));
        // A batch price above the standard one saves nothing rather than wrapping.
        let dearer = Price::per_million(1.0, 1.0).with_batch(2.0, 2.0);
        assert_eq!(dearer.batch_cost(Usage::new(10, 10)).saving(), Cost::ZERO);
        let mut sum = BatchCost::default();
        sum += bill;
        sum += bill;
        assert_eq!(sum.batch, Cost::from_dollars(18.4));
        assert_eq!(sum.synchronous, Cost::from_dollars(20.0));
        assert_eq!(sum.saving(), Cost::from_dollars(1.6));
    }

    #[test]
    fn nonsense_batch_prices_do_not_panic() {
        for bad in [f64::NAN, -1.0, f64::INFINITY] {
            let price = Price::per_million(bad, bad);
            let _ = price.batch_cost(Usage::new(u32::MAX, u32::MAX));
            let _ = Price::per_million(1.0, 1.0)
                .with_batch(bad, bad)
                .batch_cost(Usage::new(u32::MAX, 1));
        }
    }

    proptest::proptest! {
        #[test]
        fn a_default_batch_never_costs_more_and_the_saving_adds_up(
            input in 0u32..=u32::MAX,
            output in 0u32..=u32::MAX,
            input_price in 0.0f64..100.0,
            output_price in 0.0f64..100.0,
        ) {
            let bill = Price::per_million(input_price, output_price)
                .batch_cost(Usage::new(input, output));
            proptest::prop_assert!(bill.batch <= bill.synchronous);
            proptest::prop_assert_eq!(bill.batch + bill.saving(), bill.synchronous);
        }
    }

    #[test]
    fn batch_prices_read_from_toml() {
        let table: PriceTable = toml::from_str(
            "[\"gpt-4o\"]\ninput_per_mtok = 2.5\noutput_per_mtok = 10.0\n\
             batch_output_per_mtok = 6.0\n",
        )
        .unwrap();
        let price = table.price("gpt-4o").unwrap();
        assert_eq!(price.batch(), Price::per_million(1.25, 6.0));
        let unknown = toml::from_str::<PriceTable>(
            "[\"m\"]\ninput_per_mtok = 1.0\noutput_per_mtok = 1.0\nbatch_discount = 0.5\n",
        );
        assert!(unknown.is_err());
        assert_eq!(
            toml::to_string(&PriceTable::new().with("m", Price::per_million(1.0, 2.0))).unwrap(),
            "[m]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n"
        );
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

    #[test]
    fn inserting_a_price_sets_or_replaces_it() {
        let mut table = PriceTable::new().with("m", Price::per_million(1.0, 2.0));
        table.insert("n", Price::per_million(3.0, 4.0));
        table.insert("m", Price::per_million(5.0, 6.0));
        assert_eq!(table.price("n"), Some(Price::per_million(3.0, 4.0)));
        assert_eq!(table.price("m"), Some(Price::per_million(5.0, 6.0)));
    }
}
