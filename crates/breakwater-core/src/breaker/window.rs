//! Lock-free call statistics for the closed state: the last N calls, or the calls of
//! the last span of time.
//!
//! # Orderings and accepted inaccuracies
//!
//! Every access here is `Relaxed`. The windows publish no other memory: each counter
//! is only ever combined with others into a rate that decides whether to *ask* for a
//! trip, and the trip itself is re-checked under the breaker's lock (the closed period
//! must still be current). Each atomic's own modification order is all the code relies
//! on, and no ordering could make several atomics change as one anyway. What that
//! costs, all bounded by the number of records racing each other, and none lasting
//! past the next clear (each new closed period starts from zero):
//!
//! - **Count window.** A record takes its slot with `fetch_add` on the call index and
//!   then writes the slot's flags; a reader in between sees the call counted with its
//!   slot's old flags. Two racing flag changes may adjust a counter in the opposite
//!   order to their swaps, so a counter can dip below zero for a moment: readers clamp
//!   every counter to `[0, calls]`. Two records `size` calls apart that race for one
//!   slot leave one of their flags; the counters follow the swaps, so they still agree
//!   with the flags once the racers are done. A record of the previous closed period
//!   that passed the gate check before the clear may land after it, leaving a counter
//!   off by one until the next clear. A fast success into a full window whose counters
//!   read zero is skipped (see `CountWindow::settled`): it reads as if it came before
//!   any flag change racing it. A counter left off by one (above) can make a settled
//!   window look unsettled, which only costs the skip, or an unsettled one look
//!   settled, which leaves the stray flag in place until pushes move past it.
//! - **Time window.** A bucket is tagged with its epoch (the bucket-width interval it
//!   counts, plus one, so 0 means empty). The first record of a new epoch resets the
//!   bucket by a CAS on the tag and then stores zeros in its counters; a record that
//!   saw the new tag and counted between the CAS and the zeroing is lost, and a reader
//!   in between may credit the stale counts to the new epoch. A record whose epoch is
//!   older than its bucket's tag (a `now` from a thread that fell behind by a whole
//!   window) is dropped.

use super::Window;
use super::gate::Padded;
use crate::Time;
use crate::sync::Ordering::Relaxed;
use crate::sync::{AtomicU8, AtomicU32, AtomicU64};
use crate::time::nanos;

/// Calls, failures and slow calls in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Totals {
    pub(super) calls: u32,
    pub(super) failures: u32,
    pub(super) slow: u32,
}

/// A count or time window.
// The count window is large only because its call index sits on a cache line of its
// own; there is one window per breaker, and boxing it would add a pointer chase to
// every record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Stats {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Stats {
    /// An empty window. Sizes outside the validated ranges are clamped into them.
    pub(super) fn new(window: Window) -> Stats {
        match window {
            Window::Count { size } => Stats::Count(CountWindow::new(size)),
            Window::Time { span, buckets } => Stats::Time(TimeWindow::new(nanos(span), buckets)),
        }
    }

    #[inline]
    pub(super) fn push(&self, now: Time, failure: bool, slow: bool) {
        match self {
            Stats::Count(w) => w.push(failure, slow),
            Stats::Time(w) => w.push(now, failure, slow),
        }
    }

    /// Whether a fast success would change nothing: a full count window without a
    /// failure or a slow call (a time window counts every call).
    #[inline]
    pub(super) fn settled(&self) -> bool {
        match self {
            Stats::Count(w) => w.settled(),
            Stats::Time(_) => false,
        }
    }

    pub(super) fn totals(&self, now: Time) -> Totals {
        match self {
            Stats::Count(w) => w.totals(),
            Stats::Time(w) => w.totals(now),
        }
    }

    /// Empties the window. Called under the breaker's lock, before a new closed
    /// period is published.
    pub(super) fn clear(&self) {
        match self {
            Stats::Count(w) => w.clear(),
            Stats::Time(w) => w.clear(),
        }
    }
}

const FAILURE: u8 = 1;
const SLOW: u8 = 2;

const fn flags(failure: bool, slow: bool) -> u8 {
    (failure as u8) | ((slow as u8) << 1)
}

/// The last `size` calls: a ring of per-call flags plus running counts of the set
/// flags. A successful, fast call over a successful, fast call writes nothing but the
/// call index.
#[derive(Debug)]
pub(super) struct CountWindow {
    next: Padded<AtomicU64>,
    len: Modulus,
    slots: Box<[AtomicU8]>,
    failures: AtomicU32,
    slow: AtomicU32,
    /// Set flags plus slots not yet written: zero exactly when the window is settled
    /// (full, and clear of failures and slow calls), so that the check the closed
    /// state makes on every fast success is one load. Moved with the flags it counts
    /// (wrapping, as they do), and by each of the first `size` pushes.
    unsettled: AtomicU32,
}

impl CountWindow {
    fn new(size: u32) -> CountWindow {
        let size = size.clamp(1, Window::MAX_SIZE);
        CountWindow {
            next: Padded(AtomicU64::new(0)),
            len: Modulus::new(size),
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            failures: AtomicU32::new(0),
            slow: AtomicU32::new(0),
            unsettled: AtomicU32::new(size),
        }
    }

    #[inline]
    fn push(&self, failure: bool, slow: bool) {
        let new = flags(failure, slow);
        if new == 0 && self.settled() {
            return;
        }
        let index = self.next.fetch_add(1, Relaxed);
        // One slot fewer left unwritten (each index is one push's).
        let mut unsettled = u32::from(index < self.slots.len() as u64).wrapping_neg();
        let slot = &self.slots[self.len.rem(index)];
        if slot.load(Relaxed) != new {
            let old = slot.swap(new, Relaxed);
            adjust(&self.failures, old, new, FAILURE);
            adjust(&self.slow, old, new, SLOW);
            unsettled = unsettled
                .wrapping_add(new.count_ones())
                .wrapping_sub(old.count_ones());
        }
        if unsettled != 0 {
            self.unsettled.fetch_add(unsettled, Relaxed);
        }
    }

    /// Whether the window is full and holds no failure and no slow call. A fast
    /// success then changes nothing that can be observed: it would write a clear flag
    /// over a clear flag, and a ring of clear flags reads the same from any position.
    /// So it is skipped, and the closed state's common record reads one word and
    /// writes none (no locked instruction, no cache line taken from other cores).
    #[inline]
    fn settled(&self) -> bool {
        self.unsettled.load(Relaxed) == 0
    }

    fn totals(&self) -> Totals {
        let len = self.slots.len() as u64;
        // At most MAX_SIZE: lossless.
        let calls = self.next.load(Relaxed).min(len) as u32;
        Totals {
            calls,
            failures: clamp(&self.failures, calls),
            slow: clamp(&self.slow, calls),
        }
    }

    fn clear(&self) {
        for slot in &self.slots {
            slot.store(0, Relaxed);
        }
        self.failures.store(0, Relaxed);
        self.slow.store(0, Relaxed);
        // At most MAX_SIZE: lossless.
        self.unsettled.store(self.slots.len() as u32, Relaxed);
        self.next.store(0, Relaxed);
    }
}

/// Moves `counter` by the change of `bit` from `old` to `new` (wrapping: see [`clamp`]).
fn adjust(counter: &AtomicU32, old: u8, new: u8, bit: u8) {
    match (old & bit != 0, new & bit != 0) {
        (false, true) => {
            counter.fetch_add(1, Relaxed);
        }
        (true, false) => {
            counter.fetch_sub(1, Relaxed);
        }
        _ => {}
    }
}

/// A counter read as signed (racing adjustments may take it below zero for a moment)
/// and clamped to `[0, calls]`.
fn clamp(counter: &AtomicU32, calls: u32) -> u32 {
    // Reinterpreting the bits as signed is the point: a wrapped-around -1 reads as -1.
    let value = counter.load(Relaxed) as i32;
    u32::try_from(value).unwrap_or(0).min(calls)
}

/// The calls of the last `buckets` bucket-width intervals.
#[derive(Debug)]
pub(super) struct TimeWindow {
    width: u64,
    /// The latest epoch a record computed: `now` in its interval needs no division.
    hint: AtomicU64,
    len: Modulus,
    buckets: Box<[Bucket]>,
}

#[derive(Debug, Default)]
struct Bucket {
    /// `now / width + 1` of the interval counted here; 0 when empty.
    epoch: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
    slow: AtomicU32,
}

impl TimeWindow {
    fn new(span: u64, buckets: u32) -> TimeWindow {
        let buckets = buckets.clamp(1, Window::MAX_BUCKETS);
        TimeWindow {
            width: (span / u64::from(buckets)).max(1),
            hint: AtomicU64::new(1),
            len: Modulus::new(buckets),
            buckets: (0..buckets).map(|_| Bucket::default()).collect(),
        }
    }

    /// The epoch of `now` (never 0) and its bucket.
    #[inline]
    fn bucket(&self, now: Time) -> (u64, &Bucket) {
        let now = now.as_nanos();
        let hint = self.hint.load(Relaxed);
        let start = hint.saturating_sub(1).saturating_mul(self.width);
        let epoch = if now >= start && now - start < self.width {
            hint
        } else {
            let epoch = (now / self.width).saturating_add(1);
            if epoch > hint {
                self.hint.store(epoch, Relaxed);
            }
            epoch
        };
        (epoch, &self.buckets[self.len.rem(epoch)])
    }

    #[inline]
    fn push(&self, now: Time, failure: bool, slow: bool) {
        let (epoch, bucket) = self.bucket(now);
        let tag = bucket.epoch.load(Relaxed);
        if tag != epoch {
            if tag > epoch {
                return;
            }
            match bucket.epoch.compare_exchange(tag, epoch, Relaxed, Relaxed) {
                Ok(_) => {
                    bucket.calls.store(0, Relaxed);
                    bucket.failures.store(0, Relaxed);
                    bucket.slow.store(0, Relaxed);
                }
                Err(seen) if seen > epoch => return,
                Err(_) => {}
            }
        }
        bucket.calls.fetch_add(1, Relaxed);
        if failure {
            bucket.failures.fetch_add(1, Relaxed);
        }
        if slow {
            bucket.slow.fetch_add(1, Relaxed);
        }
    }

    fn totals(&self, now: Time) -> Totals {
        let (epoch, _) = self.bucket(now);
        let len = self.buckets.len() as u64;
        let mut totals = Totals::default();
        for bucket in &self.buckets {
            let tag = bucket.epoch.load(Relaxed);
            if tag != 0 && tag <= epoch && epoch - tag < len {
                let calls = bucket.calls.load(Relaxed);
                totals.calls = totals.calls.saturating_add(calls);
                totals.failures = totals
                    .failures
                    .saturating_add(bucket.failures.load(Relaxed).min(calls));
                totals.slow = totals
                    .slow
                    .saturating_add(bucket.slow.load(Relaxed).min(calls));
            }
        }
        totals
    }

    fn clear(&self) {
        for bucket in &self.buckets {
            bucket.epoch.store(0, Relaxed);
            bucket.calls.store(0, Relaxed);
            bucket.failures.store(0, Relaxed);
            bucket.slow.store(0, Relaxed);
        }
    }
}

/// `x % divisor` without a division for `x` below 2³² (Lemire, Kaser and Kurz,
/// "Faster Remainder by Direct Computation", 2019): two multiplications instead of a
/// `div`, which costs more than the rest of a record together.
#[derive(Debug)]
struct Modulus {
    divisor: u32,
    magic: u64,
}

impl Modulus {
    fn new(divisor: u32) -> Modulus {
        let divisor = divisor.max(1);
        Modulus {
            divisor,
            // For a divisor of 1 this wraps to 0, which gives the right remainder, 0.
            magic: (u64::MAX / u64::from(divisor)).wrapping_add(1),
        }
    }

    #[inline]
    fn rem(&self, x: u64) -> usize {
        let rem = match u32::try_from(x) {
            Ok(x) => {
                let low = self.magic.wrapping_mul(u64::from(x));
                // The high half of a 64 × 32-bit product: below the divisor, a u32.
                ((u128::from(low) * u128::from(self.divisor)) >> 64) as u32
            }
            // Below the divisor: lossless.
            Err(_) => (x % u64::from(self.divisor)) as u32,
        };
        rem as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn totals(calls: u32, failures: u32, slow: u32) -> Totals {
        Totals {
            calls,
            failures,
            slow,
        }
    }

    #[test]
    fn count_window_keeps_the_last_calls() {
        let w = Stats::new(Window::Count { size: 3 });
        w.push(Time::ZERO, true, false);
        w.push(Time::ZERO, true, true);
        assert_eq!(w.totals(Time::ZERO), totals(2, 2, 1));
        w.push(Time::ZERO, false, false);
        w.push(Time::ZERO, false, false);
        assert_eq!(w.totals(Time::ZERO), totals(3, 1, 1));
        w.push(Time::ZERO, false, false);
        assert_eq!(w.totals(Time::ZERO), totals(3, 0, 0));
        w.push(Time::ZERO, true, true);
        w.clear();
        assert_eq!(w.totals(Time::ZERO), totals(0, 0, 0));
        w.push(Time::ZERO, false, true);
        assert_eq!(w.totals(Time::ZERO), totals(1, 0, 1));
    }

    #[test]
    fn time_window_forgets_old_buckets() {
        let w = Stats::new(Window::Time {
            span: Duration::from_secs(3),
            buckets: 3,
        });
        let at = Time::from_millis;
        w.push(at(0), true, false);
        w.push(at(1500), false, true);
        assert_eq!(w.totals(at(2999)), totals(2, 1, 1));
        // At 3 s the first bucket's interval [0, 1 s) leaves the window.
        assert_eq!(w.totals(at(3000)), totals(1, 0, 1));
        w.push(at(3100), true, false);
        assert_eq!(w.totals(at(3100)), totals(2, 1, 1));
        // A record older than its bucket's content is dropped.
        w.push(at(100), true, true);
        assert_eq!(w.totals(at(3100)), totals(2, 1, 1));
        assert_eq!(w.totals(at(10_000)), totals(0, 0, 0));
        w.clear();
        assert_eq!(w.totals(at(3100)), totals(0, 0, 0));
    }

    #[test]
    fn unvalidated_sizes_are_clamped() {
        let w = Stats::new(Window::Count { size: 0 });
        w.push(Time::ZERO, true, false);
        assert_eq!(w.totals(Time::ZERO), totals(1, 1, 0));
        let w = Stats::new(Window::Time {
            span: Duration::ZERO,
            buckets: 0,
        });
        w.push(Time::MAX, true, false);
        assert_eq!(w.totals(Time::MAX), totals(1, 1, 0));
    }

    proptest::proptest! {
        #[test]
        fn modulus_matches_the_remainder(x: u64, small in 0u64..1 << 33, divisor in 0u32..=Window::MAX_SIZE + 7) {
            let m = Modulus::new(divisor);
            let d = u64::from(divisor.max(1));
            proptest::prop_assert_eq!(m.rem(x) as u64, x % d);
            proptest::prop_assert_eq!(m.rem(small) as u64, small % d);
        }
    }

    proptest::proptest! {
        /// The count window against a plain list of the last `size` calls, including
        /// the fast successes it skips once it is full and clear.
        #[test]
        fn count_window_matches_the_last_calls(
            size in 1u32..8,
            calls in proptest::collection::vec((proptest::bool::weighted(0.2), proptest::bool::weighted(0.1)), 0..80),
        ) {
            let w = Stats::new(Window::Count { size });
            let mut model: Vec<(bool, bool)> = Vec::new();
            for (failure, slow) in calls {
                w.push(Time::ZERO, failure, slow);
                model.push((failure, slow));
                let last = &model[model.len().saturating_sub(size as usize)..];
                let count = |f: fn(&(bool, bool)) -> bool| last.iter().filter(|c| f(c)).count() as u32;
                proptest::prop_assert_eq!(
                    w.totals(Time::ZERO),
                    totals(last.len() as u32, count(|c| c.0), count(|c| c.1))
                );
                // Settled: full, and nothing in it to clear.
                let settled = last.len() == size as usize && !last.iter().any(|c| c.0 || c.1);
                proptest::prop_assert_eq!(w.settled(), settled);
            }
        }

        /// The same after clears, which start the window over.
        #[test]
        fn a_cleared_count_window_starts_over(
            size in 1u32..8,
            calls in proptest::collection::vec((0u8..10, proptest::bool::weighted(0.2), proptest::bool::weighted(0.1)), 0..80),
        ) {
            let w = CountWindow::new(size);
            let mut model: Vec<(bool, bool)> = Vec::new();
            for (clear, failure, slow) in calls {
                if clear == 0 {
                    w.clear();
                    model.clear();
                }
                w.push(failure, slow);
                model.push((failure, slow));
                let last = &model[model.len().saturating_sub(size as usize)..];
                let settled = last.len() == size as usize && !last.iter().any(|c| c.0 || c.1);
                proptest::prop_assert_eq!(w.settled(), settled, "{:?}", model);
            }
        }
    }

    #[test]
    fn a_fast_success_into_a_full_clear_window_writes_nothing() {
        let w = CountWindow::new(2);
        for _ in 0..2 {
            w.push(false, false);
        }
        assert!(w.settled());
        w.push(false, false);
        assert_eq!(w.next.load(Relaxed), 2);
        w.push(false, true);
        assert!(!w.settled());
        assert_eq!(w.next.load(Relaxed), 3);
    }

    #[test]
    fn modulus_edges() {
        for divisor in [1, 2, 3, 7, 100, Window::MAX_SIZE, u32::MAX] {
            let m = Modulus::new(divisor);
            for x in [0, 1, u64::from(u32::MAX), u64::from(u32::MAX) + 1, u64::MAX] {
                assert_eq!(m.rem(x) as u64, x % u64::from(divisor), "{x} % {divisor}");
            }
        }
    }

    #[test]
    fn counters_below_zero_read_as_zero() {
        let counter = AtomicU32::new(0);
        counter.fetch_sub(1, Relaxed);
        assert_eq!(clamp(&counter, 5), 0);
        counter.store(9, Relaxed);
        assert_eq!(clamp(&counter, 5), 5);
    }

    #[test]
    fn racing_records_keep_counts_in_range() {
        let w = Stats::new(Window::Count { size: 7 });
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let w = &w;
                s.spawn(move || {
                    for i in 0..10_000u32 {
                        w.push(Time::ZERO, (i + t) % 3 == 0, i % 5 == 0);
                        let t = w.totals(Time::ZERO);
                        assert!(t.failures <= t.calls && t.slow <= t.calls);
                    }
                });
            }
        });
        // Quiescent: the counters match the flags exactly.
        let Stats::Count(c) = &w else { unreachable!() };
        let failures = c.slots.iter().filter(|s| s.load(Relaxed) & FAILURE != 0);
        assert_eq!(w.totals(Time::ZERO).failures as usize, failures.count());
    }
}
