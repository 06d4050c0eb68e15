//! The Finagle/tower ratio bucket.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{BudgetError, Refused, RetryBudget, RetryReason, Withdrawal, fixed_point};
use crate::Time;
use crate::time::{nanos, serde_ms};

/// How many slots the `ttl` is divided into.
const SLOTS: usize = 10;
/// Fixed point: one retry is this many units (micro-retries).
const SCALE: i64 = 1_000_000;
/// The largest `ratio` accepted (Finagle's and tower's limit).
const MAX_RATIO: f64 = 1000.0;

/// Settings of a [`RatioBudget`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RatioConfig {
    /// Retries each request earns: 0.2 allows one retry per five requests. In
    /// `[0, 1000]`; counted in millionths of a retry (truncated).
    pub ratio: f64,
    /// Retries per second allowed whatever the traffic, so that quiet clients can retry:
    /// a reserve of `min_per_sec · ttl` retries.
    pub min_per_sec: u32,
    /// How long a request's deposit (and a retry's withdrawal) counts. At least 1 ms.
    #[serde(rename = "ttl_ms", with = "serde_ms")]
    pub ttl: Duration,
}

impl Default for RatioConfig {
    /// Finagle's and tower's defaults: ratio 0.2, 10 retries per second, a 10 s ttl.
    fn default() -> RatioConfig {
        RatioConfig {
            ratio: 0.2,
            min_per_sec: 10,
            ttl: Duration::from_secs(10),
        }
    }
}

impl RatioConfig {
    /// Checks the settings: `ratio` in `[0, 1000]` (not NaN), `ttl` not zero.
    pub fn validate(&self) -> Result<(), BudgetError> {
        if !(0.0..=MAX_RATIO).contains(&self.ratio) {
            return Err(BudgetError::Ratio);
        }
        if self.ttl.is_zero() {
            return Err(BudgetError::Ttl);
        }
        Ok(())
    }
}

/// A retry budget that lets retries be a fixed share of recent requests (Finagle's
/// `RetryBudget`, tower's `TpsBudget`).
///
/// Each request deposits `ratio` of a retry; each granted retry withdraws one. Both are
/// recorded in the slot of the current *window* (`ttl / 10` long, windows counted from
/// the epoch) and expire with it, ten windows later: an entry counts for between 0.9 and
/// 1.0 `ttl`. A reserve of `min_per_sec · ttl` retries is always added, so a client with
/// little traffic may still retry `min_per_sec` times per second. A retry is granted when
/// the balance (reserve + live deposits − live withdrawals) is at least one retry.
/// Arithmetic is in integer micro-retries; the deposit is `ratio` truncated to that unit.
///
/// # Bound
///
/// Let `R` be the reserve and `r ≤ ratio` the truncated deposit. A grant leaves the
/// balance non-negative, so at every grant the withdrawals of the last ten windows are at
/// most `R + r · (requests in those windows)`. Hence, over any run whose grants fall in
/// `W` consecutive windows, choosing disjoint ten-window spans back from the last grant:
///
/// `granted ≤ r · requests + R · ⌈W / 10⌉`,
///
/// and since `W < elapsed / (ttl / 10) + 2`, with `elapsed` the time from the first grant
/// to the last, that is at most about `ratio · requests + min_per_sec · (elapsed + 1.1 ·
/// ttl)`: in the long run, retries are `ratio` of requests plus `min_per_sec`.
///
/// The balance is kept as a running total (added to on every deposit and withdrawal,
/// subtracted from when a window's slot expires), so that every call is O(1) except a
/// refusal, which walks the slots for its `until`, and the rare call that moves past
/// several windows at once.
///
/// A refusal's `until` is the earliest slot expiry after which, with no other traffic, a
/// retry would be granted (the expiry of slots dominated by withdrawals raises the
/// balance); `None` when even an empty window would not allow one (a reserve under one
/// retry). The reason ([`RetryReason`]) does not change the cost, and attempt outcomes do
/// not change the balance.
#[derive(Clone, Debug)]
pub struct RatioBudget {
    /// Units deposited per request.
    deposit: i64,
    /// Units always available.
    reserve: i64,
    /// Length of a window in nanoseconds (at least 1).
    window_nanos: u64,
    /// The latest window seen: `now / window_nanos`, never decreasing.
    window: u64,
    /// Where that window ends, `(window + 1) · window_nanos` (saturating): an instant
    /// before it is in the same window (or an earlier one, which counts as this one),
    /// so the common call compares instead of dividing.
    window_end: u64,
    /// `slot(window)`, kept so that the common call does not divide.
    index: usize,
    /// Net units per window; window `w` lives in `slots[w % SLOTS]`.
    slots: [i64; SLOTS],
    /// The exact sum of `slots` (wide enough that it cannot overflow): what the live
    /// windows add to the reserve.
    total: i128,
    /// The refusal for a range of balances, until the window moves.
    refusals: RefusalCache,
}

impl RatioBudget {
    /// A budget with nothing deposited: only the reserve is available. Never panics;
    /// settings that [`RatioConfig::validate`] rejects are clamped (a NaN ratio counts as
    /// 0, a zero ttl as one nanosecond per window).
    #[must_use]
    pub fn new(config: &RatioConfig) -> RatioBudget {
        let ratio = if config.ratio.is_nan() {
            0.0
        } else {
            config.ratio.clamp(0.0, MAX_RATIO)
        };
        // At most 1000 · 10⁶, so it fits.
        let deposit = i64::try_from(fixed_point(ratio, SCALE as f64)).unwrap_or(i64::MAX);
        let ttl = nanos(config.ttl);
        let reserve =
            u128::from(config.min_per_sec) * u128::from(ttl) * SCALE as u128 / 1_000_000_000;
        RatioBudget {
            deposit,
            reserve: i64::try_from(reserve).unwrap_or(i64::MAX),
            window_nanos: (ttl / SLOTS as u64).max(1),
            window: 0,
            index: 0,
            window_end: (ttl / SLOTS as u64).max(1),
            slots: [0; SLOTS],
            total: 0,
            refusals: RefusalCache::EMPTY,
        }
    }

    /// Retries the budget would grant now if asked in a row (fractional: the balance in
    /// retries, zero when overdrawn). Does not change the budget.
    #[must_use]
    pub fn available(&self, now: Time) -> f64 {
        let oldest = self.window_at(now).saturating_sub(SLOTS as u64 - 1);
        let live: i128 = self
            .live_windows()
            .filter(|w| *w >= oldest)
            .map(|w| i128::from(self.slots[slot(w)]))
            .sum();
        (i128::from(self.reserve) + live).max(0) as f64 / SCALE as f64
    }

    /// For the fleet layer ([`crate::fleet::budget`]): moves to `now`'s window and
    /// returns it with the window length in nanoseconds.
    pub(crate) fn advance_to(&mut self, now: Time) -> (u64, u64) {
        self.advance(now);
        (self.window, self.window_nanos)
    }

    /// For the fleet layer: the net units of window `w`, 0 unless it is live.
    pub(crate) fn window_units(&self, w: u64) -> i64 {
        if self.live_windows().contains(&w) {
            self.slots[slot(w)]
        } else {
            0
        }
    }

    /// For the fleet layer: sets the net units of window `w` if it is live.
    pub(crate) fn set_window_units(&mut self, w: u64, units: i64) {
        if self.live_windows().contains(&w) {
            self.set_slot(slot(w), units);
            self.refusals = RefusalCache::EMPTY;
        }
    }

    /// Where the current window ends, in nanoseconds: a request before it only adds
    /// the deposit to the current slot, so [`SharedBudget`](crate::registry::SharedBudget)
    /// may count it without the lock and deposit it later
    /// ([`deposit_requests`](Self::deposit_requests)).
    pub(crate) fn window_end(&self) -> u64 {
        self.window_end
    }

    /// Deposits `requests` requests' share into the current window, without moving it:
    /// what `requests` calls of [`on_request`](RetryBudget::on_request) before the
    /// window's end would have done (saturating, as they do).
    pub(crate) fn deposit_requests(&mut self, requests: u64) {
        let units =
            i64::try_from(i128::from(self.deposit) * i128::from(requests)).unwrap_or(i64::MAX);
        self.add_to_current(units);
    }

    /// How many windows an entry lives (the `ttl` in windows).
    pub(crate) const SLOTS: u64 = SLOTS as u64;

    /// The window `now` falls in, never earlier than the latest seen.
    fn window_at(&self, now: Time) -> u64 {
        (now.as_nanos() / self.window_nanos).max(self.window)
    }

    /// The windows whose slots may hold entries, oldest first.
    fn live_windows(&self) -> std::ops::RangeInclusive<u64> {
        self.window.saturating_sub(SLOTS as u64 - 1)..=self.window
    }

    /// Moves to `now`'s window, clearing the slots of the windows that ended.
    #[inline]
    fn advance(&mut self, now: Time) {
        if now.as_nanos() < self.window_end {
            return;
        }
        self.advance_slow(now);
    }

    /// [`advance`](Self::advance) once `now` has reached the end of the current window.
    #[cold]
    fn advance_slow(&mut self, now: Time) {
        let target = self.window_at(now);
        self.window_end = target.saturating_add(1).saturating_mul(self.window_nanos);
        if target == self.window {
            // Only at the end of time: the window's end saturated at `u64::MAX`.
            return;
        }
        if target - self.window >= SLOTS as u64 {
            self.slots = [0; SLOTS];
            self.total = 0;
        } else {
            for w in self.window + 1..=target {
                self.set_slot(slot(w), 0);
            }
        }
        self.window = target;
        self.index = slot(target);
        self.refusals = RefusalCache::EMPTY;
    }

    /// Sets slot `index` to `units`, keeping the running total.
    #[inline]
    fn set_slot(&mut self, index: usize, units: i64) {
        let old = std::mem::replace(&mut self.slots[index], units);
        self.total += i128::from(units) - i128::from(old);
    }

    /// Adds `units` (saturating) to the current window's slot.
    #[inline]
    fn add_to_current(&mut self, units: i64) {
        let index = self.index;
        self.set_slot(index, self.slots[index].saturating_add(units));
    }

    /// Reserve plus live deposits minus live withdrawals, in units.
    #[inline]
    fn balance(&self) -> i128 {
        i128::from(self.reserve) + self.total
    }

    /// Called when the balance is under one retry: the first slot expiry that lifts it to
    /// one, if any. Answered from the cache when the shortfall is in its range.
    #[inline]
    fn refusal(&mut self) -> Refused {
        let short = self.balance() - i128::from(SCALE);
        if self.refusals.low <= short && short < self.refusals.high {
            return self.refusals.answer;
        }
        self.refusal_walk(short)
    }

    /// [`refusal`](Self::refusal) outside the cached range: with `short` the balance
    /// minus one retry (negative), the first window, oldest first, whose expiry (with
    /// those before it) takes away at least that much. The windows before the current
    /// one do not change until the window moves, so the answer holds for every
    /// shortfall in `[its prefix sum, the least prefix sum before it)`, which is cached.
    /// When none does, only the current window's expiry is left, after which the balance
    /// is the reserve.
    #[cold]
    fn refusal_walk(&mut self, short: i128) -> Refused {
        let first = self.window.saturating_sub(SLOTS as u64 - 1);
        // The sum of the windows walked so far, and its least value before this one.
        let (mut prefix, mut least) = (0i128, i128::MAX);
        // The slot index walks with the window: no remainder per step.
        let mut index = slot(first);
        for w in first..self.window {
            prefix += i128::from(self.slots[index]);
            index = if index + 1 == SLOTS { 0 } else { index + 1 };
            if prefix <= short {
                return self.refusals.set(prefix, least, Some(self.expiry(w)));
            }
            least = least.min(prefix);
        }
        let until = (self.reserve >= SCALE).then(|| self.expiry(self.window));
        self.refusals.set(i128::MIN, least, until)
    }

    /// When the entries of window `w` expire.
    fn expiry(&self, w: u64) -> Time {
        Time::from_nanos(
            w.saturating_add(SLOTS as u64)
                .saturating_mul(self.window_nanos),
        )
    }
}

/// The last refusal computed, and the shortfalls for which it holds: `[low, high)`,
/// empty once the windows before the current one may have changed.
#[derive(Clone, Copy, Debug)]
struct RefusalCache {
    low: i128,
    high: i128,
    answer: Refused,
}

impl RefusalCache {
    const EMPTY: RefusalCache = RefusalCache {
        low: i128::MAX,
        high: i128::MIN,
        answer: Refused { until: None },
    };

    fn set(&mut self, low: i128, high: i128, until: Option<Time>) -> Refused {
        let answer = Refused { until };
        *self = RefusalCache { low, high, answer };
        answer
    }
}

impl RetryBudget for RatioBudget {
    #[inline]
    fn on_request(&mut self, now: Time) {
        self.advance(now);
        self.add_to_current(self.deposit);
    }

    #[inline]
    fn try_withdraw(&mut self, now: Time, _reason: RetryReason) -> Result<Withdrawal, Refused> {
        self.advance(now);
        if self.balance() < i128::from(SCALE) {
            return Err(self.refusal());
        }
        self.add_to_current(-SCALE);
        Ok(Withdrawal::new(1))
    }

    #[inline]
    fn on_attempt(&mut self, now: Time, _success: bool, _withdrawal: Option<Withdrawal>) {
        self.advance(now);
    }
}

/// The slot of window `w`.
fn slot(w: u64) -> usize {
    // The remainder is below SLOTS, so the cast is exact.
    (w % SLOTS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn budget(ratio: f64, min_per_sec: u32, ttl_ms: u64) -> RatioBudget {
        RatioBudget::new(&RatioConfig {
            ratio,
            min_per_sec,
            ttl: Duration::from_millis(ttl_ms),
        })
    }

    fn t(millis: u64) -> Time {
        Time::from_millis(millis)
    }

    fn withdraw(b: &mut RatioBudget, now: Time) -> Result<Withdrawal, Refused> {
        b.try_withdraw(now, RetryReason::Error)
    }

    #[test]
    fn empty_without_reserve() {
        let mut b = budget(1.0, 0, 1000);
        assert_eq!(withdraw(&mut b, t(0)), Err(Refused { until: None }));
        assert_eq!(b.available(t(0)), 0.0);
    }

    #[test]
    fn reserve_allows_min_per_sec_times_ttl() {
        let mut b = budget(1.0, 5, 1000);
        for _ in 0..5 {
            assert_eq!(withdraw(&mut b, t(0)).map(Withdrawal::cost), Ok(1));
        }
        // The withdrawals expire with window 0, ten 100 ms windows later.
        assert_eq!(
            withdraw(&mut b, t(50)),
            Err(Refused {
                until: Some(t(1000))
            })
        );
        assert!(withdraw(&mut b, t(1000)).is_ok());
        // A fractional ttl gives a fractional reserve, truncated to micro-retries.
        assert_eq!(budget(0.0, 10, 1500).available(t(0)), 15.0);
    }

    #[test]
    fn deposits_earn_a_share_of_a_retry_each() {
        let mut b = budget(0.2, 0, 10_000);
        for _ in 0..9 {
            b.on_request(t(0));
        }
        assert!((b.available(t(0)) - 1.8).abs() < 1e-9);
        assert!(withdraw(&mut b, t(0)).is_ok());
        assert!((b.available(t(0)) - 0.8).abs() < 1e-9);
        // The deposits and the withdrawal share a slot, which expires as a whole at 10 s.
        assert_eq!(withdraw(&mut b, t(0)), Err(Refused { until: None }));
        b.on_request(t(5000));
        assert!(withdraw(&mut b, t(5000)).is_ok());
        assert_eq!(b.available(t(10_000)), 0.0);
        // Ratios above one: each request earns several retries.
        let mut big = budget(2.5, 0, 1000);
        big.on_request(t(0));
        big.on_request(t(0));
        assert_eq!(big.available(t(0)), 5.0);
    }

    #[test]
    fn deposits_expire_after_the_ttl() {
        let mut b = budget(0.5, 0, 1000);
        b.on_request(t(0));
        b.on_request(t(0));
        assert!(withdraw(&mut b, t(901)).is_ok());
        b.on_request(t(3000));
        b.on_request(t(3301));
        // The first of these expired at 4 s; the second still counts, with a third.
        b.on_request(t(4102));
        assert!(withdraw(&mut b, t(4102)).is_ok());
        assert_eq!(b.available(t(4102)), 0.0);
    }

    #[test]
    fn an_overdrawn_slot_expiring_is_when_to_come_back() {
        // Reserve 2; two retries at 0.35 s, two requests (one retry) at 0.55 s.
        let mut b = budget(0.5, 2, 1000);
        assert!(withdraw(&mut b, t(350)).is_ok());
        assert!(withdraw(&mut b, t(350)).is_ok());
        b.on_request(t(550));
        b.on_request(t(550));
        assert!(withdraw(&mut b, t(560)).is_ok());
        // Balance 0: window 3 (−2) expires at 1.3 s, leaving 2 + 1 − 1 = 2.
        let refused = withdraw(&mut b, t(600)).unwrap_err();
        assert_eq!(refused.until, Some(t(1300)));
        assert!(withdraw(&mut b.clone(), t(1299)).is_err());
        assert!(withdraw(&mut b, t(1300)).is_ok());
    }

    /// The fleet layer reads and sets live windows only: the one ten windows back,
    /// whose slot the current window reuses, reads 0 and is not set.
    #[test]
    fn only_live_windows_are_read_or_set_for_the_fleet() {
        let mut b = budget(0.5, 0, 1000);
        let (window, _) = b.advance_to(t(1_250));
        b.on_request(t(1_250));
        let current = b.window_units(window);
        assert!(current > 0);
        assert_eq!(b.window_units(window - 10), 0);
        b.set_window_units(window - 10, 7);
        assert_eq!(b.window_units(window), current);
        b.set_window_units(window - 9, 7);
        assert_eq!(b.window_units(window - 9), 7);
    }

    /// A cached refusal holds for shortfalls in `[low, high)` only: a deposit that
    /// brings the shortfall to `high` gets a fresh answer, an earlier expiry.
    #[test]
    fn a_cached_refusal_is_not_reused_at_the_end_of_its_range() {
        // A reserve of 1.5 retries; 50 ms windows.
        let mut b = budget(0.5, 3, 500);
        b.on_request(t(0));
        assert!(withdraw(&mut b, t(0)).is_ok());
        assert!(withdraw(&mut b, t(50)).is_ok());
        // Window 0 holds −0.5, window 1 −1: only window 1's expiry lifts the balance.
        let refused = |until| {
            Err(Refused {
                until: Some(t(until)),
            })
        };
        assert_eq!(withdraw(&mut b, t(100)), refused(550));
        b.on_request(t(100));
        assert_eq!(withdraw(&mut b, t(100)), refused(500));
    }

    #[test]
    fn time_going_backwards_is_no_advance() {
        let mut b = budget(1.0, 0, 1000);
        b.on_request(t(5000));
        // Earlier instants count as the latest window: the deposit is still there.
        assert_eq!(b.available(t(0)), 1.0);
        assert!(withdraw(&mut b, t(10)).is_ok());
        b.on_request(t(20));
        assert_eq!(b.available(t(5999)), 1.0);
        assert_eq!(b.available(t(6000)), 0.0);
    }

    #[test]
    fn extreme_settings_do_not_panic() {
        for config in [
            RatioConfig {
                ratio: f64::NAN,
                min_per_sec: u32::MAX,
                ttl: Duration::MAX,
            },
            RatioConfig {
                ratio: f64::INFINITY,
                min_per_sec: 0,
                ttl: Duration::ZERO,
            },
            RatioConfig {
                ratio: -5.0,
                min_per_sec: 1,
                ttl: Duration::from_nanos(3),
            },
        ] {
            let mut b = RatioBudget::new(&config);
            for now in [0, 1, u64::MAX / 2, u64::MAX, 7] {
                let now = Time::from_nanos(now);
                b.on_request(now);
                let w = withdraw(&mut b, now);
                b.on_attempt(now, false, w.ok());
                let _ = b.available(now);
            }
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Request,
        Withdraw,
        Attempt(bool),
        Advance(u64),
        Rewind(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Request),
            4 => Just(Op::Withdraw),
            1 => any::<bool>().prop_map(Op::Attempt),
            3 => (0u64..3_000).prop_map(Op::Advance),
            1 => (0u64..3_000).prop_map(Op::Rewind),
        ]
    }

    proptest! {
        #[test]
        fn grants_stay_within_the_bound(
            ratio in prop_oneof![Just(0.0), 0.0f64..2.0, Just(1000.0)],
            min_per_sec in 0u32..20,
            ttl_ms in 1u64..5_000,
            ops in proptest::collection::vec(op(), 0..300),
        ) {
            let mut b = budget(ratio, min_per_sec, ttl_ms);
            let (deposit, reserve, width) = (b.deposit, b.reserve, b.window_nanos);
            let mut now = 0u64;
            let mut latest = 0u64;
            // (window, units) of every deposit and grant, as an independent model.
            let mut log: Vec<(u64, i64)> = Vec::new();
            let mut grants: Vec<u64> = Vec::new();
            let mut requests = 0i64;
            for op in ops {
                // The budget's window moves only when it is called.
                if matches!(op, Op::Request | Op::Withdraw | Op::Attempt(_)) {
                    latest = latest.max(now / width);
                }
                let live = |log: &[(u64, i64)], at: u64| -> i64 {
                    reserve + log.iter().filter(|(w, _)| w + 9 >= at).map(|(_, u)| u).sum::<i64>()
                };
                match op {
                    Op::Request => {
                        b.on_request(Time::from_nanos(now));
                        log.push((latest, deposit));
                        requests += 1;
                    }
                    Op::Withdraw => {
                        let expected = live(&log, latest) >= SCALE;
                        match withdraw(&mut b, Time::from_nanos(now)) {
                            Ok(w) => {
                                prop_assert!(expected);
                                prop_assert_eq!(w.cost(), 1);
                                log.push((latest, -SCALE));
                                grants.push(latest);
                                // The windowed bound: grants in the last ten windows.
                                let recent = grants.iter().filter(|w| *w + 9 >= latest).count() as i64;
                                let earned = log.iter().filter(|(w, u)| *w + 9 >= latest && *u > 0)
                                    .map(|(_, u)| u).sum::<i64>();
                                prop_assert!(recent * SCALE <= reserve + earned);
                            }
                            Err(Refused { until }) => {
                                prop_assert!(!expected);
                                // A cached answer is the one a fresh walk gives.
                                let mut fresh = b.clone();
                                fresh.refusals = RefusalCache::EMPTY;
                                prop_assert_eq!(fresh.refusal(), Refused { until });
                                match until {
                                    Some(until) => {
                                        prop_assert!(until > Time::from_nanos(now));
                                        let at = until.as_nanos() / width;
                                        prop_assert!(live(&log, at) >= SCALE);
                                        prop_assert!(live(&log, at - 1) < SCALE);
                                    }
                                    None => prop_assert!(reserve < SCALE),
                                }
                            }
                        }
                    }
                    Op::Attempt(success) => b.on_attempt(Time::from_nanos(now), success, None),
                    Op::Advance(ms) => now = now.saturating_add(ms * 1_000_000),
                    Op::Rewind(ms) => now = now.saturating_sub(ms * 1_000_000),
                }
                prop_assert_eq!(b.total, b.slots.iter().copied().map(i128::from).sum::<i128>());
                prop_assert_eq!(b.index, slot(b.window));
                prop_assert!((b.available(Time::from_nanos(now)) * SCALE as f64 - live(&log, latest.max(now / width)).max(0) as f64).abs() < 1.0);
            }
            // The global bound over the whole run.
            if let (Some(first), Some(last)) = (grants.first(), grants.last()) {
                let spans = (last - first + 1).div_ceil(SLOTS as u64) as i64;
                prop_assert!(grants.len() as i64 * SCALE <= deposit * requests + reserve * spans);
            }
        }
    }
}
