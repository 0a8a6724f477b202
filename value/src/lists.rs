//! The rules of the list ops that are more than a loop: one definition, used by `eval` and by
//! every guest (through the guest template), so both engines agree on positions, bounds and
//! the order of float arithmetic.
//!
//! Invariants: nothing here panics or allocates; positions are checked against the length
//! before anything is read.

use alloc::format;
use alloc::string::String;
use core::cmp::Ordering;
use core::ops::Range;

/// The position `index` names in a list of `len` elements, or `None` when it is negative or
/// past the end (`index_out_of_range`).
#[must_use]
pub fn position(index: i64, len: usize) -> Option<usize> {
    usize::try_from(index).ok().filter(|&i| i < len)
}

/// The elements `slice(list, start, take)` keeps from a list of `len`: up to `take` elements
/// from `start`, clamped at the end (as `substring` clamps); a negative `start` or `take` is
/// an error (`invalid_value`).
pub fn slice_range(len: usize, start: i64, take: i64) -> Result<Range<usize>, String> {
    if start < 0 || take < 0 {
        return Err(format!(
            "slice takes a start and a length of at least 0, got {start} and {take}"
        ));
    }
    let from = usize::try_from(start).unwrap_or(usize::MAX).min(len);
    let to = from
        .saturating_add(usize::try_from(take).unwrap_or(usize::MAX))
        .min(len);
    Ok(from..to)
}

/// How many elements `range(start, end)` holds: `end - start`, or 0 when `end <= start`.
#[must_use]
pub fn range_len(start: i64, end: i64) -> u64 {
    if end <= start {
        0
    } else {
        // `end - start` fits a u64 for every pair of i64s.
        end.abs_diff(start)
    }
}

/// The sum of i64s, left to right; `None` when it overflows at any step (`overflow`).
pub fn sum_i64(items: impl IntoIterator<Item = i64>) -> Option<i64> {
    items.into_iter().try_fold(0i64, i64::checked_add)
}

/// The sum of f64s, left to right from `0.0` (one IEEE addition per element, no reordering).
pub fn sum_f64(items: impl IntoIterator<Item = f64>) -> f64 {
    items.into_iter().fold(0.0, |acc, x| acc + x)
}

/// The smallest i64, `None` for an empty list.
pub fn min_i64(items: impl IntoIterator<Item = i64>) -> Option<i64> {
    items.into_iter().reduce(|a, b| if b < a { b } else { a })
}

/// The largest i64, `None` for an empty list.
pub fn max_i64(items: impl IntoIterator<Item = i64>) -> Option<i64> {
    items.into_iter().reduce(|a, b| if b > a { b } else { a })
}

/// The smallest f64 as `min` computes it pairwise (libm's `fmin`: a NaN loses to a number),
/// left to right; `None` for an empty list.
pub fn min_f64(items: impl IntoIterator<Item = f64>) -> Option<f64> {
    items.into_iter().reduce(libm::fmin)
}

/// The largest f64 as `max` computes it pairwise (libm's `fmax`), left to right; `None` for
/// an empty list.
pub fn max_f64(items: impl IntoIterator<Item = f64>) -> Option<f64> {
    items.into_iter().reduce(libm::fmax)
}

/// The order `sort_by` and `group_by` put keys in: a total order on each key type. Numbers
/// by value; f64 in IEEE 754 total order (`-inf < … < -0.0 < +0.0 < … < inf < NaN`, NaN
/// canonical first, so every NaN is one key); `false < true`; strings by their bytes (so by
/// code point).
pub trait SortKey {
    /// `self` against `other` in that order.
    fn order(&self, other: &Self) -> Ordering;
}

impl SortKey for i64 {
    fn order(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
}

impl SortKey for f64 {
    fn order(&self, other: &Self) -> Ordering {
        crate::canonical_f64(*self).total_cmp(&crate::canonical_f64(*other))
    }
}

impl SortKey for bool {
    fn order(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
}

impl SortKey for String {
    fn order(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// Sorts `(key, position, element)` triples by key, ties by position: a stable sort without
/// the buffer `slice::sort_by` allocates (positions are unique, so an unstable sort of the
/// pairs is stable on the elements).
pub fn sort_keyed<K: SortKey, T>(items: &mut [(K, usize, T)]) {
    items.sort_unstable_by(|a, b| a.0.order(&b.0).then(a.1.cmp(&b.1)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_checked() {
        assert_eq!(position(0, 1), Some(0));
        assert_eq!(position(1, 1), None);
        assert_eq!(position(-1, 5), None);
        assert_eq!(position(i64::MAX, 5), None);
    }

    #[test]
    fn slices_clamp_at_the_end_and_refuse_negatives() {
        assert_eq!(slice_range(5, 1, 3), Ok(1..4));
        assert_eq!(slice_range(5, 4, 10), Ok(4..5));
        assert_eq!(slice_range(5, 9, 1), Ok(5..5));
        assert_eq!(slice_range(5, 0, i64::MAX), Ok(0..5));
        assert!(slice_range(5, -1, 1).is_err());
        assert!(slice_range(5, 0, -1).is_err());
    }

    #[test]
    fn ranges_and_sums() {
        assert_eq!(range_len(3, 7), 4);
        assert_eq!(range_len(7, 3), 0);
        assert_eq!(range_len(i64::MIN, i64::MAX), u64::MAX);
        assert_eq!(sum_i64([1, 2, 3]), Some(6));
        assert_eq!(sum_i64([i64::MAX, 1, -1]), None);
        assert_eq!(sum_f64([0.1, 0.2, 0.3]), (0.1 + 0.2) + 0.3);
        assert_eq!(min_f64([f64::NAN, 1.0]), Some(1.0));
        assert_eq!(max_i64([]), None);
    }

    #[test]
    fn keys_sort_totally_and_stably() {
        let mut items = [
            (f64::NAN, 0, 'a'),
            (0.0, 1, 'b'),
            (-0.0, 2, 'c'),
            (f64::NEG_INFINITY, 3, 'd'),
            (0.0, 4, 'e'),
            (-f64::NAN, 5, 'f'),
        ];
        sort_keyed(&mut items);
        let order: alloc::string::String = items.iter().map(|t| t.2).collect();
        assert_eq!(order, "dcbeaf");
    }
}
