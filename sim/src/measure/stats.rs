//! The measures as pure functions of counts: the herd index, the sliding peak, and
//! the recovery time. Kept apart from the collector so each is tested on known inputs.

use std::collections::VecDeque;
use std::time::Duration;

use breakwater_core::Time;
use serde::Serialize;

/// Peak-to-mean of per-bucket counts: 1 for perfectly even arrivals, large when
/// attempts bunch up (the thundering-herd index). 0 when there are no arrivals.
#[must_use]
pub fn herd_index(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if counts.is_empty() || total == 0 {
        return 0.0;
    }
    let peak = counts.iter().copied().max().unwrap_or(0);
    peak as f64 * counts.len() as f64 / total as f64
}

/// The most arrivals in any window `width` long, computed exactly over a stream of
/// non-decreasing times (an earlier time counts as the latest seen): every window that
/// attains the maximum can be slid to end at an arrival, so checking the windows
/// `(t − width, t]` ending at each arrival suffices.
#[derive(Clone, Debug)]
pub struct PeakWindow {
    /// The width in nanoseconds (compared as plain integers on every push).
    width_ns: u64,
    recent: VecDeque<u64>,
    last: u64,
    peak: u64,
}

impl PeakWindow {
    /// A window `width` long.
    #[must_use]
    pub fn new(width: Duration) -> PeakWindow {
        PeakWindow {
            width_ns: u64::try_from(width.as_nanos()).unwrap_or(u64::MAX),
            recent: VecDeque::new(),
            last: 0,
            peak: 0,
        }
    }

    /// One arrival at `at`.
    pub fn push(&mut self, at: Time) {
        let at = at.as_nanos().max(self.last);
        self.last = at;
        self.recent.push_back(at);
        // Every entry is at most `at` (arrivals are kept non-decreasing).
        while let Some(&front) = self.recent.front() {
            if at - front >= self.width_ns {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        self.peak = self.peak.max(self.recent.len() as u64);
    }

    /// The largest count so far.
    #[must_use]
    pub fn peak(&self) -> u64 {
        self.peak
    }
}

/// How long the success rate took to come back after the storm.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Recovery {
    /// Back within tolerance of the pre-storm rate `after_s` seconds after the storm
    /// ended, and stayed there until the end of the run.
    Recovered {
        /// Seconds after the storm's end.
        after_s: f64,
    },
    /// Never back within tolerance for good before the run ended.
    NotRecovered,
    /// The scenario has no storm.
    NoStorm,
    /// No request started before the storm, so there is nothing to recover to.
    NoBaseline,
}

/// The inputs of [`recovery`]: per-bucket counts of requests (by start time) and of
/// those that succeeded.
#[derive(Clone, Copy, Debug)]
pub struct RecoveryInput<'a> {
    /// Requests started in each bucket.
    pub requests: &'a [u64],
    /// Of those, the ones that succeeded.
    pub successes: &'a [u64],
    /// The bucket width.
    pub bucket: Duration,
    /// The storm window `[from, to)`.
    pub storm: Option<(Time, Time)>,
    /// The trailing window the rate is measured over.
    pub window: Duration,
    /// How close to the pre-storm rate counts as recovered (0.01 = 1 percentage point).
    pub tolerance: f64,
}

/// The recovery time: the pre-storm success rate is that of requests started before
/// the storm; after the storm ends, at each bucket end `t`, the rate over the trailing
/// window `[max(storm end, t − window), t)` is compared with it. Recovery is the first
/// such `t` from which every later window (with any requests) is at least
/// `baseline − tolerance` (doing better than before counts as recovered). Windows
/// start no earlier than the storm's end, so storm buckets never count for recovery.
#[must_use]
pub fn recovery(input: RecoveryInput<'_>) -> Recovery {
    let Some((from, to)) = input.storm else {
        return Recovery::NoStorm;
    };
    let bucket_ns = input.bucket.as_nanos().max(1) as u64;
    let n = input.requests.len().min(input.successes.len());
    let index = |t: Time| ((t.as_nanos() / bucket_ns) as usize).min(n);
    // Pre-storm: buckets that end by the storm's start.
    let pre = index(from);
    let (req, ok) = sums(input, 0, pre);
    if req == 0 {
        return Recovery::NoBaseline;
    }
    let baseline = ok as f64 / req as f64;
    let first = to.as_nanos().div_ceil(bucket_ns) as usize; // first bucket starting at or after `to`
    let width = (input.window.as_nanos() as u64).div_ceil(bucket_ns).max(1) as usize;
    let mut recovered_at: Option<usize> = None;
    for end in first + 1..=n {
        let start = end.saturating_sub(width).max(first);
        let (req, ok) = sums(input, start, end);
        if req == 0 {
            continue;
        }
        // The epsilon keeps "exactly 1 point below" inside despite rounding.
        if (ok as f64 / req as f64) >= baseline - input.tolerance - 1e-12 {
            recovered_at.get_or_insert(end);
        } else {
            recovered_at = None;
        }
    }
    match recovered_at {
        Some(end) => {
            let t = Time::from_nanos(end as u64 * bucket_ns);
            Recovery::Recovered {
                after_s: (t - to).as_secs_f64(),
            }
        }
        None => Recovery::NotRecovered,
    }
}

fn sums(input: RecoveryInput<'_>, from: usize, to: usize) -> (u64, u64) {
    let r = input.requests.get(from..to).unwrap_or(&[]).iter().sum();
    let s = input.successes.get(from..to).unwrap_or(&[]).iter().sum();
    (r, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn herd_index_of_known_counts() {
        assert_eq!(herd_index(&[5, 5, 5, 5]), 1.0);
        assert_eq!(herd_index(&[20, 0, 0, 0]), 4.0);
        assert_eq!(herd_index(&[1, 3]), 1.5);
        assert_eq!(herd_index(&[]), 0.0);
        assert_eq!(herd_index(&[0, 0]), 0.0);
    }

    #[test]
    fn peak_window_is_exact() {
        let ms = Time::from_millis;
        let mut p = PeakWindow::new(Duration::from_millis(20));
        // 3 at 0–10 ms, then 4 within 19 ms starting at 25 ms, then sparse.
        for t in [0, 5, 10, 25, 30, 40, 44, 70, 100] {
            p.push(ms(t));
        }
        assert_eq!(p.peak(), 4);
        // Boundaries: arrivals exactly 20 ms apart are not in one 20 ms window.
        let mut p = PeakWindow::new(Duration::from_millis(20));
        for t in [0, 20, 40, 60] {
            p.push(ms(t));
        }
        assert_eq!(p.peak(), 1);
        // Simultaneous arrivals all count; an out-of-order time counts as the last.
        let mut p = PeakWindow::new(Duration::from_millis(20));
        for t in [50, 50, 50, 10, 69, 70] {
            p.push(ms(t));
        }
        assert_eq!(p.peak(), 5);
    }

    #[test]
    fn peak_window_matches_brute_force() {
        let times: Vec<u64> = (0..400u64).map(|i| (i * i * 7919) % 5_000).collect();
        let mut sorted = times.clone();
        sorted.sort_unstable();
        let mut p = PeakWindow::new(Duration::from_millis(20));
        for &t in &sorted {
            p.push(Time::from_millis(t));
        }
        let brute = (0..5_000u64)
            .map(|a| sorted.iter().filter(|&&t| t >= a && t < a + 20).count() as u64)
            .max()
            .unwrap();
        assert_eq!(p.peak(), brute);
    }

    proptest::proptest! {
        /// Against the plain definition: after each push, the count of times held in
        /// `(at − width, at]`, the times taken as pushed but never below the latest.
        /// Bursts of up to 300 arrivals, lulls that empty the window, times out of
        /// order, and a width of zero.
        #[test]
        fn peak_window_counts_as_defined(
            bursts in proptest::collection::vec(
                (1usize..300, 0u64..20_000, 0u64..40_000_000, proptest::bool::weighted(0.1)),
                1..12,
            ),
            width_ns in proptest::prop_oneof![proptest::strategy::Just(0u64), 0u64..20_000_000],
        ) {
            let mut p = PeakWindow::new(Duration::from_nanos(width_ns));
            let (mut held, mut last, mut peak) = (Vec::new(), 0u64, 0u64);
            for (count, step, gap, backwards) in bursts {
                for i in 0..count {
                    // `count` arrivals `step` apart, the first after a lull of `gap`
                    // (or `gap` before the latest time: out of order).
                    let t = match (i, backwards) {
                        (0, false) => last + gap,
                        (0, true) => last.saturating_sub(gap),
                        _ => last + step,
                    };
                    p.push(Time::from_nanos(t));
                    last = last.max(t);
                    held.push(last);
                    let in_window = held.iter().filter(|&&h| last - h < width_ns).count();
                    peak = peak.max(in_window as u64);
                    proptest::prop_assert_eq!(p.peak(), peak);
                }
            }
        }
    }

    fn input<'a>(requests: &'a [u64], successes: &'a [u64]) -> RecoveryInput<'a> {
        RecoveryInput {
            requests,
            successes,
            bucket: Duration::from_secs(1),
            storm: Some((Time::from_secs(3), Time::from_secs(5))),
            window: Duration::from_secs(2),
            tolerance: 0.01,
        }
    }

    #[test]
    fn recovery_on_synthetic_series() {
        let req = [100; 12];
        // Pre-storm 99%; storm 10%; after: 50, 90, 98.5, 99, 99, …
        let ok = [99, 99, 99, 10, 10, 50, 90, 96, 99, 99, 99, 99];
        // Windows (clipped at 5 s): [5,6)=50%, [5,7)=70%, [6,8)=93%, [7,9)=97.5%, [8,10)=99% ✓…
        assert_eq!(
            recovery(input(&req, &ok)),
            Recovery::Recovered { after_s: 5.0 }
        );
        // Immediate recovery: the first post-storm bucket is already fine.
        let ok = [99, 99, 99, 10, 10, 99, 99, 99, 99, 99, 99, 99];
        assert_eq!(
            recovery(input(&req, &ok)),
            Recovery::Recovered { after_s: 1.0 }
        );
        // A relapse resets the clock: must stay recovered.
        let ok = [99, 99, 99, 10, 10, 99, 99, 50, 50, 99, 99, 99];
        assert_eq!(
            recovery(input(&req, &ok)),
            Recovery::Recovered { after_s: 6.0 }
        );
        // Metastable: never comes back.
        let ok = [99, 99, 99, 10, 10, 60, 60, 60, 60, 60, 60, 60];
        assert_eq!(recovery(input(&req, &ok)), Recovery::NotRecovered);
        // Within 1 point counts; better than before counts.
        let ok = [99, 99, 99, 10, 10, 98, 100, 98, 98, 98, 98, 98];
        assert_eq!(
            recovery(input(&req, &ok)),
            Recovery::Recovered { after_s: 1.0 }
        );
    }

    #[test]
    fn recovery_edge_cases() {
        let req = [0, 0, 0, 100, 100, 100];
        let ok = [0, 0, 0, 0, 0, 100];
        assert_eq!(recovery(input(&req, &ok)), Recovery::NoBaseline);
        let none = RecoveryInput {
            storm: None,
            ..input(&req, &ok)
        };
        assert_eq!(recovery(none), Recovery::NoStorm);
        // The run ends with the storm: no evidence of recovery.
        let req = [100; 5];
        let ok = [100, 100, 100, 0, 0];
        assert_eq!(recovery(input(&req, &ok)), Recovery::NotRecovered);
        // Empty buckets after the storm are skipped, not counted as failures.
        let req = [100, 100, 100, 100, 100, 0, 0, 100];
        let ok = [100, 100, 100, 0, 0, 0, 0, 100];
        assert_eq!(
            recovery(input(&req, &ok)),
            Recovery::Recovered { after_s: 3.0 }
        );
    }
}
