//! Paired timings of two ways to make the same call (`examples/adapter_ab.rs`), and
//! what they say: both medians and the median of the per-pair differences with its 95%
//! confidence interval.
//!
//! The confidence interval of a median needs no assumption about the distribution:
//! with n values, the order statistics at n/2 ± 1.96·√n/2 bracket the median with 95%
//! probability.

use std::time::Duration;

/// The timings of one measured pair.
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    /// The call being measured (through `breakwater_http::Client`).
    pub ours: Duration,
    /// The same call the way it is compared with (bare reqwest).
    pub bare: Duration,
}

/// The medians of both sides and of the paired differences, with the difference's
/// 95% confidence interval, as a few lines of text.
pub fn report(samples: &[Pair], labels: [&str; 2]) -> String {
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let ours = median(samples.iter().map(|p| micros(p.ours)).collect());
    let bare = median(samples.iter().map(|p| micros(p.bare)).collect());
    let (diff, low, high) = median_with_ci(
        samples
            .iter()
            .map(|p| micros(p.ours) - micros(p.bare))
            .collect(),
    );
    let share = |x: f64| 100.0 * x / bare;
    format!(
        "{ours_label} vs {bare_label}: {n} interleaved pairs (ABBA), one loopback server\n\
         median call: {ours_label} {ours:.1} µs, {bare_label} {bare:.1} µs\n\
         median paired difference: {diff:+.2} µs (95% CI {low:+.2} to {high:+.2} µs) \
         = {:+.1}% of {bare_label}'s median (CI {:+.1}% to {:+.1}%)\n",
        share(diff),
        share(low),
        share(high),
        n = samples.len(),
        ours_label = labels[0],
        bare_label = labels[1],
    )
}

fn median(values: Vec<f64>) -> f64 {
    median_with_ci(values).0
}

/// The median of `values` and the order statistics that bracket it with 95%
/// confidence (clamped to the sample). Empty input gives NaNs.
pub fn median_with_ci(mut values: Vec<f64>) -> (f64, f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let mid = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    // Sample sizes are far below 2⁵², so the conversions are exact.
    let half_width = (1.96 * (n as f64).sqrt() / 2.0).ceil() as usize;
    let low = values[(n / 2).saturating_sub(half_width)];
    let high = values[(n / 2 + half_width).min(n - 1)];
    (mid, low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_its_interval() {
        let (mid, low, high) = median_with_ci((1..=101).map(f64::from).collect());
        assert_eq!(mid, 51.0);
        // n = 101: the median is the value at index 50, the half-width
        // ceil(1.96 · √101 / 2) = 10 indices.
        assert_eq!((low, high), (41.0, 61.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn the_report_states_the_difference_as_a_share_of_bare() {
        let samples: Vec<Pair> = (0..100)
            .map(|i| Pair {
                ours: Duration::from_micros(51 + i % 3),
                bare: Duration::from_micros(50 + i % 3),
            })
            .collect();
        let text = report(&samples, ["ours", "bare"]);
        assert!(text.contains("100 interleaved pairs"), "{text}");
        assert!(
            text.contains("median paired difference: +1.00 µs"),
            "{text}"
        );
        assert!(text.contains("= +2.0% of bare's median"), "{text}");
        assert!(
            text.starts_with("ours vs bare: 100 interleaved pairs"),
            "{text}"
        );
    }
}
