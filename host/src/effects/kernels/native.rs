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

use graphjit_value::{Tensor, canonical_f32};
use ndarray::{Array2, ArrayView2};

/// Runs kernel `name` on `args`.
pub(crate) fn run(name: &str, args: &[Tensor]) -> Result<Tensor, String> {
    let out = match (name, args) {
        ("matmul", [a, b]) => matmul(a, b)?,
        ("softmax", [x]) => softmax(x)?,
        ("conv2d", [x, f]) => conv2d(x, f)?,
        _ => {
            return Err(format!(
                "no kernel {name:?} taking {} arguments",
                args.len()
            ));
        }
    };
    Ok(Tensor {
        shape: out.shape,
        data: out.data.into_iter().map(canonical_f32).collect(),
    })
}

fn view(t: &Tensor) -> Result<ArrayView2<'_, f32>, String> {
    let [rows, cols] = t.shape.as_slice() else {
        return Err(format!("expected a matrix, got shape {:?}", t.shape));
    };
    ArrayView2::from_shape((*rows as usize, *cols as usize), &t.data)
        .map_err(|e| format!("shape {:?} does not match its data: {e}", t.shape))
}

fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    let (a, b) = (view(a)?, view(b)?);
    if a.ncols() != b.nrows() {
        return Err(format!(
            "matmul of {:?} and {:?}: inner dimensions differ",
            a.shape(),
            b.shape()
        ));
    }
    let c: Array2<f32> = a.dot(&b);
    let shape = vec![c.nrows() as u32, c.ncols() as u32];
    Ok(Tensor {
        shape,
        data: c.into_iter().collect(),
    })
}

/// Softmax over the last axis, max-subtracted, with `graphjit_value::math::expf` (the same function the guest
/// uses for `exp`).
fn softmax(x: &Tensor) -> Result<Tensor, String> {
    let last = *x.shape.last().ok_or("softmax of a scalar")? as usize;
    if last == 0 || Tensor::element_count(&x.shape) != Some(x.data.len()) {
        return Err(format!("softmax of shape {:?}", x.shape));
    }
    let mut data = Vec::with_capacity(x.data.len());
    for row in x.data.chunks(last) {
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
fn conv2d(x: &Tensor, f: &Tensor) -> Result<Tensor, String> {
    let (x, f) = (view(x)?, view(f)?);
    let (h, w) = x.dim();
    let (kh, kw) = f.dim();
    if kh == 0 || kw == 0 || kh > h || kw > w {
        return Err(format!("conv2d of {:?} with filter {:?}", x.dim(), f.dim()));
    }
    let (oh, ow) = (h - kh + 1, w - kw + 1);
    let mut data = Vec::with_capacity(oh * ow);
    for i in 0..oh {
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
        .unwrap();
        assert_eq!((c.shape, c.data), (vec![2, 1], vec![3., 7.]));
        assert!(run("matmul", &[t(&[2, 2], &[1.; 4]), t(&[3, 1], &[1.; 3])]).is_err());
        assert!(run("matmul", &[t(&[2, 2], &[1.; 3]), t(&[2, 1], &[1.; 2])]).is_err());
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let s = run("softmax", &[t(&[2, 3], &[1., 2., 3., 0., 0., 1000.])]).unwrap();
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
        .unwrap();
        assert_eq!((out.shape, out.data), (vec![2, 2], vec![6., 8., 12., 14.]));
        assert!(run("conv2d", &[t(&[1, 1], &[1.]), t(&[2, 2], &[1.; 4])]).is_err());
        assert!(run("nope", &[]).is_err());
    }
}
