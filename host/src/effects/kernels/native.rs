//! Native CPU kernels: what a `kernel` node runs when no GPU serves it — today every kernel,
//! with or without the `cuda` feature (see `gpu.rs` for why). A GPU kernel must agree with
//! these within the tolerance documented in docs/graph-format.md.
//!
//! Invariants:
//! - Shapes are checked here again (the guest is not trusted); a mismatch is an `Err`, never a
//!   panic or an out-of-bounds read.
//! - Results are f32 with canonical NaN, like every tensor that crosses the boundary.
//! - matmul goes through `ndarray` (and so `matrixmultiply`'s blocked, vectorized GEMM); its
//!   summation order differs from the guest's `matmul` op, so the two agree within rounding,
//!   not bit for bit — which is why the kernel is a separate op.

use std::time::Instant;

use graphjit_value::{Tensor, canonical_f32};
use ndarray::{Array2, ArrayView2, s};

use super::KernelError;

/// About this many multiply-adds (~1–2 ms here) run between two looks at the clock.
const WORK_PER_CHECK: usize = 1 << 21;

/// Runs kernel `name` on `args`, stopping with [`KernelError::Deadline`] soon after `deadline`.
pub(crate) fn run(name: &str, args: &[Tensor], deadline: Instant) -> Result<Tensor, KernelError> {
    let out = match (name, args) {
        ("matmul", [a, b]) => matmul(a, b, deadline)?,
        ("softmax", [x]) => softmax(x, deadline)?,
        ("conv2d", [x, f]) => conv2d(x, f, deadline)?,
        _ => {
            return Err(KernelError::Bad(format!(
                "no kernel {name:?} taking {} arguments",
                args.len()
            )));
        }
    };
    Ok(Tensor {
        shape: out.shape,
        data: out.data.into_iter().map(canonical_f32).collect(),
    })
}

fn view(t: &Tensor) -> Result<ArrayView2<'_, f32>, KernelError> {
    let [rows, cols] = t.shape.as_slice() else {
        return Err(KernelError::Bad(format!(
            "expected a matrix, got shape {:?}",
            t.shape
        )));
    };
    ArrayView2::from_shape((*rows as usize, *cols as usize), &t.data)
        .map_err(|e| KernelError::Bad(format!("shape {:?} does not match its data: {e}", t.shape)))
}

/// The work of kernel `name` on arguments of these shapes, in multiply-adds or element steps:
/// what a run is charged in fuel before the kernel starts (docs/graph-format.md, "Effects").
/// Saturating: a product too large to count costs more than any budget. A call that does not
/// fit the kernel costs nothing here (it is refused before any work).
pub(crate) fn work(name: &str, shapes: &[&[u32]]) -> u64 {
    let dims = |shape: &[u32]| -> Vec<u64> { shape.iter().map(|&d| u64::from(d)).collect() };
    match (name, shapes) {
        ("matmul", [a, b]) => match (dims(a).as_slice(), dims(b).as_slice()) {
            (&[m, k], &[_, n]) => m.saturating_mul(k).saturating_mul(n),
            _ => 0,
        },
        // Max, exp, sum and divide per element.
        ("softmax", [x]) => dims(x)
            .iter()
            .fold(1u64, |acc, &d| acc.saturating_mul(d))
            .saturating_mul(4),
        ("conv2d", [x, f]) => match (dims(x).as_slice(), dims(f).as_slice()) {
            (&[h, w], &[kh, kw]) if kh <= h && kw <= w => (h - kh + 1)
                .saturating_mul(w - kw + 1)
                .saturating_mul(kh)
                .saturating_mul(kw),
            _ => 0,
        },
        _ => 0,
    }
}

/// The product in blocks of rows, the clock read between blocks. Each element's sum runs over
/// `k` in the same order whatever the block (`matrixmultiply` blocks `k` alike for any row
/// count), so the blocks change no bit (tested).
fn matmul(a: &Tensor, b: &Tensor, deadline: Instant) -> Result<Tensor, KernelError> {
    let (a, b) = (view(a)?, view(b)?);
    if a.ncols() != b.nrows() {
        return Err(KernelError::Bad(format!(
            "matmul of {:?} and {:?}: inner dimensions differ",
            a.shape(),
            b.shape()
        )));
    }
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let rows_per_block = (WORK_PER_CHECK / k.saturating_mul(n).max(1)).max(1);
    let mut data = Vec::with_capacity(m.saturating_mul(n));
    let mut start = 0;
    while start < m {
        past(deadline)?;
        let end = m.min(start.saturating_add(rows_per_block));
        let c: Array2<f32> = a.slice(s![start..end, ..]).dot(&b);
        data.extend(c.iter().copied());
        start = end;
    }
    Ok(Tensor {
        shape: vec![m as u32, n as u32],
        data,
    })
}

fn past(deadline: Instant) -> Result<(), KernelError> {
    if Instant::now() >= deadline {
        Err(KernelError::Deadline)
    } else {
        Ok(())
    }
}

/// Softmax over the last axis, max-subtracted, with `graphjit_value::math::expf` (the same function the guest
/// uses for `exp`).
fn softmax(x: &Tensor, deadline: Instant) -> Result<Tensor, KernelError> {
    let last = *x
        .shape
        .last()
        .ok_or_else(|| KernelError::Bad("softmax of a scalar".into()))? as usize;
    if last == 0 || Tensor::element_count(&x.shape) != Some(x.data.len()) {
        return Err(KernelError::Bad(format!("softmax of shape {:?}", x.shape)));
    }
    let mut data = Vec::with_capacity(x.data.len());
    let rows_per_check = (WORK_PER_CHECK / last).max(1);
    for (i, row) in x.data.chunks(last).enumerate() {
        if i % rows_per_check == 0 {
            past(deadline)?;
        }
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = row
            .iter()
            .map(|&v| graphjit_value::math::expf(v - max))
            .collect();
        let sum: f32 = exps.iter().sum();
        data.extend(exps.iter().map(|&e| e / sum));
    }
    Ok(Tensor {
        shape: x.shape.clone(),
        data,
    })
}

/// Valid 2-D cross-correlation, stride 1: `out[i][j] = Σ x[i+u][j+v] · f[u][v]`.
fn conv2d(x: &Tensor, f: &Tensor, deadline: Instant) -> Result<Tensor, KernelError> {
    let (x, f) = (view(x)?, view(f)?);
    let (h, w) = x.dim();
    let (kh, kw) = f.dim();
    if kh == 0 || kw == 0 || kh > h || kw > w {
        return Err(KernelError::Bad(format!(
            "conv2d of {:?} with filter {:?}",
            x.dim(),
            f.dim()
        )));
    }
    let (oh, ow) = (h - kh + 1, w - kw + 1);
    let mut data = Vec::with_capacity(oh * ow);
    for i in 0..oh {
        past(deadline)?;
        for j in 0..ow {
            let mut acc = 0.0f32;
            for u in 0..kh {
                for v in 0..kw {
                    acc += x[[i + u, j + v]] * f[[u, v]];
                }
            }
            data.push(acc);
        }
    }
    Ok(Tensor {
        shape: vec![oh as u32, ow as u32],
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, args: &[Tensor]) -> Result<Tensor, KernelError> {
        super::run(name, args, far())
    }

    fn far() -> Instant {
        Instant::now() + std::time::Duration::from_secs(3600)
    }

    #[test]
    fn blocked_matmul_changes_no_bit_and_stops_at_the_deadline() {
        let (m, k, n) = (301usize, 257usize, 129usize);
        let value = |i: usize| ((i * 7919 % 1000) as f32 - 500.0) / 37.0;
        let a = t(
            &[m as u32, k as u32],
            &(0..m * k).map(value).collect::<Vec<_>>(),
        );
        let b = t(
            &[k as u32, n as u32],
            &(0..k * n).map(|i| value(i + 3)).collect::<Vec<_>>(),
        );
        let whole: Array2<f32> = view(&a)
            .expect("the call succeeds")
            .dot(&view(&b).expect("the call succeeds"));
        let blocked = run("matmul", &[a.clone(), b.clone()]).expect("the call succeeds");
        // 301 rows in blocks of 2^21 / (257·129) = 63: five blocks, the last partial.
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&blocked.data),
            bits(&whole.iter().copied().collect::<Vec<_>>())
        );
        let past = Instant::now();
        assert_eq!(
            super::run("matmul", &[a, b], past),
            Err(KernelError::Deadline)
        );
        assert_eq!(work("matmul", &[&[2, 3], &[3, 4]]), 24);
        assert_eq!(work("conv2d", &[&[3, 3], &[2, 2]]), 16);
        assert_eq!(work("softmax", &[&[2, 3]]), 24);
        let huge: &[u32] = &[u32::MAX, u32::MAX];
        assert_eq!(work("matmul", &[huge, huge]), u64::MAX);
    }

    fn t(shape: &[u32], data: &[f32]) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn matmul_multiplies_and_checks_shapes() {
        let c = run(
            "matmul",
            &[t(&[2, 2], &[1., 2., 3., 4.]), t(&[2, 1], &[1., 1.])],
        )
        .expect("the call succeeds");
        assert_eq!((c.shape, c.data), (vec![2, 1], vec![3., 7.]));
        assert!(run("matmul", &[t(&[2, 2], &[1.; 4]), t(&[3, 1], &[1.; 3])]).is_err());
        assert!(run("matmul", &[t(&[2, 2], &[1.; 3]), t(&[2, 1], &[1.; 2])]).is_err());
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let s =
            run("softmax", &[t(&[2, 3], &[1., 2., 3., 0., 0., 1000.])]).expect("the call succeeds");
        for row in s.data.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
        }
        assert_eq!(s.data[5], 1.0, "large inputs do not overflow");
    }

    #[test]
    fn conv2d_is_valid_cross_correlation() {
        let out = run(
            "conv2d",
            &[
                t(&[3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]),
                t(&[2, 2], &[1., 0., 0., 1.]),
            ],
        )
        .expect("the call succeeds");
        assert_eq!((out.shape, out.data), (vec![2, 2], vec![6., 8., 12., 14.]));
        assert!(run("conv2d", &[t(&[1, 1], &[1.]), t(&[2, 2], &[1.; 4])]).is_err());
        assert!(run("nope", &[]).is_err());
    }
}
