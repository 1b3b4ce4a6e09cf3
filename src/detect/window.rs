//! A rolling window of (event time, value) samples with an order-statistics view, for the robust
//! baselines (median, MAD) of `step`, `spike` and `cusum`.
//!
//! Bounded by age (`max_age_ms`: samples older than the newest minus the age are dropped), by
//! count (`max_len`), or both. A time window is also capped at [`MAX_WINDOW_SAMPLES`] so a fast
//! device with a long window cannot grow memory without bound (it then behaves as a count
//! window). Values are kept sorted beside the arrival queue, so the median is O(1) and a push is
//! a binary search plus a memmove; callers never push NaN (the input guard drops it).

use std::cmp::Ordering;
use std::collections::VecDeque;

use crate::model::EventTime;

/// Hard cap on the samples a window keeps.
pub(crate) const MAX_WINDOW_SAMPLES: usize = 10_000;

/// Consistency constant: 1.4826 × MAD estimates σ for normally distributed data.
pub(crate) const MAD_TO_SIGMA: f64 = 1.4826;

/// Default scale floor, relative to the baseline's magnitude (0.1 %), used when a detector's
/// `min_scale` is unset: a constant input has MAD 0, and z-scores must not divide by zero.
pub(crate) const REL_SCALE_FLOOR: f64 = 1e-3;

/// Absolute scale floor under everything (for baselines at 0).
pub(crate) const ABS_SCALE_FLOOR: f64 = 1e-6;

/// The scale (σ estimate) actually used: `raw`, but at least `min_scale` (metric units) or, when
/// unset, 0.1 % of |center|, and never below 1e-6. An overflowed spread (+inf, from absurd but
/// finite inputs) becomes the largest finite scale, so z-scores stay finite.
pub(crate) fn floored_scale(raw: f64, center: f64, min_scale: Option<f64>) -> f64 {
    let floor = min_scale
        .unwrap_or(REL_SCALE_FLOOR * center.abs())
        .max(ABS_SCALE_FLOOR);
    let floor = if floor.is_finite() { floor } else { f64::MAX };
    if raw.is_nan() {
        floor
    } else {
        raw.clamp(floor, f64::MAX)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RollingWindow {
    max_age_ms: Option<i64>,
    max_len: usize,
    items: VecDeque<(EventTime, f64)>,
    sorted: Vec<f64>,
}

fn less(a: &f64, b: &f64) -> bool {
    a.total_cmp(b) == Ordering::Less
}

impl RollingWindow {
    pub(crate) fn new(max_age_ms: Option<i64>, max_len: Option<usize>) -> Self {
        let max_len = max_len
            .unwrap_or(MAX_WINDOW_SAMPLES)
            .clamp(1, MAX_WINDOW_SAMPLES);
        RollingWindow {
            max_age_ms,
            max_len,
            items: VecDeque::new(),
            sorted: Vec::new(),
        }
    }

    /// Adds a sample (ts non-decreasing), then drops what fell out of the window.
    pub(crate) fn push(&mut self, ts: EventTime, value: f64) {
        let i = self.sorted.partition_point(|x| less(x, &value));
        self.sorted.insert(i, value);
        self.items.push_back((ts, value));
        while self.items.len() > self.max_len {
            self.pop_front();
        }
        self.evict(ts);
    }

    /// Drops samples older than `now` minus the window's age.
    pub(crate) fn evict(&mut self, now: EventTime) {
        let Some(age) = self.max_age_ms else { return };
        let cutoff = now.0.saturating_sub(age);
        while self.items.front().is_some_and(|(ts, _)| ts.0 < cutoff) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, v)) = self.items.pop_front() {
            let i = self.sorted.partition_point(|x| less(x, &v));
            if i < self.sorted.len() {
                self.sorted.remove(i);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Median of the samples, `None` when empty.
    pub(crate) fn median(&self) -> Option<f64> {
        median_sorted(&self.sorted)
    }

    /// Median absolute deviation from `center`, `None` when empty.
    pub(crate) fn mad(&self, center: f64) -> Option<f64> {
        let mut dev: Vec<f64> = self.sorted.iter().map(|x| (x - center).abs()).collect();
        dev.sort_by(f64::total_cmp);
        median_sorted(&dev)
    }

    /// The samples in arrival order.
    #[cfg(test)]
    pub(crate) fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.items.iter().map(|(_, v)| *v)
    }
}

fn median_sorted(s: &[f64]) -> Option<f64> {
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => s.get(n / 2).copied(),
        // Halves first: the sum of two huge finite values would overflow to infinity.
        _ => Some(s.get(n / 2 - 1)? / 2.0 + s.get(n / 2)? / 2.0),
    }
}

/// Median and σ estimate (1.4826 × MAD, unfloored) of a slice; `None` when empty.
pub(crate) fn robust_stats(values: &[f64]) -> Option<(f64, f64)> {
    let mut s: Vec<f64> = values.to_vec();
    s.sort_by(f64::total_cmp);
    let med = median_sorted(&s)?;
    let mut dev: Vec<f64> = s.iter().map(|x| (x - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    Some((med, MAD_TO_SIGMA * median_sorted(&dev)?))
}

/// Mean and standard deviation of the values within 3 robust σ (1.4826 × MAD) of the median:
/// outliers are rejected as by the median, while the inliers are estimated with the efficiency of
/// the mean (for normal noise the median's standard error is 25 % larger). `None` when empty.
pub(crate) fn inlier_stats(values: &[f64]) -> Option<(f64, f64)> {
    let (med, s) = robust_stats(values)?;
    let inliers: Vec<f64> = values
        .iter()
        .copied()
        .filter(|x| (x - med).abs() <= 3.0 * s)
        .collect();
    let n = inliers.len();
    if n < 2 {
        return Some((med, s));
    }
    let mean = inliers.iter().map(|x| x / n as f64).sum::<f64>();
    let var = inliers.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
    Some((mean, var.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_mad_follow_the_window() {
        let mut w = RollingWindow::new(Some(10_000), None);
        for (i, v) in [5.0, 1.0, 3.0, 100.0].into_iter().enumerate() {
            w.push(EventTime(i as i64 * 1000), v);
        }
        assert_eq!(w.median(), Some(4.0));
        w.push(EventTime(20_000), 7.0); // everything before 10 s is evicted
        assert_eq!(w.len(), 1);
        assert_eq!(w.median(), Some(7.0));
        assert_eq!(w.mad(7.0), Some(0.0));
    }

    #[test]
    fn count_window_keeps_the_newest() {
        let mut w = RollingWindow::new(None, Some(3));
        for i in 0..10 {
            w.push(EventTime(i), i as f64);
        }
        assert_eq!(w.values().collect::<Vec<_>>(), vec![7.0, 8.0, 9.0]);
        assert_eq!(w.median(), Some(8.0));
    }

    #[test]
    fn scale_floor_prevents_division_by_zero() {
        assert_eq!(floored_scale(0.0, 400.0, None), 0.4);
        assert_eq!(floored_scale(0.0, 0.0, None), ABS_SCALE_FLOOR);
        assert_eq!(floored_scale(0.0, 400.0, Some(2.0)), 2.0);
        assert_eq!(robust_stats(&[2.0, 2.0, 2.0]), Some((2.0, 0.0)));
    }
}
