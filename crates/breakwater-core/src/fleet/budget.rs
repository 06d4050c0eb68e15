//! A retry budget shared by the fleet: the ratio bucket, mirrored locally.
//!
//! The plan's budget check stays local and synchronous: each replica keeps its own
//! [`RatioBudget`], whose balance is the *fleet's*: its slots hold what the other
//! replicas contributed (as of the last sync) plus what this replica did since.
//! Withdrawals and deposits change the local slots at once, as always. Every sync
//! interval a [`BudgetMirror`] sends this replica's contribution per budget window —
//! as an *absolute* number, so a push that timed out and is sent again is not counted
//! twice — and the store answers with the fleet's totals per window, which replace the
//! others' share in the local slots.
//!
//! The store keeps, per budget, each window's total and each replica's contribution
//! ([`BudgetStore`] is the reference; the Redis adapter runs the same rules in Lua).
//! Windows are the ratio bucket's (`ttl / 10` long) on the fleet clock, so entries
//! expire fleet-wide as they do locally; a replica that dies leaves its contribution
//! to expire with its windows.
//!
//! What this bounds: the fleet's retries are at most `ratio` of the fleet's requests
//! plus *one* reserve of `min_per_sec · ttl` (not one per replica), plus what replicas
//! withdraw between two syncs before they see each other's withdrawals (at most the
//! retries one sync interval allows each replica). The throttle and quota kinds are not
//! shared: they stay local (each replica bounds its own retries), which the mirror
//! reports by answering `None`.

use std::collections::BTreeMap;

use super::FleetClock;
use crate::Time;
use crate::budget::{Budget, RatioBudget};
use crate::registry::SharedBudget;

/// How many windows an entry lives (the ratio bucket's slots).
pub const WINDOWS: u64 = RatioBudget::SLOTS;

/// One replica's contribution to a shared budget, as sent to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetPush {
    /// The sender (unique in the fleet).
    pub replica: u64,
    /// The sender's current window on the fleet clock.
    pub window: u64,
    /// The window length in nanoseconds (the same on every replica with the same
    /// config; the store keys windows by number).
    pub window_nanos: u64,
    /// The sender's net contribution (deposits − withdrawals, in micro-retries) per live
    /// window, absolute: the store replaces the sender's previous number for the window.
    pub contributions: Vec<(u64, i64)>,
}

/// Keeps one replica's ratio budget in step with the fleet's: see the
/// [module docs](self).
#[derive(Clone, Debug)]
pub struct BudgetMirror {
    replica: u64,
    clock: FleetClock,
    /// What the other replicas contributed, per local window, as of the last sync.
    others: BTreeMap<u64, i64>,
    /// The contributions of the push in flight, per local window.
    sent: Option<BTreeMap<u64, i64>>,
}

impl BudgetMirror {
    /// A mirror for replica `replica` (unique in the fleet) whose clock is `clock`.
    #[must_use]
    pub fn new(replica: u64, clock: FleetClock) -> BudgetMirror {
        BudgetMirror {
            replica,
            clock,
            others: BTreeMap::new(),
            sent: None,
        }
    }

    /// Starts a sync: what to send. `None` while a push is in flight, or when the
    /// budget is not a ratio bucket (those stay local).
    pub fn begin(&mut self, now: Time, budget: &SharedBudget) -> Option<BudgetPush> {
        if self.sent.is_some() {
            return None;
        }
        let (push, sent) = budget.with_mut(|budget| {
            let Budget::Ratio(ratio) = budget else {
                return None;
            };
            let (window, window_nanos) = ratio.advance_to(now);
            let shift = self.shift(window_nanos);
            let mut sent = BTreeMap::new();
            let mut contributions = Vec::with_capacity(WINDOWS as usize);
            for w in window.saturating_sub(WINDOWS - 1)..=window {
                let mine = ratio
                    .window_units(w)
                    .saturating_sub(self.others.get(&w).copied().unwrap_or(0));
                sent.insert(w, mine);
                contributions.push((fleet_window(w, shift), mine));
            }
            let push = BudgetPush {
                replica: self.replica,
                window: fleet_window(window, shift),
                window_nanos,
                contributions,
            };
            Some((push, sent))
        })?;
        self.sent = Some(sent);
        Some(push)
    }

    /// Ends a sync with the store's totals per fleet window: the others' share becomes
    /// `total − what was sent`, and the local slots `others + this replica's current
    /// contribution` (which includes what happened while the push was in flight).
    pub fn finish(&mut self, now: Time, budget: &SharedBudget, totals: &[(u64, i64)]) {
        let Some(sent) = self.sent.take() else { return };
        budget.with_mut(|budget| {
            let Budget::Ratio(ratio) = budget else { return };
            let (window, window_nanos) = ratio.advance_to(now);
            let shift = self.shift(window_nanos);
            let oldest = window.saturating_sub(WINDOWS - 1);
            for &(fleet, total) in totals {
                let Some(w) = local_window(fleet, shift) else {
                    continue;
                };
                if w < oldest || w > window {
                    continue;
                }
                let others_before = self.others.get(&w).copied().unwrap_or(0);
                let mine_now = ratio.window_units(w).saturating_sub(others_before);
                let others = total.saturating_sub(sent.get(&w).copied().unwrap_or(0));
                ratio.set_window_units(w, others.saturating_add(mine_now));
                self.others.insert(w, others);
            }
            self.others.retain(|w, _| *w >= oldest);
        });
    }

    /// Ends a sync that failed: nothing changes; the next push sends the same
    /// absolute numbers again (and whatever changed since).
    pub fn abort(&mut self) {
        self.sent = None;
    }

    /// Whether a push is in flight.
    #[must_use]
    pub fn in_flight(&self) -> bool {
        self.sent.is_some()
    }

    /// How many windows the fleet clock is ahead of the local one (floor).
    fn shift(&self, window_nanos: u64) -> i128 {
        self.clock
            .offset_nanos()
            .div_euclid(i128::from(window_nanos.max(1)))
    }
}

fn fleet_window(local: u64, shift: i128) -> u64 {
    u64::try_from((i128::from(local) + shift).max(0)).unwrap_or(u64::MAX)
}

fn local_window(fleet: u64, shift: i128) -> Option<u64> {
    u64::try_from(i128::from(fleet) - shift).ok()
}

/// The store's side of shared budgets (the reference the Redis adapter's script
/// follows): per window a total, per replica its latest contribution to each window.
#[derive(Clone, Debug, Default)]
pub struct BudgetStore {
    /// The latest window any push named.
    current: u64,
    totals: BTreeMap<u64, i64>,
    contributions: BTreeMap<(u64, u64), i64>,
}

impl BudgetStore {
    /// An empty budget.
    #[must_use]
    pub fn new() -> BudgetStore {
        BudgetStore::default()
    }

    /// Applies a push: windows older than the live ten are dropped, each live window's
    /// total moves by `contribution − previous contribution` of the sender. Returns
    /// the totals of the sender's ten windows (oldest first, zeros included).
    pub fn apply(&mut self, push: &BudgetPush) -> Vec<(u64, i64)> {
        self.current = self.current.max(push.window);
        let oldest = self.current.saturating_sub(WINDOWS - 1);
        self.totals.retain(|w, _| *w >= oldest);
        self.contributions.retain(|(w, _), _| *w >= oldest);
        for &(w, units) in &push.contributions {
            if w < oldest || w > self.current {
                continue;
            }
            let previous = self
                .contributions
                .insert((w, push.replica), units)
                .unwrap_or(0);
            let total = self.totals.entry(w).or_insert(0);
            *total = total.saturating_add(units.saturating_sub(previous));
        }
        (push.window.saturating_sub(WINDOWS - 1)..=push.window)
            .map(|w| (w, self.totals.get(&w).copied().unwrap_or(0)))
            .collect()
    }

    /// A window's total (0 if none).
    #[must_use]
    pub fn total(&self, window: u64) -> i64 {
        self.totals.get(&window).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::budget::{RatioConfig, RetryReason};
    use crate::fleet::FleetTime;

    fn budget() -> SharedBudget {
        // No reserve: every retry is paid for by a request (one retry per two).
        SharedBudget::new(Budget::Ratio(RatioBudget::new(&RatioConfig {
            ratio: 0.5,
            min_per_sec: 0,
            ttl: Duration::from_secs(10),
        })))
    }

    fn available(b: &SharedBudget, now: Time) -> f64 {
        b.with(|b| b.available(now))
    }

    fn sync(mirror: &mut BudgetMirror, store: &mut BudgetStore, b: &SharedBudget, now: Time) {
        let push = mirror.begin(now, b).unwrap();
        // Live windows only: the ten up to the push's own.
        assert!(
            push.contributions
                .iter()
                .all(|&(w, _)| w <= push.window && w + WINDOWS > push.window),
            "{push:?}"
        );
        let totals = store.apply(&push);
        mirror.finish(now, b, &totals);
    }

    #[test]
    fn replicas_see_each_others_deposits_and_withdrawals() {
        let clock = FleetClock::new(Time::ZERO, FleetTime::from_millis(1_700_000_000_000));
        let (a, b) = (budget(), budget());
        let mut ma = BudgetMirror::new(1, clock);
        let mut mb = BudgetMirror::new(2, clock);
        let mut store = BudgetStore::new();
        let t = Time::from_millis(10);
        for _ in 0..4 {
            a.on_request(t);
        }
        assert_eq!(available(&a, t), 2.0);
        assert_eq!(available(&b, t), 0.0);
        sync(&mut ma, &mut store, &a, t);
        sync(&mut mb, &mut store, &b, t);
        assert_eq!(available(&b, t), 2.0, "B sees A's deposits");
        assert!(b.try_withdraw(t, RetryReason::Error).is_ok());
        assert!(b.try_withdraw(t, RetryReason::Error).is_ok());
        assert!(b.try_withdraw(t, RetryReason::Error).is_err());
        sync(&mut mb, &mut store, &b, t);
        // Syncing twice changes nothing: contributions are absolute.
        sync(&mut mb, &mut store, &b, t);
        sync(&mut ma, &mut store, &a, t);
        assert_eq!(available(&a, t), 0.0, "A sees B's withdrawals");
        assert!(a.try_withdraw(t, RetryReason::Error).is_err());
        // Everything expires with its window, fleet-wide: 10 s later nothing is left.
        let later = Time::from_secs(11);
        sync(&mut ma, &mut store, &a, later);
        assert_eq!(available(&a, later), 0.0);
        a.on_request(later);
        a.on_request(later);
        sync(&mut ma, &mut store, &a, later);
        sync(&mut mb, &mut store, &b, later);
        assert_eq!(available(&b, later), 1.0);
    }

    /// Windows are numbered on the fleet clock: replicas whose local clocks started
    /// 20 s apart still share each window.
    #[test]
    fn replicas_with_different_local_clocks_share_windows() {
        let fleet = FleetTime::from_millis(1_700_000_000_000);
        let (a, b) = (budget(), budget());
        let mut ma = BudgetMirror::new(1, FleetClock::new(Time::ZERO, fleet));
        let mut mb = BudgetMirror::new(2, FleetClock::new(Time::from_secs(20), fleet));
        let mut store = BudgetStore::new();
        let (ta, tb) = (Time::from_millis(10), Time::from_millis(20_010));
        for _ in 0..4 {
            a.on_request(ta);
        }
        sync(&mut ma, &mut store, &a, ta);
        sync(&mut mb, &mut store, &b, tb);
        assert_eq!(available(&b, tb), 2.0, "B sees A's deposits"); // One push at a time: in flight from `begin` until its reply or failure.
        let push = ma.begin(ta, &a).unwrap();
        assert!(ma.in_flight());
        assert!(ma.begin(ta, &a).is_none());
        ma.abort();
        assert!(!ma.in_flight());
        let totals = store.apply(&push);
        assert!(ma.begin(ta, &a).is_some());
        ma.finish(ta, &a, &totals);
        assert!(!ma.in_flight());
    }

    #[test]
    fn changes_during_a_push_are_kept_and_a_failed_push_is_resent() {
        let clock = FleetClock::identity();
        let (a, b) = (budget(), budget());
        let mut ma = BudgetMirror::new(1, clock);
        let mut mb = BudgetMirror::new(2, clock);
        let mut store = BudgetStore::new();
        let t = Time::from_millis(500);
        b.on_request(t);
        b.on_request(t);
        sync(&mut mb, &mut store, &b, t);
        a.on_request(t);
        a.on_request(t);
        let push = ma.begin(t, &a).unwrap();
        assert!(ma.begin(t, &a).is_none(), "one push at a time");
        // Two more requests while the push is in flight.
        a.on_request(t);
        a.on_request(t);
        let totals = store.apply(&push);
        ma.finish(t, &a, &totals);
        assert_eq!(available(&a, t), 3.0, "B's 1 + A's 2 (with the 1 sent)");
        // A push that failed: its numbers go again, and count once.
        let lost = ma.begin(t, &a).unwrap();
        let _ = store.apply(&lost);
        ma.abort();
        assert!(!ma.in_flight());
        sync(&mut ma, &mut store, &a, t);
        sync(&mut mb, &mut store, &b, t);
        assert_eq!(available(&b, t), 3.0);
        // A replica whose first sync comes three windows later gets the share of every
        // live window, not only of its current one.
        let c = budget();
        let later = Time::from_millis(3_500);
        sync(&mut BudgetMirror::new(3, clock), &mut store, &c, later);
        assert_eq!(available(&c, later), 3.0);
    }

    /// Totals for windows outside the live ten (an expired one shares its ring slot
    /// with a live one; a future one has none yet) are dropped, not mixed into a slot.
    #[test]
    fn totals_for_windows_out_of_range_are_ignored() {
        let b = budget();
        let mut m = BudgetMirror::new(1, FleetClock::identity());
        let t = Time::from_secs(12);
        b.on_request(t);
        b.on_request(t);
        assert_eq!(available(&b, t), 1.0);
        let push = m.begin(t, &b).unwrap();
        let expired = push.window - WINDOWS;
        let future = push.window + 1;
        m.finish(t, &b, &[(expired, 50_000_000), (future, 50_000_000)]);
        assert_eq!(available(&b, t), 1.0);
        // Nor does the future total linger as the others' share of that window: once
        // it is the current window, this replica sends what it counted there in full.
        let later = Time::from_secs(13);
        b.on_request(later);
        b.on_request(later);
        let push = m.begin(later, &b).unwrap();
        let fresh = BudgetMirror::new(1, FleetClock::identity())
            .begin(later, &b)
            .unwrap();
        assert_eq!(push.window, future);
        assert_eq!(push.contributions, fresh.contributions);
        assert!(
            push.contributions
                .iter()
                .any(|&(w, units)| w == future && units > 0)
        );
    }

    #[test]
    fn other_budget_kinds_stay_local() {
        let quota = SharedBudget::new(Budget::new(&crate::BudgetConfig::Quota(
            crate::QuotaConfig::default(),
        )));
        let mut m = BudgetMirror::new(1, FleetClock::identity());
        assert!(m.begin(Time::ZERO, &quota).is_none());
        m.finish(Time::ZERO, &quota, &[(0, 5)]);
        assert_eq!(available(&quota, Time::ZERO), 100.0);
    }

    #[test]
    fn the_store_drops_windows_that_expired() {
        let mut s = BudgetStore::new();
        let push = |replica, window, contributions: Vec<(u64, i64)>| BudgetPush {
            replica,
            window,
            window_nanos: 1,
            contributions,
        };
        s.apply(&push(1, 5, vec![(5, 10), (4, 3)]));
        s.apply(&push(2, 5, vec![(5, 1), (6, 4)]));
        assert_eq!(s.total(5), 11);
        assert_eq!(s.total(4), 3, "an earlier live window counts");
        assert_eq!(s.total(6), 0, "a window past the latest pushed does not");
        s.apply(&push(1, 5, vec![(5, 7)]));
        assert_eq!(s.total(5), 8);
        let totals = s.apply(&push(2, 14, vec![(14, 2), (3, 99)]));
        assert_eq!(totals.len(), 10);
        assert_eq!(totals[0], (5, 8));
        assert_eq!(s.total(3), 0, "too old to count");
        s.apply(&push(2, 15, vec![]));
        assert_eq!(s.total(5), 0, "expired");
    }
}
