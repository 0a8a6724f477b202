//! Pure ops the host computes natively for a guest, where the `place` pass put them (the WIT
//! `native` interface): today `matmul`.
//!
//! Invariants:
//! - Bit-identical to the guest's op: every `c[i][j]` starts at 0.0 and adds `a[i][p]·b[p][j]`
//!   for p ascending, one rounding per multiply and per add (no FMA: Rust never contracts),
//!   exactly as `eval` and `rt::ops::matmul` do. Blocking over p and splitting rows across
//!   threads change which element is computed when, never the order of one element's sum; the
//!   differential tests compare the bits.
//! - Shapes are checked again (the guest is not trusted); a mismatch is an `Err`, never a
//!   panic or an out-of-bounds read.
//! - NaN leaves canonical, like every tensor that crosses the boundary.

use graphjit_value::{Tensor, canonical_f32};

/// Rows of `b` per block: a `KC × n` block of `b` (128 KiB at n = 512) stays in L2 while every
/// row of `a` passes over it.
const KC: usize = 64;

/// Multiply-adds below which one thread does it all (a thread costs ~10 µs to start).
const WORK_PER_THREAD: usize = 1 << 20;

/// `a × b` with the `matmul` op's per-element order; `Err` names a shape mismatch.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    let (m, k, n) = match (a.shape.as_slice(), b.shape.as_slice()) {
        (&[m, k], &[k2, n]) if k == k2 => (m as usize, k as usize, n as usize),
        _ => {
            return Err(format!(
                "native matmul of shapes {:?} and {:?}",
                a.shape, b.shape
            ));
        }
    };
    let elements = |r: usize, c: usize| r.checked_mul(c).ok_or("matrix too large");
    if a.data.len() != elements(m, k)? || b.data.len() != elements(k, n)? {
        return Err("native matmul: data does not match the shapes".into());
    }
    let mut c = vec![0.0f32; elements(m, n)?];
    if m > 0 && n > 0 && k > 0 {
        let work = m.saturating_mul(k).saturating_mul(n);
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(m)
            .min(work / WORK_PER_THREAD + 1);
        let rows_per_thread = m.div_ceil(threads);
        if threads <= 1 {
            rows(&mut c, &a.data, &b.data, k, n);
        } else {
            std::thread::scope(|scope| {
                for (c_rows, a_rows) in c
                    .chunks_mut(rows_per_thread * n)
                    .zip(a.data.chunks(rows_per_thread * k))
                {
                    scope.spawn(|| rows(c_rows, a_rows, &b.data, k, n));
                }
            });
        }
    }
    c.iter_mut().for_each(|x| *x = canonical_f32(*x));
    Ok(Tensor {
        shape: vec![m as u32, n as u32],
        data: c,
    })
}

/// `c += a × b` for a band of rows (`a`: rows × k, `c`: rows × n), p ascending in blocks of
/// `KC` (block by block, so each element still sums p = 0, 1, …, k − 1 in order).
fn rows(c: &mut [f32], a: &[f32], b: &[f32], k: usize, n: usize) {
    for p0 in (0..k).step_by(KC) {
        let p1 = (p0 + KC).min(k);
        let b_block = &b[p0 * n..p1 * n];
        for (c_row, a_row) in c.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
            for (&a_ip, b_row) in a_row[p0..p1].iter().zip(b_block.chunks_exact(n)) {
                for (c_ij, &b_pj) in c_row.iter_mut().zip(b_row) {
                    *c_ij += a_ip * b_pj;
                }
            }
        }
    }
}

/// What placed ops rest on (the assumption inventory).
pub(crate) const ASSUMPTIONS: &[crate::assumptions::Assumption] =
    &[crate::assumptions::Assumption {
        component: "native",
        assumption: "the host build keeps IEEE f32 semantics in the placed matmul: no FMA \
                     contraction, no reassociation (rustc never contracts and graphjit enables \
                     no fast-math), so each element is summed in the defined order as in the \
                     guest and eval",
        failure_mode: "a placed matmul's bits differ from the guest op's and eval's",
        mitigation: "the differential tests compare placed products with eval bit for bit (an \
                     FMA in the kernel fails them); placement only changes where the op runs",
        properties: &[],
    }];

#[cfg(test)]
mod tests {
    use super::matmul;
    use graphjit_value::Tensor;

    /// The defined order, written out: `c[i][j] = (((0 + a[i][0]·b[0][j]) + a[i][1]·b[1][j]) …)`.
    fn reference(a: &Tensor, b: &Tensor) -> Vec<f32> {
        let (m, k, n) = (
            a.shape[0] as usize,
            a.shape[1] as usize,
            b.shape[1] as usize,
        );
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f32;
                for p in 0..k {
                    s += a.data[i * k + p] * b.data[p * n + j];
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    fn tensor(rows: u32, cols: u32, seed: u32) -> Tensor {
        let data = (0..rows * cols)
            .map(|i| {
                let x = i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
                (x % 2001) as f32 / 997.0 - 1.0
            })
            .collect();
        Tensor {
            shape: vec![rows, cols],
            data,
        }
    }

    #[test]
    fn bits_equal_the_defined_order_at_every_size_and_thread_split() {
        for (m, k, n) in [
            (1, 1, 1),
            (4, 4, 4),
            (3, 130, 7),
            (65, 64, 65),
            (300, 200, 129),
        ] {
            let (a, b) = (tensor(m, k, 1), tensor(k, n, 2));
            let c = matmul(&a, &b).expect("multiplies");
            let expected = reference(&a, &b);
            let same = c
                .data
                .iter()
                .zip(&expected)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same,
                "{m}×{k}×{n}: native matmul differs from the defined order"
            );
            assert_eq!(c.shape, [m, n]);
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let a = tensor(2, 3, 1);
        assert!(
            matmul(&a, &tensor(2, 3, 1)).is_err(),
            "inner dimensions differ"
        );
        let lying = Tensor {
            shape: vec![2, 3],
            data: vec![0.0; 5],
        };
        assert!(
            matmul(&lying, &tensor(3, 2, 1)).is_err(),
            "data shorter than the shape"
        );
    }
}
