//! Tensor rules over shapes, shared by `eval` and every guest, so that both engines index and
//! round alike: NumPy broadcasting of two tensors, and the ops along one axis (reductions with
//! `axis`, `softmax`, `log_softmax`).
//!
//! Invariants:
//! - Every function checks its inputs' lengths against their shapes (and the result shape
//!   against the broadcast of the inputs) before it reads, and reads with `get`: a malformed
//!   tensor is a [`ShapeError`], never a panic or a wrong element.
//! - One defined order of rounding, the one whole-tensor reductions use: along the axis,
//!   element `k` goes into lane `k % 8`, lanes start at the op's identity, then
//!   `q[j] = op(p[j], p[j+4])`, `r[j] = op(q[j], q[j+2])`, `s = op(r[0], r[1])`. A reduction
//!   along the only axis of a vector is therefore bit for bit the whole-tensor reduction.
//! - The element functions are [`crate::math`]'s (and `libm`'s `logf`), as everywhere else.

use alloc::vec;
use alloc::vec::Vec;

use crate::math;

/// A tensor whose data disagrees with its shape, or shapes an op's rule forbids (a bug in
/// the caller: typing rules them out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShapeError;

/// Lanes of the defined reduction order.
const LANES: usize = 8;

/// NumPy broadcasting: shapes aligned at their last dimension, a missing dimension counting
/// as 1; each pair of dimensions is equal (that extent), or one of them is 1 (the other's).
/// `None` when a pair is neither.
#[must_use]
pub fn broadcast(a: &[u32], b: &[u32]) -> Option<Vec<u32>> {
    let rank = a.len().max(b.len());
    (0..rank)
        .map(|k| {
            let (x, y) = (padded(a, rank, k), padded(b, rank, k));
            match (x, y) {
                _ if x == y => Some(x),
                (1, _) => Some(y),
                (_, 1) => Some(x),
                _ => None,
            }
        })
        .collect()
}

/// Dimension `k` of `shape` aligned right in `rank` dimensions (1 where it has none).
fn padded(shape: &[u32], rank: usize, k: usize) -> u32 {
    let missing = rank - shape.len();
    if k < missing {
        1
    } else {
        shape.get(k - missing).copied().unwrap_or(1)
    }
}

/// The element count of `shape`, checked against `data`.
fn checked(shape: &[u32], data: &[f32]) -> Result<usize, ShapeError> {
    match crate::Tensor::element_count(shape) {
        Some(n) if n == data.len() => Ok(n),
        _ => Err(ShapeError),
    }
}

/// The strides of `shape` read as `rank`-dimensional and broadcast: 0 along a dimension of
/// extent 1 (and the missing ones), so every index of the result reads the right element.
fn broadcast_strides(shape: &[u32], rank: usize) -> Vec<usize> {
    let mut strides = vec![0usize; rank];
    let mut step = 1usize;
    for k in (0..rank).rev() {
        let d = padded(shape, rank, k);
        if d != 1 {
            strides[k] = step;
        }
        step = step.saturating_mul(d as usize);
    }
    strides
}

/// `f(x[i], y[i])` for every element `i` of `shape`, the NumPy broadcast of `xs` and `ys`,
/// appended to `out` in row-major order; argument order is kept (`x - y`).
///
/// # Errors
/// [`ShapeError`] when `shape` is not the broadcast of the two shapes, or a tensor's data
/// disagrees with its shape.
pub fn zip_broadcast(
    (x, xs): (&[f32], &[u32]),
    (y, ys): (&[f32], &[u32]),
    shape: &[u32],
    f: impl Fn(f32, f32) -> f32,
    out: &mut Vec<f32>,
) -> Result<(), ShapeError> {
    checked(xs, x)?;
    checked(ys, y)?;
    if broadcast(xs, ys).as_deref() != Some(shape) {
        return Err(ShapeError);
    }
    let n = crate::Tensor::element_count(shape).ok_or(ShapeError)?;
    out.reserve(n);
    let rank = shape.len();
    let (sx, sy) = (broadcast_strides(xs, rank), broadcast_strides(ys, rank));
    let Some((&inner, outer_dims)) = shape.split_last() else {
        // Both are `[]`: one element.
        let (a, b) = (x.first().ok_or(ShapeError)?, y.first().ok_or(ShapeError)?);
        out.push(f(*a, *b));
        return Ok(());
    };
    let (ix, iy) = (sx[rank - 1], sy[rank - 1]);
    let mut index = vec![0u32; rank - 1];
    let (mut bx, mut by) = (0usize, 0usize);
    let rows = n.checked_div(inner as usize).unwrap_or(0);
    for _ in 0..rows {
        for j in 0..inner as usize {
            let a = x.get(bx + j * ix).ok_or(ShapeError)?;
            let b = y.get(by + j * iy).ok_or(ShapeError)?;
            out.push(f(*a, *b));
        }
        // The next row: an odometer over the outer dimensions.
        for k in (0..rank - 1).rev() {
            index[k] += 1;
            bx += sx[k];
            by += sy[k];
            if index[k] < outer_dims[k] {
                break;
            }
            bx -= sx[k] * outer_dims[k] as usize;
            by -= sy[k] * outer_dims[k] as usize;
            index[k] = 0;
        }
    }
    Ok(())
}

/// Axis `axis` as written (negative counts from the end, as in NumPy) of a tensor of `rank`
/// dimensions; `None` outside `-rank..rank`.
#[must_use]
pub fn axis_index(axis: i64, rank: usize) -> Option<usize> {
    let rank = i64::try_from(rank).ok()?;
    let k = if axis < 0 { axis + rank } else { axis };
    usize::try_from(k).ok().filter(|&k| (k as i64) < rank)
}

/// The shape of a reduction of `shape` along `axis`: without it, or with it as 1 (`keepdims`).
#[must_use]
pub fn reduced_shape(shape: &[u32], axis: usize, keepdims: bool) -> Vec<u32> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(k, &d)| match (k == axis, keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// A tensor seen as `outer × n × inner` around one axis of extent `n`.
#[derive(Clone, Copy)]
struct Around {
    outer: usize,
    n: usize,
    inner: usize,
}

impl Around {
    fn new(shape: &[u32], axis: usize, data: &[f32]) -> Result<Around, ShapeError> {
        checked(shape, data)?;
        let n = *shape.get(axis).ok_or(ShapeError)? as usize;
        let count = |dims: &[u32]| dims.iter().map(|&d| d as usize).product::<usize>();
        Ok(Around {
            outer: count(shape.get(..axis).ok_or(ShapeError)?),
            n,
            inner: count(shape.get(axis + 1..).ok_or(ShapeError)?),
        })
    }

    /// The offset of element `k` of the line at (`o`, `i`).
    fn at(self, o: usize, k: usize, i: usize) -> usize {
        (o * self.n + k) * self.inner + i
    }

    /// The lines along the axis, in row-major order of the result: `(o, i)`.
    fn lines(self) -> impl Iterator<Item = (usize, usize)> {
        (0..self.outer).flat_map(move |o| (0..self.inner).map(move |i| (o, i)))
    }
}

/// A reduction along an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// `sum`
    Sum,
    /// `reduce_max` (`fmaxf`: NaN ignored)
    Max,
    /// `reduce_min` (`fminf`: NaN ignored)
    Min,
    /// `mean`: the sum over the axis's extent
    Mean,
}

impl Reduce {
    fn identity_and_op(self) -> (f32, fn(f32, f32) -> f32) {
        match self {
            Reduce::Sum | Reduce::Mean => (0.0, |a, b| a + b),
            Reduce::Max => (f32::NEG_INFINITY, math::fmaxf),
            Reduce::Min => (f32::INFINITY, math::fminf),
        }
    }
}

/// `value(0..n)` reduced with `op` in the defined 8-lane order.
fn lanes(
    n: usize,
    identity: f32,
    op: fn(f32, f32) -> f32,
    value: impl Fn(usize) -> Result<f32, ShapeError>,
) -> Result<f32, ShapeError> {
    let mut p = [identity; LANES];
    for k in 0..n {
        let lane = &mut p[k % LANES];
        *lane = op(*lane, value(k)?);
    }
    let q = [
        op(p[0], p[4]),
        op(p[1], p[5]),
        op(p[2], p[6]),
        op(p[3], p[7]),
    ];
    let r = [op(q[0], q[2]), op(q[1], q[3])];
    Ok(op(r[0], r[1]))
}

/// `data` (of `shape`) reduced along `axis` by `op`, appended to `out` in row-major order of
/// the reduced shape (with or without `keepdims`, the elements are the same).
///
/// # Errors
/// [`ShapeError`] when `axis` is not an axis of `shape` or the data disagrees with it.
pub fn reduce_axis(
    data: &[f32],
    shape: &[u32],
    axis: usize,
    op: Reduce,
    out: &mut Vec<f32>,
) -> Result<(), ShapeError> {
    let around = Around::new(shape, axis, data)?;
    let (identity, f) = op.identity_and_op();
    out.reserve(around.outer * around.inner);
    for (o, i) in around.lines() {
        let element = |k| data.get(around.at(o, k, i)).copied().ok_or(ShapeError);
        let s = lanes(around.n, identity, f, element)?;
        out.push(match op {
            Reduce::Mean => s / (around.n as f32),
            Reduce::Sum | Reduce::Max | Reduce::Min => s,
        });
    }
    Ok(())
}

/// `softmax` (or, with `log`, `log_softmax`) of `data` (of `shape`) along `axis`, appended to
/// `out` in row-major order. Each line, in this order: `m` = its `reduce_max`, `e[k] =
/// expf(x[k] - m)`, `s` = the sum of `e` (both in the defined order); then `e[k] / s`, or for
/// `log_softmax` `(x[k] - m) - logf(s)`. A line holding `+inf`, or only `-inf`s, or a NaN,
/// gives NaN where the arithmetic does.
///
/// # Errors
/// [`ShapeError`] when `axis` is not an axis of `shape` or the data disagrees with it.
pub fn softmax_axis(
    data: &[f32],
    shape: &[u32],
    axis: usize,
    log: bool,
    out: &mut Vec<f32>,
) -> Result<(), ShapeError> {
    let around = Around::new(shape, axis, data)?;
    let base = out.len();
    out.resize(base + data.len(), 0.0);
    // One line's `e`, reused.
    let mut e = Vec::with_capacity(around.n);
    for (o, i) in around.lines() {
        let x = |k| data.get(around.at(o, k, i)).copied().ok_or(ShapeError);
        let m = lanes(around.n, f32::NEG_INFINITY, math::fmaxf, x)?;
        e.clear();
        for k in 0..around.n {
            e.push(math::expf(x(k)? - m));
        }
        let s = lanes(
            around.n,
            0.0,
            |a, b| a + b,
            |k| e.get(k).copied().ok_or(ShapeError),
        )?;
        let ln_s = libm::logf(s);
        for (k, &ek) in e.iter().enumerate() {
            let y = if log { (x(k)? - m) - ln_s } else { ek / s };
            *out.get_mut(base + around.at(o, k, i)).ok_or(ShapeError)? = y;
        }
    }
    Ok(())
}

/// `layer_norm` of `data` (of `shape`) over the axes `axis..` (the trailing block of `n`
/// elements each line is), appended to `out` in row-major order. `scale` and `bias` hold one
/// element per position of that block (`bias` may be absent). Each line, in this order (ONNX
/// `LayerNormalization`'s own steps): `mean` = the sum of `x` in the defined order over `n`;
/// `d[k] = x[k] - mean`; `var` = the sum of `d[k] * d[k]` in the defined order over `n`;
/// `inv = 1 / sqrtf(var + epsilon)`; then `(d[k] * inv) * scale[k] + bias[k]`.
///
/// # Errors
/// [`ShapeError`] when `axis` is not an axis of `shape`, `scale` or `bias` does not hold one
/// element per position of the block, or the data disagrees with the shape.
pub fn layer_norm(
    data: &[f32],
    shape: &[u32],
    axis: usize,
    scale: &[f32],
    bias: Option<&[f32]>,
    epsilon: f32,
    out: &mut Vec<f32>,
) -> Result<(), ShapeError> {
    checked(shape, data)?;
    if axis >= shape.len() {
        return Err(ShapeError);
    }
    let n = crate::Tensor::element_count(shape.get(axis..).ok_or(ShapeError)?).ok_or(ShapeError)?;
    if scale.len() != n || bias.is_some_and(|b| b.len() != n) {
        return Err(ShapeError);
    }
    out.reserve(data.len());
    let add = |a: f32, b: f32| a + b;
    let mut d = Vec::with_capacity(n);
    for line in data.chunks(n.max(1)) {
        let x = |k: usize| line.get(k).copied().ok_or(ShapeError);
        let mean = lanes(n, 0.0, add, x)? / (n as f32);
        d.clear();
        for k in 0..n {
            d.push(x(k)? - mean);
        }
        let square = |k: usize| d.get(k).map(|v| v * v).ok_or(ShapeError);
        let var = lanes(n, 0.0, add, square)? / (n as f32);
        let inv = 1.0 / libm::sqrtf(var + epsilon);
        for (k, &dk) in d.iter().enumerate() {
            let s = scale.get(k).ok_or(ShapeError)?;
            let scaled = (dk * inv) * s;
            // No bias adds nothing (not 0.0, which would turn -0.0 into +0.0).
            out.push(match bias {
                Some(b) => scaled + *b.get(k).ok_or(ShapeError)?,
                None => scaled,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::{Reduce, ShapeError, axis_index, broadcast, reduce_axis, softmax_axis};

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast(&[2, 3], &[3]), Some(vec![2, 3]));
        assert_eq!(broadcast(&[2, 1], &[1, 3]), Some(vec![2, 3]));
        assert_eq!(broadcast(&[], &[4, 5]), Some(vec![4, 5]));
        assert_eq!(broadcast(&[0, 1], &[1, 7]), Some(vec![0, 7]));
        assert_eq!(broadcast(&[2, 3], &[2]), None);
        assert_eq!(broadcast(&[0], &[2]), None);
    }

    #[test]
    fn a_broadcast_zip_reads_the_right_elements() {
        // [2, 1] - [3]: rows of x minus the vector y.
        let mut out = Vec::new();
        super::zip_broadcast(
            (&[10.0, 20.0], &[2, 1]),
            (&[1.0, 2.0, 3.0], &[3]),
            &[2, 3],
            |a, b| a - b,
            &mut out,
        )
        .expect("shapes");
        assert_eq!(out, [9.0, 8.0, 7.0, 19.0, 18.0, 17.0]);
        let wrong =
            super::zip_broadcast((&[1.0], &[2]), (&[1.0], &[]), &[2], |a, b| a + b, &mut out);
        assert_eq!(wrong, Err(ShapeError), "data shorter than its shape");
    }

    #[test]
    fn reductions_along_an_axis() {
        let x: Vec<f32> = (0..6).map(|i| i as f32).collect();
        let mut rows = Vec::new();
        reduce_axis(&x, &[2, 3], 1, Reduce::Sum, &mut rows).expect("shape");
        assert_eq!(rows, [3.0, 12.0]);
        let mut cols = Vec::new();
        reduce_axis(&x, &[2, 3], 0, Reduce::Max, &mut cols).expect("shape");
        assert_eq!(cols, [3.0, 4.0, 5.0]);
        assert_eq!(axis_index(-1, 2), Some(1));
        assert_eq!(axis_index(2, 2), None);
        assert_eq!(axis_index(-3, 2), None);
        assert_eq!(
            reduce_axis(&x, &[2, 3], 2, Reduce::Sum, &mut cols),
            Err(ShapeError)
        );
    }

    #[test]
    fn softmax_lines_sum_to_one_and_log_softmax_is_its_log() {
        let x = [1.0f32, 2.0, 3.0, -1.0, 0.0, 1000.0];
        let (mut p, mut l) = (Vec::new(), Vec::new());
        softmax_axis(&x, &[2, 3], 1, false, &mut p).expect("shape");
        softmax_axis(&x, &[2, 3], 1, true, &mut l).expect("shape");
        for row in p.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
        }
        // A large element does not overflow: the line's max is taken out first.
        assert_eq!(p[5], 1.0);
        for (a, b) in p.iter().zip(&l) {
            assert!((libm::logf(*a) - b).abs() < 1e-5 || *a == 0.0, "{a} {b}");
        }
    }
}
