//! The operations generated code calls: checked integers, libm floats, f32 tensor kernels.
//!
//! Invariants:
//! - Semantics match `eval` (docs/graph-format.md, "Semantics") bit for bit; this file is an
//!   independent implementation of the same rules, and the differential tests compare them.
//! - No panics: no unchecked indexing (iterators and `get`), no unchecked arithmetic; every
//!   allocation reserves fallibly (`try_reserve_exact`) so running out of memory is a typed error.
//! - No floating-point contraction: every multiply and add is its own IEEE operation.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::{InvalidValue, OutOfMemory, RunError, Tensor};

/// The float functions both `eval` and generated code use (never the platform's libm).
pub use libm;
/// The hot ones (`tanhf`, `expf`) in the inlinable form `eval` uses too: one loop, no calls.
pub use graphjit_value::math;
use graphjit_value::axes;

// ---- i64, checked ----------------------------------------------------------------------

/// `x`, or `Overflow` at `node`. A `match`, not `Option::ok_or`: `ok_or` builds the error
/// before it knows it needs one and then drops it, a call to `RunError`'s drop on every
/// element of a hot loop.
#[inline(always)]
fn or_overflow(x: Option<i64>, node: u32) -> Result<i64, RunError> {
    match x {
        Some(v) => Ok(v),
        None => Err(RunError::Overflow(node)),
    }
}

/// `a + b`, or `Overflow` at `node`.
#[inline]
pub fn add_i64(a: i64, b: i64, node: u32) -> Result<i64, RunError> {
    or_overflow(a.checked_add(b), node)
}
/// `a - b`, or `Overflow` at `node`.
#[inline]
pub fn sub_i64(a: i64, b: i64, node: u32) -> Result<i64, RunError> {
    or_overflow(a.checked_sub(b), node)
}
/// `a * b`, or `Overflow` at `node`.
#[inline]
pub fn mul_i64(a: i64, b: i64, node: u32) -> Result<i64, RunError> {
    // `i64::checked_mul` lowers to a 128-bit multiply (a call to `__multi3`) on wasm32; two
    // factors that fit in 32 bits cannot overflow 64, and that is the common case.
    if let (Ok(x), Ok(y)) = (i32::try_from(a), i32::try_from(b)) {
        return Ok(i64::from(x) * i64::from(y));
    }
    or_overflow(a.checked_mul(b), node)
}
/// `a / b` truncating; `DivisionByZero` or `Overflow` (`MIN / -1`) at `node`.
#[inline]
pub fn div_i64(a: i64, b: i64, node: u32) -> Result<i64, RunError> {
    if b == 0 {
        return Err(RunError::DivisionByZero(node));
    }
    or_overflow(a.checked_div(b), node)
}
/// `a % b`; `DivisionByZero` or `Overflow` (`MIN % -1`) at `node`.
#[inline]
pub fn rem_i64(a: i64, b: i64, node: u32) -> Result<i64, RunError> {
    if b == 0 {
        return Err(RunError::DivisionByZero(node));
    }
    or_overflow(a.checked_rem(b), node)
}
/// `-a`, or `Overflow` for `i64::MIN`.
#[inline]
pub fn neg_i64(a: i64, node: u32) -> Result<i64, RunError> {
    or_overflow(a.checked_neg(), node)
}
/// `|a|`, or `Overflow` for `i64::MIN`.
#[inline]
pub fn abs_i64(a: i64, node: u32) -> Result<i64, RunError> {
    or_overflow(a.checked_abs(), node)
}
/// The smaller of `a` and `b`.
#[inline]
pub fn min_i64(a: i64, b: i64) -> i64 {
    if b < a { b } else { a }
}
/// The larger of `a` and `b`.
#[inline]
pub fn max_i64(a: i64, b: i64) -> i64 {
    if b > a { b } else { a }
}

// ---- f64 and conversions ----------------------------------------------------------------

/// `f64 → i64` by truncation; NaN or out of range is `InvalidValue` at `node`.
#[inline]
pub fn to_i64(x: f64, node: u32) -> Result<i64, RunError> {
    // 2^63 as f64 is exact; every finite x in [-2^63, 2^63) truncates into range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if x.is_nan() || x < -LIMIT || x >= LIMIT {
        return Err(RunError::InvalidValue(InvalidValue {
            node,
            message: alloc::format!("{x} is not representable as i64"),
        }));
    }
    Ok(x as i64)
}
/// Decimal text of an i64.
pub fn i64_to_string(x: i64) -> String {
    x.to_string()
}
/// Decimal text of an f64 (Rust's `Display`, shortest round-trip form).
pub fn f64_to_string(x: f64) -> String {
    x.to_string()
}
/// String concatenation.
pub fn concat(a: &str, b: &str) -> String {
    let mut s = String::with_capacity(a.len().saturating_add(b.len()));
    s.push_str(a);
    s.push_str(b);
    s
}
/// Byte length of a string.
#[inline]
pub fn len(s: &str) -> i64 {
    i64::try_from(s.len()).unwrap_or(i64::MAX)
}

// ---- strings: `graphjit_value::text`, the rules `eval` uses too ---------------------------

use graphjit_value::text;

/// Whether `s` contains `pattern`.
pub fn contains(s: &str, pattern: &str) -> bool {
    text::contains(s, pattern)
}
/// Whether `s` starts with `prefix`.
pub fn starts_with(s: &str, prefix: &str) -> bool {
    text::starts_with(s, prefix)
}
/// Whether `s` ends with `suffix`.
pub fn ends_with(s: &str, suffix: &str) -> bool {
    text::ends_with(s, suffix)
}
/// Every occurrence of `from` in `s` replaced by `to`; a result that cannot be allocated is
/// `OutOfMemory` at `node`, before any of it is built.
pub fn replace(s: &str, from: &str, to: &str, node: u32) -> Result<String, RunError> {
    let bytes = text::replaced_len(s, from, to).unwrap_or(usize::MAX);
    let mut out = String::new();
    out.try_reserve_exact(bytes)
        .map_err(|_| crate::out_of_memory(node, bytes))?;
    text::replace_into(&mut out, s, from, to);
    Ok(out)
}
/// `s` without leading and trailing whitespace.
pub fn trim(s: &str) -> String {
    text::trim(s)
}
/// `s` in lower case.
pub fn to_lower(s: &str) -> String {
    text::to_lower(s)
}
/// `s` in upper case.
pub fn to_upper(s: &str) -> String {
    text::to_upper(s)
}
/// `len` chars of `s` from char `start`; a negative one is `InvalidValue` at `node`.
pub fn substring(s: &str, start: i64, len: i64, node: u32) -> Result<String, RunError> {
    text::substring(s, start, len).map_err(|message| invalid(node, message))
}
/// `s` as an i64, or `InvalidValue` at `node`.
pub fn parse_i64(s: &str, node: u32) -> Result<i64, RunError> {
    text::parse_i64(s).map_err(|message| invalid(node, message))
}
/// `s` as an f64, or `InvalidValue` at `node`.
pub fn parse_f64(s: &str, node: u32) -> Result<f64, RunError> {
    text::parse_f64(s).map_err(|message| invalid(node, message))
}

fn invalid(node: u32, message: String) -> RunError {
    RunError::InvalidValue(InvalidValue { node, message })
}

// ---- f32 element functions (the tensor ops' scalar rules) --------------------------------

/// `max(x, 0)`; NaN and -0.0 give +0.0.
#[inline]
pub fn relu_f32(x: f32) -> f32 {
    if x > 0.0 { x } else { 0.0 }
}
/// `1 / (1 + e^-x)`.
#[inline]
pub fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + math::expf(-x))
}
/// `-x`.
#[inline]
pub fn neg_f32(x: f32) -> f32 {
    -x
}
/// `a + b`.
#[inline]
pub fn add_f32(a: f32, b: f32) -> f32 {
    a + b
}
/// `a - b`.
#[inline]
pub fn sub_f32(a: f32, b: f32) -> f32 {
    a - b
}
/// `a * b`.
#[inline]
pub fn mul_f32(a: f32, b: f32) -> f32 {
    a * b
}
/// `a / b`.
#[inline]
pub fn div_f32(a: f32, b: f32) -> f32 {
    a / b
}

// ---- tensors ---------------------------------------------------------------------------

/// An empty buffer with room for `shape`'s elements, or `OutOfMemory` at `node`.
fn alloc_tensor(shape: &[u32], node: u32) -> Result<(Vec<u32>, Vec<f32>), RunError> {
    let count = Tensor::element_count(shape).ok_or(RunError::OutOfMemory(OutOfMemory {
        node,
        bytes: u64::MAX,
    }))?;
    let mut data = Vec::new();
    data.try_reserve_exact(count)
        .map_err(|_| crate::out_of_memory(node, count.saturating_mul(4)))?;
    Ok((shape.to_vec(), data))
}

fn element_count(shape: &[u32]) -> usize {
    Tensor::element_count(shape).unwrap_or(0)
}

/// A tensor from its shape and its elements' bits (exact, NaN included).
pub fn tensor_from_bits(shape: &[u32], bits: &[u32], node: u32) -> Result<Tensor, RunError> {
    let (shape, mut data) = alloc_tensor(shape, node)?;
    data.extend(bits.iter().map(|&b| f32::from_bits(b)));
    Ok(Tensor { shape, data })
}

/// `data[i] = i as f32`.
pub fn iota(shape: &[u32], node: u32) -> Result<Tensor, RunError> {
    let (shape, mut data) = alloc_tensor(shape, node)?;
    data.extend((0..element_count(&shape)).map(|i| i as f32));
    Ok(Tensor { shape, data })
}

/// Every element `f32::from_bits(bits)`.
pub fn fill(shape: &[u32], bits: u32, node: u32) -> Result<Tensor, RunError> {
    let (shape, mut data) = alloc_tensor(shape, node)?;
    data.resize(element_count(&shape), f32::from_bits(bits));
    Ok(Tensor { shape, data })
}

/// `f64 → tensor []`.
pub fn scalar_tensor(x: f64, node: u32) -> Result<Tensor, RunError> {
    let (shape, mut data) = alloc_tensor(&[], node)?;
    data.push(x as f32);
    Ok(Tensor { shape, data })
}

/// The element of a one-element tensor as f64 (typing guarantees one element).
pub fn item(t: &Tensor) -> f64 {
    t.data.first().map_or(f64::NAN, |&x| f64::from(x))
}

/// Applies `f` to every element.
pub fn map(a: &Tensor, f: impl Fn(f32) -> f32, node: u32) -> Result<Tensor, RunError> {
    let (shape, mut data) = alloc_tensor(&a.shape, node)?;
    data.extend(a.data.iter().map(|&x| f(x)));
    Ok(Tensor { shape, data })
}

/// Applies `f` to every element, reusing the tensor's buffer (when the input is not needed
/// afterwards).
pub fn map_in_place(mut a: Tensor, f: impl Fn(f32) -> f32) -> Tensor {
    a.data.iter_mut().for_each(|x| *x = f(*x));
    a
}

/// A fused chain of elementwise ops, as one loop: element `i` of the result is `f` of the
/// inputs' elements `i` (a `[]`-shaped input is broadcast) and of `i` itself (a fused `iota`).
/// No intermediate tensor exists.
pub fn fused<const K: usize>(
    inputs: [&Tensor; K],
    shape: &[u32],
    node: u32,
    f: impl Fn([f32; K], usize) -> f32,
) -> Result<Tensor, RunError> {
    let (shape, mut data) = alloc_tensor(shape, node)?;
    let n = element_count(&shape);
    let sources = sources(inputs, n, node)?;
    // Block by block, each block's reads bounds-known ([`Blocks`]) and written by `extend`
    // (no capacity check per element), so LLVM can vectorize the loop (simd128) when `f` has
    // no calls or branches it cannot turn into selects.
    let blocks = n / LANES;
    let cut = Blocks::new(&sources, blocks);
    for block in 0..blocks {
        let base = block * LANES;
        let rows = cut.rows(block);
        data.extend((0..LANES).map(|lane| f(lane_of(&rows, lane), base + lane)));
    }
    data.extend((blocks * LANES..n).map(|i| f(elements(&sources, i), i)));
    Ok(Tensor { shape, data })
}

/// The one value of a broadcast (`[]`-shaped) input of a fused loop, read once before the
/// loop (generated code passes only element inputs to the loop itself).
pub fn broadcast(t: &Tensor, node: u32) -> Result<f32, RunError> {
    match (t.shape.as_slice(), t.data.as_slice()) {
        ([], [v]) => Ok(*v),
        _ => Err(bad_shape(node)),
    }
}

/// Each element input as exactly `n` elements, checked once before the loop: a shorter one is
/// a shape error (types make it impossible; the guest does not rely on that).
fn sources<'a, const K: usize>(
    inputs: [&'a Tensor; K],
    n: usize,
    node: u32,
) -> Result<[&'a [f32]; K], RunError> {
    let mut out: [&[f32]; K] = [&[]; K];
    for (slot, input) in out.iter_mut().zip(inputs) {
        *slot = input.data.get(..n).ok_or_else(|| bad_shape(node))?;
    }
    Ok(out)
}

/// The inputs' elements `i` (`i < n`, so every read is in bounds; `get` keeps it panic-free).
#[inline(always)]
fn elements<const K: usize>(sources: &[&[f32]; K], i: usize) -> [f32; K] {
    core::array::from_fn(|k| sources[k].get(i).copied().unwrap_or(f32::NAN))
}

/// The sources of a blocked loop, each cut into whole blocks of eight (the tail is read with
/// [`elements`]). A block's reads are then array reads whose bounds are known, so the lane loop
/// has no check per element and simd128 vectorizes it. With a `get` per element and per source
/// LLVM kept loops over tensor inputs scalar: 99 fuel per element on a two-input chain, more
/// than the unfused graph (issue 17).
struct Blocks<'a, const K: usize> {
    chunks: [&'a [[f32; LANES]]; K],
}

/// What a block read past a source's end would see (never, as every source holds `n`).
const MISSING_BLOCK: [f32; LANES] = [f32::NAN; LANES];

impl<'a, const K: usize> Blocks<'a, K> {
    /// The first `blocks` blocks of eight of every source.
    #[inline(always)]
    fn new(sources: &[&'a [f32]; K], blocks: usize) -> Self {
        let body = blocks * LANES;
        Blocks {
            chunks: core::array::from_fn(|k| sources[k].get(..body).unwrap_or(&[]).as_chunks::<LANES>().0),
        }
    }

    /// Block `block` of every source.
    #[inline(always)]
    fn rows(&self, block: usize) -> [&'a [f32; LANES]; K] {
        core::array::from_fn(|k| self.chunks[k].get(block).unwrap_or(&MISSING_BLOCK))
    }
}

/// Lane `lane` (< 8) of every row.
#[inline(always)]
fn lane_of<const K: usize>(rows: &[&[f32; LANES]; K], lane: usize) -> [f32; K] {
    core::array::from_fn(|k| rows[k].get(lane).copied().unwrap_or(f32::NAN))
}

/// How a fused reduction walks its elements (the same order, the same bits, either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loop {
    /// Blocks of eight, one element per lane: what simd128 vectorizes, for chains without
    /// calls.
    Blocked,
    /// One element at a time, element `i` into lane `i % 8`: for chains that call out per
    /// element (`exp`, `tanh`, …), which do not vectorize. Measured on the 1M-element `tanh`
    /// chain (`graphjit run --json`, `run_us`): 8.1 ms against 9.1 blocked.
    Plain,
}

/// Which reduction a fused map→reduce ends in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// `sum`
    Sum,
    /// `reduce_max`
    Max,
    /// `reduce_min`
    Min,
    /// `mean`
    Mean,
}

/// A fused chain ending in a reduction: the chain's elements are reduced as they are computed,
/// in the defined order (8 lanes, element `i` into lane `i % 8`, then pairwise), so no tensor
/// of elements exists and the bits equal the unfused chain's `sum`/`reduce_max`/… .
pub fn fused_reduce<const K: usize>(
    inputs: [&Tensor; K],
    shape: &[u32],
    node: u32,
    reduction: Reduction,
    layout: Loop,
    f: impl Fn([f32; K], usize) -> f32,
) -> Result<Tensor, RunError> {
    let n = element_count(shape);
    let sources = sources(inputs, n, node)?;
    // One loop per reduction, each with its combining function known at compile time.
    let s = match reduction {
        Reduction::Sum | Reduction::Mean => lanes(&sources, n, 0.0, add_f32, &f, layout),
        Reduction::Max => lanes(&sources, n, f32::NEG_INFINITY, math::fmaxf, &f, layout),
        Reduction::Min => lanes(&sources, n, f32::INFINITY, math::fminf, &f, layout),
    };
    reduced(finish(s, reduction, n), node)
}

/// Several fused map→reduce programs over one element shape in one loop (horizontal fusion):
/// `f` gives every program's element `i` at once, and output `j` is reduced with
/// `combine(j, …)` (starting from `init[j]`) exactly as [`fused_reduce`] would reduce it alone:
/// same lanes, same order; `reductions[j]` says which outputs are means. The accumulators are
/// kept output by output, eight lanes each, and `combine` is the generated code's own closure,
/// so the lane loop vectorizes as [`fused_reduce`]'s does.
pub fn fused_reductions<const K: usize, const M: usize>(
    inputs: [&Tensor; K],
    shape: &[u32],
    node: u32,
    reductions: [Reduction; M],
    f: impl Fn([f32; K], usize) -> [f32; M],
    combine: impl Fn(usize, f32, f32) -> f32,
) -> Result<[Tensor; M], RunError> {
    let n = element_count(shape);
    let sources = sources(inputs, n, node)?;
    let mut acc: [[f32; LANES]; M] = core::array::from_fn(|j| {
        [match reductions[j] {
            Reduction::Sum | Reduction::Mean => 0.0,
            Reduction::Max => f32::NEG_INFINITY,
            Reduction::Min => f32::INFINITY,
        }; LANES]
    });
    let blocks = n / LANES;
    let cut = Blocks::new(&sources, blocks);
    for block in 0..blocks {
        let base = block * LANES;
        let rows = cut.rows(block);
        let v: [[f32; M]; LANES] = core::array::from_fn(|lane| f(lane_of(&rows, lane), base + lane));
        for (j, lanes) in acc.iter_mut().enumerate() {
            for (lane, a) in lanes.iter_mut().enumerate() {
                *a = combine(j, *a, v[lane][j]);
            }
        }
    }
    for (lane, i) in (blocks * LANES..n).enumerate() {
        let v = f(elements(&sources, i), i);
        for (j, lanes) in acc.iter_mut().enumerate() {
            if let Some(a) = lanes.get_mut(lane) {
                *a = combine(j, *a, v[j]);
            }
        }
    }
    let mut out: [Tensor; M] = core::array::from_fn(|_| Tensor {
        shape: Vec::new(),
        data: Vec::new(),
    });
    for (j, (slot, p)) in out.iter_mut().zip(acc).enumerate() {
        let s = pairwise(p, |a, b| combine(j, a, b));
        *slot = reduced(finish(s, reductions[j], n), node)?;
    }
    Ok(out)
}

/// The defined combine of the eight lane accumulators: `0∘4, 1∘5, 2∘6, 3∘7`, then pairwise.
#[inline(always)]
fn pairwise(p: [f32; LANES], op: impl Fn(f32, f32) -> f32) -> f32 {
    let q = [op(p[0], p[4]), op(p[1], p[5]), op(p[2], p[6]), op(p[3], p[7])];
    let r = [op(q[0], q[2]), op(q[1], q[3])];
    op(r[0], r[1])
}

/// A reduction's value from its combined lanes: `mean` divides by the element count.
fn finish(s: f32, reduction: Reduction, n: usize) -> f32 {
    match reduction {
        Reduction::Mean => s / (n as f32),
        _ => s,
    }
}

/// `f` of elements `0..n` reduced with `op` in the defined order (element `i` into lane
/// `i % 8`, then pairwise), walked as `layout` says: `Blocked` takes eight elements at a time,
/// each lane one, which is the shape simd128 vectorizes (two f32x4 per block).
#[inline(always)]
fn lanes<const K: usize>(
    sources: &[&[f32]; K],
    n: usize,
    init: f32,
    op: impl Fn(f32, f32) -> f32,
    f: &impl Fn([f32; K], usize) -> f32,
    layout: Loop,
) -> f32 {
    let mut p = [init; LANES];
    if layout == Loop::Plain {
        for i in 0..n {
            if let Some(acc) = p.get_mut(i % LANES) {
                *acc = op(*acc, f(elements(sources, i), i));
            }
        }
        return pairwise(p, op);
    }
    let blocks = n / LANES;
    let cut = Blocks::new(sources, blocks);
    for block in 0..blocks {
        let base = block * LANES;
        let rows = cut.rows(block);
        for (lane, acc) in p.iter_mut().enumerate() {
            *acc = op(*acc, f(lane_of(&rows, lane), base + lane));
        }
    }
    for (lane, i) in (blocks * LANES..n).enumerate() {
        if let Some(acc) = p.get_mut(lane) {
            *acc = op(*acc, f(elements(sources, i), i));
        }
    }
    pairwise(p, op)
}

/// Elementwise `f(a[i], b[i])`; a `[]`-shaped side is broadcast, argument order kept, and
/// other shapes by NumPy's rule (`zip_broadcast`).
pub fn zip(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32, node: u32) -> Result<Tensor, RunError> {
    if !(a.shape.is_empty() || b.shape.is_empty() || a.shape == b.shape) {
        return zip_broadcast(a, b, f, node);
    }
    let shape = if a.shape.is_empty() { &b.shape } else { &a.shape };
    let (shape, mut data) = alloc_tensor(shape, node)?;
    match (a.shape.is_empty(), b.shape.is_empty()) {
        (true, false) => {
            let s = a.data.first().copied().unwrap_or(f32::NAN);
            data.extend(b.data.iter().map(|&y| f(s, y)));
        }
        (false, true) => {
            let s = b.data.first().copied().unwrap_or(f32::NAN);
            data.extend(a.data.iter().map(|&x| f(x, s)));
        }
        _ => data.extend(a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y))),
    }
    Ok(Tensor { shape, data })
}

/// `zip` of shapes that broadcast beyond `[]` (NumPy's rule): `graphjit_value::axes`, the
/// code eval runs.
#[inline(never)]
fn zip_broadcast(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32, node: u32) -> Result<Tensor, RunError> {
    let shape = axes::broadcast(&a.shape, &b.shape).ok_or_else(|| bad_shape(node))?;
    let (shape, mut data) = alloc_tensor(&shape, node)?;
    axes::zip_broadcast((&a.data, &a.shape), (&b.data, &b.shape), &shape, f, &mut data)
        .map_err(|_| bad_shape(node))?;
    Ok(Tensor { shape, data })
}

/// The reductions along an axis (`sum`, `reduce_max`, `reduce_min`, `mean` with an `axis`).
pub use graphjit_value::axes::Reduce as AxisReduce;

/// `op` of `a` along `axis` (an axis of `a`, typing checked it), as a tensor of `shape`.
pub fn reduce_axis(a: &Tensor, axis: usize, shape: &[u32], op: AxisReduce, node: u32) -> Result<Tensor, RunError> {
    let (shape, mut data) = alloc_tensor(shape, node)?;
    axes::reduce_axis(&a.data, &a.shape, axis, op, &mut data).map_err(|_| bad_shape(node))?;
    Ok(Tensor { shape, data })
}

/// `layer_norm` of `x` over the axes `axis..`, with `scale` and an optional `bias` of that
/// block's shape.
pub fn layer_norm(x: &Tensor, scale: &Tensor, bias: Option<&Tensor>, axis: usize, epsilon_bits: u32, node: u32) -> Result<Tensor, RunError> {
    let (shape, mut data) = alloc_tensor(&x.shape, node)?;
    let bias = bias.map(|b| b.data.as_slice());
    axes::layer_norm(&x.data, &x.shape, axis, &scale.data, bias, f32::from_bits(epsilon_bits), &mut data)
        .map_err(|_| bad_shape(node))?;
    Ok(Tensor { shape, data })
}

/// `softmax` (with `log`, `log_softmax`) of `a` along `axis`.
pub fn softmax(a: &Tensor, axis: usize, log: bool, node: u32) -> Result<Tensor, RunError> {
    let (shape, mut data) = alloc_tensor(&a.shape, node)?;
    axes::softmax_axis(&a.data, &a.shape, axis, log, &mut data).map_err(|_| bad_shape(node))?;
    Ok(Tensor { shape, data })
}

const LANES: usize = 8;

/// The defined reduction order: 8 lane accumulators, then a pairwise combine.
fn reduce(x: &[f32], init: f32, op: impl Fn(f32, f32) -> f32) -> f32 {
    let mut p = [init; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (acc, &v) in p.iter_mut().zip(chunk) {
            *acc = op(*acc, v);
        }
    }
    for (acc, &v) in p.iter_mut().zip(chunks.remainder()) {
        *acc = op(*acc, v);
    }
    pairwise(p, op)
}

fn reduced(x: f32, node: u32) -> Result<Tensor, RunError> {
    let (shape, mut data) = alloc_tensor(&[], node)?;
    data.push(x);
    Ok(Tensor { shape, data })
}

/// Sum of all elements, in the defined order.
pub fn sum(a: &Tensor, node: u32) -> Result<Tensor, RunError> {
    reduced(reduce(&a.data, 0.0, add_f32), node)
}
/// Largest element (`fmaxf`), `-inf` for an empty tensor.
pub fn reduce_max(a: &Tensor, node: u32) -> Result<Tensor, RunError> {
    reduced(reduce(&a.data, f32::NEG_INFINITY, math::fmaxf), node)
}
/// Smallest element (`fminf`), `+inf` for an empty tensor.
pub fn reduce_min(a: &Tensor, node: u32) -> Result<Tensor, RunError> {
    reduced(reduce(&a.data, f32::INFINITY, math::fminf), node)
}
/// Sum divided by the element count.
pub fn mean(a: &Tensor, node: u32) -> Result<Tensor, RunError> {
    reduced(reduce(&a.data, 0.0, add_f32) / (a.data.len() as f32), node)
}

/// `[m,k] × [k,n]`; each output element accumulates over `k` in order from 0.0.
pub fn matmul(a: &Tensor, b: &Tensor, node: u32) -> Result<Tensor, RunError> {
    let (m, k, n) = match (a.shape.as_slice(), b.shape.as_slice()) {
        (&[m, k], &[_, n]) => (m as usize, k as usize, n as usize),
        _ => return Err(bad_shape(node)),
    };
    let (shape, mut c) = alloc_tensor(&[m as u32, n as u32], node)?;
    c.resize(m.saturating_mul(n), 0.0);
    if k == 0 || n == 0 {
        return Ok(Tensor { shape, data: c });
    }
    // i-k-j order: row i of c accumulates a[i][p] * b[p][..] for p ascending, which is the
    // defined per-element order, and the inner loop runs over contiguous memory.
    for (c_row, a_row) in c.chunks_exact_mut(n).zip(a.data.chunks_exact(k)) {
        for (&a_ip, b_row) in a_row.iter().zip(b.data.chunks_exact(n)) {
            for (c_ij, &b_pj) in c_row.iter_mut().zip(b_row) {
                *c_ij = *c_ij + a_ip * b_pj;
            }
        }
    }
    Ok(Tensor { shape, data: c })
}

/// `[m,n] → [n,m]`.
pub fn transpose(a: &Tensor, node: u32) -> Result<Tensor, RunError> {
    let (m, n) = match a.shape.as_slice() {
        &[m, n] => (m as usize, n as usize),
        _ => return Err(bad_shape(node)),
    };
    let (_, mut data) = alloc_tensor(&a.shape, node)?;
    for j in 0..n {
        for i in 0..m {
            data.push(a.data.get(i * n + j).copied().unwrap_or(f32::NAN));
        }
    }
    Ok(Tensor { shape: alloc::vec![n as u32, m as u32], data })
}

/// Same elements, new shape (typing guarantees the counts agree).
pub fn reshape(a: &Tensor, shape: &[u32], node: u32) -> Result<Tensor, RunError> {
    let (shape, mut data) = alloc_tensor(shape, node)?;
    data.extend_from_slice(&a.data);
    Ok(Tensor { shape, data })
}

/// Same elements, new shape, reusing the buffer.
pub fn reshape_owned(mut a: Tensor, shape: &[u32]) -> Tensor {
    a.shape = shape.to_vec();
    a
}

fn bad_shape(node: u32) -> RunError {
    RunError::InvalidValue(InvalidValue { node, message: "tensor shape disagrees with its type".into() })
}
