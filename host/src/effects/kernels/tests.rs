//! Backend choice and the GPU tolerance. The native kernels' own tests are in `native.rs`.

use super::*;

/// f32's unit roundoff, 2⁻²⁴.
const UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;
/// The smallest normal f32, 2⁻¹²⁶: a GPU may flush subnormal products to zero.
const SMALLEST_NORMAL: f64 = f32::MIN_POSITIVE as f64;

/// The documented bound on `|x − y|` for two f32 matmuls of `a` `[m, k]` and `b` `[k, n]`
/// summed in any orders: each is within `γ_k·(|A|·|B|)ᵢⱼ` of the exact product (`γ_k =
/// k·u / (1 − k·u)`, Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1), so they
/// are within twice that of each other, plus `k·2⁻¹²⁶` for flushed subnormals.
fn matmul_tolerance(a: &Tensor, b: &Tensor) -> Vec<f64> {
    let (m, k, n) = (
        a.shape[0] as usize,
        a.shape[1] as usize,
        b.shape[1] as usize,
    );
    let gamma = k as f64 * UNIT_ROUNDOFF / (1.0 - k as f64 * UNIT_ROUNDOFF);
    let mut bound = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let magnitude: f64 = (0..k)
                .map(|l| f64::from(a.data[i * k + l].abs()) * f64::from(b.data[l * n + j].abs()))
                .sum();
            bound.push(2.0 * gamma * magnitude + k as f64 * SMALLEST_NORMAL);
        }
    }
    bound
}

/// Panics with the worst element unless `x` and `y` (two answers for `a × b`) agree within
/// [`matmul_tolerance`].
fn assert_within_tolerance(a: &Tensor, b: &Tensor, x: &Tensor, y: &Tensor) {
    assert_eq!(x.shape, y.shape);
    let bound = matmul_tolerance(a, b);
    for (index, ((&x, &y), &bound)) in x.data.iter().zip(&y.data).zip(&bound).enumerate() {
        let error = (f64::from(x) - f64::from(y)).abs();
        assert!(
            error <= bound,
            "element {index}: {x} vs {y}, |difference| {error:e} > tolerance {bound:e} \
             (shapes {:?} × {:?})",
            a.shape,
            b.shape
        );
    }
}

/// A matrix of uniform values in [-1, 1) from a xorshift generator (cancellation included).
fn random_matrix(rows: u32, cols: u32, seed: &mut u64) -> Tensor {
    let data = (0..rows * cols)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    Tensor {
        shape: vec![rows, cols],
        data,
    }
}

/// `[m, k, n]` shapes: degenerate, odd, square, and long dot products.
const SHAPES: &[[u32; 3]] = &[
    [1, 1, 1],
    [3, 5, 2],
    [17, 33, 9],
    [64, 64, 64],
    [7, 1000, 5],
    [4, 4096, 3],
];

/// The naive f32 product with the dot products summed backwards: another summation order.
fn matmul_backwards(a: &Tensor, b: &Tensor) -> Tensor {
    let (m, k, n) = (
        a.shape[0] as usize,
        a.shape[1] as usize,
        b.shape[1] as usize,
    );
    let mut data = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for l in (0..k).rev() {
                acc += a.data[i * k + l] * b.data[l * n + j];
            }
            data.push(acc);
        }
    }
    Tensor {
        shape: vec![m as u32, n as u32],
        data,
    }
}

#[test]
fn tolerance_holds_between_two_summation_orders() {
    // What a GPU sgemm will be held to, checked on the CPU between ndarray's blocked GEMM and
    // a naive loop summed the other way: two orders, as native and cuBLAS are.
    let kernels = Kernels::default();
    let mut seed = 0x9E37_79B9_7F4A_7C15;
    for &[m, k, n] in SHAPES {
        let (a, b) = (
            random_matrix(m, k, &mut seed),
            random_matrix(k, n, &mut seed),
        );
        let native = kernels
            .run("matmul", &[a.clone(), b.clone()], far())
            .expect("the kernel runs");
        assert_within_tolerance(&a, &b, &native, &matmul_backwards(&a, &b));
    }
}

#[test]
fn tolerance_is_not_vacuous() {
    // One ulp-scale error per element passes; an error of 1e-3 on a 64-long dot product of
    // values in [-1, 1) does not.
    let mut seed = 7;
    let (a, b) = (
        random_matrix(8, 64, &mut seed),
        random_matrix(64, 8, &mut seed),
    );
    let native = Kernels::default()
        .run("matmul", &[a.clone(), b.clone()], far())
        .expect("the kernel runs");
    let mut off = native.clone();
    off.data[5] += 1e-3;
    let bound = matmul_tolerance(&a, &b)[5];
    assert!(
        bound < 1e-3,
        "tolerance {bound:e} would accept a 1e-3 error"
    );
    assert!(f64::from(off.data[5] - native.data[5]).abs() > bound);
}

#[test]
fn default_is_native_without_probing() {
    assert_eq!(Kernels::default().backend(), "native (CUDA not probed)");
}

#[test]
fn every_backend_serves_every_kernel_like_native() {
    let kernels = Kernels::detect();
    let mut seed = 42;
    let (a, b) = (
        random_matrix(9, 13, &mut seed),
        random_matrix(13, 4, &mut seed),
    );
    let x = random_matrix(5, 6, &mut seed);
    for (name, args) in [
        ("matmul", vec![a.clone(), b.clone()]),
        ("softmax", vec![x.clone()]),
        ("conv2d", vec![x, random_matrix(2, 3, &mut seed)]),
    ] {
        let got = kernels.run(name, &args, far()).expect("the kernel runs");
        assert_eq!(
            got,
            native::run(name, &args, far()).expect("the kernel runs"),
            "{name} on {}",
            kernels.backend()
        );
    }
    assert!(kernels.run("matmul", &[a.clone(), a], far()).is_err());
}

#[cfg(not(feature = "cuda"))]
#[test]
fn detect_without_the_cuda_feature_says_so() {
    assert_eq!(
        Kernels::detect().backend(),
        "native (built without the `cuda` feature)"
    );
}

/// Runs whenever the `cuda` feature is on: on a CUDA device, compares what the detected
/// backend answers with native on random matrices; without one, says on stderr that the GPU
/// comparison was skipped and why, and checks that detection fell back cleanly.
#[cfg(feature = "cuda")]
#[test]
fn gpu_matmul_agrees_with_native_within_tolerance() {
    let kernels = Kernels::detect();
    let backend = kernels.backend();
    if !backend.starts_with("cuda: ") {
        eprintln!(
            "SKIPPED gpu_matmul_agrees_with_native_within_tolerance: no usable CUDA backend: \
             {backend}"
        );
        let why = backend
            .strip_prefix("native (")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("not a native fallback: {backend}"));
        assert!(!why.is_empty() && why != "CUDA not probed", "{backend}");
        return;
    }
    if backend.contains("on GPU: none") {
        eprintln!(
            "NOTE gpu_matmul_agrees_with_native_within_tolerance: device found, but no kernel \
             runs on it, so this compares native with native: {backend}"
        );
    }
    let mut seed = 0xD1B5_4A32_D192_ED03;
    for &[m, k, n] in SHAPES.iter().chain(&[[512, 512, 512], [1, 65_536, 1]]) {
        let (a, b) = (
            random_matrix(m, k, &mut seed),
            random_matrix(k, n, &mut seed),
        );
        let args = [a.clone(), b.clone()];
        let answer = kernels
            .run("matmul", &args, far())
            .expect("the kernel runs");
        assert_within_tolerance(
            &a,
            &b,
            &answer,
            &native::run("matmul", &args, far()).expect("the kernel runs"),
        );
    }
}

/// A deadline no test reaches.
fn far() -> std::time::Instant {
    std::time::Instant::now() + std::time::Duration::from_secs(3600)
}
