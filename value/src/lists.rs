//! The rules of the list ops that are more than a loop: one definition, used by `eval` and by
//! every guest (through the guest template), so both engines agree on positions, bounds and
//! the order of float arithmetic.
//!
//! Invariants: nothing here panics or allocates; positions are checked against the length
//! before anything is read.

use alloc::format;
use alloc::string::String;
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
}
