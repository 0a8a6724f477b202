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

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use graphjit_value::{Tensor, canonical_f32};

/// About this many multiply-adds run between two looks at the clock (~1 ms at 1–2 MAC/ns).
const WORK_PER_CHECK: usize = 1 << 20;

/// The native product ran past the run's deadline (it stopped within a block of work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NativeError {
    /// The shapes do not fit (the guest is not trusted).
    Shape(String),
    /// The deadline passed before the product was done.
    Deadline,
}

impl std::fmt::Display for NativeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shape(why) => f.write_str(why),
            Self::Deadline => f.write_str("the native matmul was still running at the deadline"),
        }
    }
}

/// Rows of `b` per block: a `KC × n` block of `b` (128 KiB at n = 512) stays in L2 while every
/// row of `a` passes over it.
const KC: usize = 64;

/// Multiply-adds below which one thread does it all (a thread costs ~10 µs to start).
const WORK_PER_THREAD: usize = 1 << 20;

/// `a × b` with the `matmul` op's per-element order; `Err` names a shape mismatch.
#[cfg(test)]
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    matmul_until(a, b, None).map_err(|e| e.to_string())
}

/// [`matmul`], stopping with [`NativeError::Deadline`] within about [`WORK_PER_CHECK`]
/// multiply-adds (per thread) of `deadline`.
pub(crate) fn matmul_until(
    a: &Tensor,
    b: &Tensor,
    deadline: Option<Instant>,
) -> Result<Tensor, NativeError> {
    let (m, k, n) = match (a.shape.as_slice(), b.shape.as_slice()) {
        (&[m, k], &[k2, n]) if k == k2 => (m as usize, k as usize, n as usize),
        _ => {
            return Err(NativeError::Shape(format!(
                "native matmul of shapes {:?} and {:?}",
                a.shape, b.shape
            )));
        }
    };
    let elements = |r: usize, c: usize| {
        r.checked_mul(c)
            .ok_or_else(|| NativeError::Shape("matrix too large".into()))
    };
    if a.data.len() != elements(m, k)? || b.data.len() != elements(k, n)? {
        return Err(NativeError::Shape(
            "native matmul: data does not match the shapes".into(),
        ));
    }
    let mut c = vec![0.0f32; elements(m, n)?];
    let stopped = AtomicBool::new(false);
    let clock = Clock {
        deadline,
        stopped: &stopped,
        rows_per_check: (WORK_PER_CHECK / KC.saturating_mul(n).max(1)).max(1),
    };
    if m > 0 && n > 0 && k > 0 {
        let work = m.saturating_mul(k).saturating_mul(n);
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(m)
            .min(work / WORK_PER_THREAD + 1);
        let rows_per_thread = m.div_ceil(threads);
        if threads <= 1 {
            rows(&mut c, &a.data, &b.data, k, n, &clock);
        } else {
            std::thread::scope(|scope| {
                for (c_rows, a_rows) in c
                    .chunks_mut(rows_per_thread * n)
                    .zip(a.data.chunks(rows_per_thread * k))
                {
                    scope.spawn(|| rows(c_rows, a_rows, &b.data, k, n, &clock));
                }
            });
        }
    }
    if stopped.load(Ordering::Relaxed) {
        return Err(NativeError::Deadline);
    }
    c.iter_mut().for_each(|x| *x = canonical_f32(*x));
    Ok(Tensor {
        shape: vec![m as u32, n as u32],
        data: c,
    })
}

/// `c += a × b` for a band of rows (`a`: rows × k, `c`: rows × n), p ascending in blocks of
/// `KC` (block by block, so each element still sums p = 0, 1, …, k − 1 in order).
fn rows(c: &mut [f32], a: &[f32], b: &[f32], k: usize, n: usize, clock: &Clock<'_>) {
    for p0 in (0..k).step_by(KC) {
        let p1 = (p0 + KC).min(k);
        let b_block = &b[p0 * n..p1 * n];
        for (i, (c_row, a_row)) in c.chunks_exact_mut(n).zip(a.chunks_exact(k)).enumerate() {
            if i % clock.rows_per_check == 0 && clock.stop() {
                return;
            }
            for (&a_ip, b_row) in a_row[p0..p1].iter().zip(b_block.chunks_exact(n)) {
                for (c_ij, &b_pj) in c_row.iter_mut().zip(b_row) {
                    *c_ij += a_ip * b_pj;
                }
            }
        }
    }
}

/// The deadline, shared by the threads of one product: the first to see it passed stops all.
struct Clock<'a> {
    deadline: Option<Instant>,
    stopped: &'a AtomicBool,
    rows_per_check: usize,
}

impl Clock<'_> {
    fn stop(&self) -> bool {
        if self.stopped.load(Ordering::Relaxed) {
            return true;
        }
        let passed = self.deadline.is_some_and(|d| Instant::now() >= d);
        if passed {
            self.stopped.store(true, Ordering::Relaxed);
        }
        passed
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
    fn a_product_past_its_deadline_stops_and_says_so() {
        use super::{NativeError, matmul_until};
        let (a, b) = (tensor(600, 600, 1), tensor(600, 600, 2));
        let started = std::time::Instant::now();
        assert_eq!(
            matmul_until(&a, &b, Some(started)),
            Err(NativeError::Deadline)
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
        let far = started + std::time::Duration::from_secs(3600);
        assert_eq!(
            matmul_until(&a, &b, Some(far)).expect("in time").data,
            matmul(&a, &b).expect("in time").data
        );
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
