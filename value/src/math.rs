//! The hot f32 functions, in an inlinable form, shared by `eval` and every guest.
//!
//! These are the `libm` crate's own algorithms (FreeBSD msun, via musl, as `libm` 0.2.16 has
//! them), copied statement for statement and marked `#[inline(always)]`. Why a copy: a
//! generated guest links `libm` as a separate crate, and rustc does not inline a
//! non-`#[inline]` function across crates without LTO, so every element of a fused `tanh` loop
//! paid two calls (`tanhf` → `expm1f`), each with wasmtime's fuel and epoch checks at function
//! entry. Measured on the 1M-element chain of `benches/pipeline.rs` (`graphjit run --json`,
//! `run_us`): 13.8 ms with `libm`'s functions, 11.4 ms with these marked plain `#[inline]`
//! (LLVM declined `expm1f`'s three call sites), 8.4 ms with `#[inline(always)]`. LTO would
//! inline without a copy, but costs every cold compile (and the template's rlibs carry no
//! bitcode).
//!
//! Invariants:
//! - Every function here returns the same bits as its `libm` namesake for every input; the
//!   tests below check that over a dense sweep of all f32 bit patterns and around each branch
//!   threshold. Both sides of the differential test (host `eval` and the guest) call these, so
//!   they agree by construction; the sweep is what ties them to `libm`.
//! - Only what `libm` itself does: no fused multiply-add (Rust never contracts), no
//!   platform intrinsics. The one change: `force_eval!` (a volatile read that raises the
//!   floating-point inexact/underflow flags) is dropped; flags are not observable here.
//!
//! `fminf`/`fmaxf` are here for the same reason: one comparison each, but a call per element
//! when they stay in `libm` (a fused `min`/`max`, or a `reduce_max`, calls them per element).
//!
//! Original notice for the algorithms (FreeBSD `s_expf.c`, `s_expm1f.c`, `s_tanhf.c`):
//! Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
//! Developed at SunPro, a Sun Microsystems, Inc. business. Permission to use, copy, modify, and
//! distribute this software is freely granted, provided that this notice is preserved.
//! (Conversion to float by Ian Lance Taylor, Cygnus Support; Rust port by the `libm` authors,
//! MIT OR Apache-2.0.)

/// `e^x − 1`, accurate near 0 (`libm::expm1f`).
#[inline(always)]
#[must_use]
pub fn expm1f(mut x: f32) -> f32 {
    const LN2_HI: f32 = f32::from_bits(0x3f31_7180); /* 6.9313812256e-01 */
    const LN2_LO: f32 = f32::from_bits(0x3717_f7d1); /* 9.0580006145e-06 */
    const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b); /* 1.4426950216e+00 */
    const Q1: f32 = f32::from_bits(0xbd08_8868); /* -3.3333212137e-2 */
    const Q2: f32 = f32::from_bits(0x3acf_3010); /* 1.5807170421e-3 */
    let x1p127 = f32::from_bits(0x7f00_0000);

    let mut hx = x.to_bits();
    let sign = (hx >> 31) != 0;
    hx &= 0x7fff_ffff;

    /* filter out huge and non-finite argument */
    if hx >= 0x4195_b844 {
        /* |x| >= 27 ln2 */
        if hx > 0x7f80_0000 {
            /* NaN */
            return x;
        }
        if sign {
            return -1.;
        }
        if hx > 0x42b1_7217 {
            /* x > log(FLT_MAX) */
            x *= x1p127;
            return x;
        }
    }

    let k: i32;
    let hi: f32;
    let lo: f32;
    let mut c = 0f32;
    /* argument reduction */
    if hx > 0x3eb1_7218 {
        /* |x| > 0.5 ln2 */
        if hx < 0x3F85_1592 {
            /* and |x| < 1.5 ln2 */
            if sign {
                hi = x + LN2_HI;
                lo = -LN2_LO;
                k = -1;
            } else {
                hi = x - LN2_HI;
                lo = LN2_LO;
                k = 1;
            }
        } else {
            k = (INV_LN2 * x + (if sign { -0.5 } else { 0.5 })) as i32;
            let t = k as f32;
            hi = x - t * LN2_HI; /* t*ln2_hi is exact here */
            lo = t * LN2_LO;
        }
        x = hi - lo;
        c = (hi - x) - lo;
    } else if hx < 0x3300_0000 {
        /* |x| < 2**-25: return x */
        return x;
    } else {
        k = 0;
    }

    /* x is now in primary range */
    let hfx = 0.5 * x;
    let hxs = x * hfx;
    let r1 = 1. + hxs * (Q1 + hxs * Q2);
    let t = 3. - r1 * hfx;
    let mut e = hxs * ((r1 - t) / (6. - x * t));
    if k == 0 {
        /* c is 0 */
        return x - (x * e - hxs);
    }
    e = x * (e - c) - c;
    e -= hxs;
    /* exp(x) ~ 2^k (x_reduced - e + 1) */
    if k == -1 {
        return 0.5 * (x - e) - 0.5;
    }
    if k == 1 {
        if x < -0.25 {
            return -2. * (e - (x + 0.5));
        }
        return 1. + 2. * (x - e);
    }
    let twopk = f32::from_bits(((0x7f + k) << 23) as u32); /* 2^k */
    if !(0..=56).contains(&k) {
        /* suffice to return exp(x)-1 */
        let mut y = x - e + 1.;
        if k == 128 {
            y = y * 2. * x1p127;
        } else {
            y *= twopk;
        }
        return y - 1.;
    }
    let uf = f32::from_bits(((0x7f - k) << 23) as u32); /* 2^-k */
    if k < 23 {
        (x - e + (1. - uf)) * twopk
    } else {
        (x - (e + uf) + 1.) * twopk
    }
}

/// Hyperbolic tangent (`libm::tanhf`).
#[inline(always)]
#[must_use]
pub fn tanhf(mut x: f32) -> f32 {
    /* x = |x| */
    let mut ix = x.to_bits();
    let sign = (ix >> 31) != 0;
    ix &= 0x7fff_ffff;
    x = f32::from_bits(ix);
    let w = ix;

    let tt = if w > 0x3f0c_9f54 {
        /* |x| > log(3)/2 ~= 0.5493 or nan */
        if w > 0x4120_0000 {
            /* |x| > 10 */
            1. + 0. / x
        } else {
            let t = expm1f(2. * x);
            1. - 2. / (t + 2.)
        }
    } else if w > 0x3e82_c578 {
        /* |x| > log(5/3)/2 ~= 0.2554 */
        let t = expm1f(2. * x);
        t / (t + 2.)
    } else if w >= 0x0080_0000 {
        /* |x| >= 0x1p-126 */
        let t = expm1f(-2. * x);
        -t / (t + 2.)
    } else {
        /* |x| is subnormal */
        x
    };
    if sign { -tt } else { tt }
}

/// `e^x` (`libm::expf`).
#[inline(always)]
#[must_use]
pub fn expf(mut x: f32) -> f32 {
    const LN2_HI: f32 = f32::from_bits(0x3f31_7200); /* 6.9314575195e-01 */
    const LN2_LO: f32 = f32::from_bits(0x35bf_be8e); /* 1.4286067653e-06 */
    const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b); /* 1.4426950216e+00 */
    const P1: f32 = f32::from_bits(0x3e2a_aa8f); /* 1.6666625440e-1 */
    const P2: f32 = f32::from_bits(0xbb35_5215); /* -2.7667332906e-3 */
    let x1p127 = f32::from_bits(0x7f00_0000);

    let mut hx = x.to_bits();
    let sign = (hx >> 31) as i32; /* sign bit of x */
    let signb: bool = sign != 0;
    hx &= 0x7fff_ffff; /* high word of |x| */

    /* special cases */
    if hx >= 0x42ae_ac50 {
        /* |x| >= -87.33655f or NaN */
        if hx > 0x7f80_0000 {
            /* NaN */
            return x;
        }
        if (hx >= 0x42b1_7218) && (!signb) {
            /* x >= 88.722839f: overflow */
            x *= x1p127;
            return x;
        }
        if signb && hx >= 0x42cf_f1b5 {
            /* x <= -103.972084f: underflow */
            return 0.;
        }
    }

    /* argument reduction */
    let k: i32;
    let hi: f32;
    let lo: f32;
    if hx > 0x3eb1_7218 {
        /* |x| > 0.5 ln2 */
        if hx > 0x3f85_1592 {
            /* |x| > 1.5 ln2 */
            k = (INV_LN2 * x + (if signb { -0.5 } else { 0.5 })) as i32;
        } else {
            k = 1 - sign - sign;
        }
        let kf = k as f32;
        hi = x - kf * LN2_HI; /* k*ln2hi is exact here */
        lo = kf * LN2_LO;
        x = hi - lo;
    } else if hx > 0x3900_0000 {
        /* |x| > 2**-14 */
        k = 0;
        hi = x;
        lo = 0.;
    } else {
        return 1. + x;
    }

    /* x is now in primary range */
    let xx = x * x;
    let c = x - xx * (P1 + xx * P2);
    let y = 1. + (x * c / (2. - c) - lo + hi);
    if k == 0 { y } else { libm::scalbnf(y, k) }
}

/// The lesser of two, or the one that is not NaN (`libm::fminf`: IEEE 754-2008 `minNum`; which
/// zero of `-0.0`/`+0.0` is returned follows libm's comparison).
#[inline(always)]
#[must_use]
pub fn fminf(x: f32, y: f32) -> f32 {
    let r = if y.is_nan() || x < y { x } else { y };
    r * 1.0
}

/// The greater of two, or the one that is not NaN (`libm::fmaxf`: IEEE 754-2008 `maxNum`).
#[inline(always)]
#[must_use]
pub fn fmaxf(x: f32, y: f32) -> f32 {
    let r = if x.is_nan() || x < y { y } else { x };
    r * 1.0
}

#[cfg(test)]
mod tests {
    use super::{expf, expm1f, fmaxf, fminf, tanhf};

    /// Every `stride`-th f32 bit pattern, both signs, plus a window of ulps around each
    /// branch threshold the three functions test.
    fn inputs(stride: u32) -> impl Iterator<Item = f32> {
        const THRESHOLDS: [u32; 14] = [
            0x3f0c_9f54,
            0x4120_0000,
            0x3e82_c578,
            0x0080_0000,
            0x4195_b844,
            0x7f80_0000,
            0x42b1_7217,
            0x3eb1_7218,
            0x3F85_1592,
            0x3300_0000,
            0x42ae_ac50,
            0x42b1_7218,
            0x42cf_f1b5,
            0x3900_0000,
        ];
        let sweep = (0..=u32::MAX / stride).map(move |i| i * stride);
        let near = THRESHOLDS
            .into_iter()
            .flat_map(|t| t.saturating_sub(64)..t.saturating_add(64));
        sweep
            .chain(near)
            .flat_map(|bits| [bits, bits | 0x8000_0000])
            .map(f32::from_bits)
    }

    fn same_bits(name: &str, ours: fn(f32) -> f32, reference: fn(f32) -> f32) {
        let mut checked = 0u64;
        for x in inputs(251) {
            let (a, b) = (ours(x), reference(x));
            let same = a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            assert!(
                same,
                "{name}({x:e} = {:#010x}): {a:e} vs libm {b:e}",
                x.to_bits()
            );
            checked += 1;
        }
        assert!(checked > 34_000_000, "{name}: swept {checked} inputs");
    }

    #[test]
    fn tanhf_is_libms() {
        same_bits("tanhf", tanhf, libm::tanhf);
    }

    #[test]
    fn expm1f_is_libms() {
        same_bits("expm1f", expm1f, libm::expm1f);
    }

    #[test]
    fn expf_is_libms() {
        same_bits("expf", expf, libm::expf);
    }

    /// Every pair of a set of edge values (zeros, infinities, NaN, subnormals, extremes) and a
    /// sweep of `x` against each of them as `y`.
    #[test]
    fn fminf_and_fmaxf_are_libms() {
        let edges: [f32; 12] = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
            f32::MAX,
            f32::MIN,
            0.5,
        ];
        let mut checked = 0u64;
        for y in edges {
            for x in inputs(65_521).chain(edges) {
                for (name, ours, reference) in [
                    (
                        "fminf",
                        fminf as fn(f32, f32) -> f32,
                        libm::fminf as fn(f32, f32) -> f32,
                    ),
                    ("fmaxf", fmaxf, libm::fmaxf),
                ] {
                    for (a, b) in [(x, y), (y, x)] {
                        let (r, l) = (ours(a, b), reference(a, b));
                        let same = r.to_bits() == l.to_bits() || (r.is_nan() && l.is_nan());
                        assert!(same, "{name}({a:e}, {b:e}): {r:e} vs libm {l:e}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1_000_000, "checked {checked} pairs");
    }
}
