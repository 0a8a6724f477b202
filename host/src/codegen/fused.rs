//! Fused loops: a node's elementwise program (`FusedStep`s) as one closure run by the
//! guest's `fused`, `fused_reduce` or `fused_reductions` over the node's arguments.

use std::fmt::Write as _;

use super::literal::shape_literal;
use super::{At, Generator, Result};
use crate::graph::{BinaryOp, FusedStep, ReduceOp, Type, UnaryOp};

/// What [`Generator::fused_parts`] gives a fused node's call.
struct FusedParts {
    inputs: String,
    header: String,
    prelude: String,
}

impl Generator<'_> {
    /// A fused node's element inputs (`&a, &b`), its element closure's header
    /// (`move |[x0, x2]: [f32; 2], i: usize|`; `_i` when no step reads the index), and the
    /// statements before the loop that read each broadcast (`[]`-shaped) input once
    /// (`let x1: f32 = rt::ops::broadcast(&n4, 3)?;`): the loop then reads only slices, with
    /// no per-element choice between a broadcast and an element, and vectorizes.
    fn fused_parts(&self, at: &At, steps: &[FusedStep]) -> FusedParts {
        let mut inputs = Vec::new();
        let mut params = Vec::new();
        let mut prelude = String::new();
        for (k, &x) in at.node.args.iter().enumerate() {
            let broadcast =
                matches!(&self.graph.node(x).ty, Type::Tensor(shape) if shape.is_empty());
            if broadcast {
                let _ = write!(
                    prelude,
                    "let x{k}: f32 = rt::ops::broadcast(&{}, {})?; ",
                    self.var(x),
                    at.at()
                );
            } else {
                inputs.push(format!("&{}", self.var(x)));
                params.push(format!("x{k}"));
            }
        }
        let index = if steps.contains(&FusedStep::Index) {
            "i"
        } else {
            "_i"
        };
        let header = format!(
            "move |[{}]: [f32; {}], {index}: usize|",
            params.join(", "),
            params.len()
        );
        FusedParts {
            inputs: inputs.join(", "),
            header,
            prelude,
        }
    }

    /// A fused loop over the node's arguments computing `steps` per element, stored as a
    /// tensor of the node's type or reduced as `reduce` says.
    pub(super) fn fused_call(
        &self,
        at: &At,
        steps: &[FusedStep],
        reduce: Option<&(ReduceOp, Vec<u32>)>,
    ) -> Result<String> {
        let FusedParts {
            inputs,
            header,
            prelude,
        } = self.fused_parts(at, steps);
        let last = steps.len().saturating_sub(1) as u32;
        let body = fused_program(steps, &[last], &format!("r{last}")).map_err(|e| at.error(e))?;
        let closure = format!("{header} {{ {body} }}");
        let n = at.at();
        let call = match reduce {
            None => {
                let Type::Tensor(shape) = &at.node.ty else {
                    return Err(at.no_rule("a result that is not a tensor"));
                };
                format!(
                    "rt::ops::fused([{inputs}], &{}, {n}, {closure})?",
                    shape_literal(shape)
                )
            }
            Some((op, shape)) => {
                let kind = reduction_kind(*op);
                // A chain that calls a transcendental per element does not vectorize;
                // the plain loop is faster for it (ops.rs says by how much).
                let calls = steps.iter().any(|s| {
                    matches!(
                        s,
                        FusedStep::Unary(
                            UnaryOp::Exp
                                | UnaryOp::Ln
                                | UnaryOp::Sin
                                | UnaryOp::Cos
                                | UnaryOp::Tanh
                                | UnaryOp::Sigmoid,
                            _
                        )
                    )
                });
                let layout = if calls { "Plain" } else { "Blocked" };
                format!(
                    "rt::ops::fused_reduce([{inputs}], &{}, {n}, rt::ops::Reduction::{kind}, rt::ops::Loop::{layout}, {closure})?",
                    shape_literal(shape)
                )
            }
        };
        Ok(if prelude.is_empty() {
            call
        } else {
            format!("{{ {prelude}{call} }}")
        })
    }

    /// Horizontal fusion: several map→reduce programs over one element shape in one loop,
    /// giving a tuple of `[]` tensors.
    pub(super) fn fused_reductions(
        &self,
        at: &At,
        steps: &[FusedStep],
        outputs: &[(u32, ReduceOp)],
        shape: &[u32],
    ) -> Result<String> {
        let FusedParts {
            inputs,
            header,
            prelude,
        } = self.fused_parts(at, steps);
        let registers: Vec<u32> = outputs.iter().map(|(r, _)| *r).collect();
        let result: Vec<String> = registers.iter().map(|r| format!("r{r}")).collect();
        let body = fused_program(steps, &registers, &format!("[{}]", result.join(", ")))
            .map_err(|e| at.error(e))?;
        let closure = format!("{header} {{ {body} }}");
        let kinds: Vec<String> = outputs
            .iter()
            .map(|(_, op)| format!("rt::ops::Reduction::{}", reduction_kind(*op)))
            .collect();
        let names: Vec<String> = (0..outputs.len()).map(|j| format!("o{j}")).collect();
        // Output j's combining function, chosen by a match on j that folds away once the
        // guest's loop over outputs is unrolled.
        let arms: Vec<String> = outputs
            .iter()
            .enumerate()
            .map(|(j, (_, op))| {
                let f = match op {
                    ReduceOp::Sum | ReduceOp::Mean => "rt::ops::add_f32",
                    ReduceOp::Max => "rt::ops::math::fmaxf",
                    ReduceOp::Min => "rt::ops::math::fminf",
                };
                format!("{j} => {f}(a, b)")
            })
            .collect();
        let combine = format!(
            "|j: usize, a: f32, b: f32| match j {{ {}, _ => f32::NAN }}",
            arms.join(", ")
        );
        Ok(format!(
            "{{ {prelude}let [{}] = rt::ops::fused_reductions([{inputs}], &{}, {}, [{}], {closure}, {combine})?; ({},) }}",
            names.join(", "),
            shape_literal(shape),
            at.at(),
            kinds.join(", "),
            names.join(", ")
        ))
    }
}

/// The guest's `Reduction` variant for `op`.
pub(super) fn reduction_kind(op: ReduceOp) -> &'static str {
    match op {
        ReduceOp::Sum => "Sum",
        ReduceOp::Max => "Max",
        ReduceOp::Min => "Min",
        ReduceOp::Mean => "Mean",
    }
}

/// The statements computing `steps` (registers `r0`, `r1`, …; `outputs` and the ones other
/// steps read are named, the rest `_r…`), then `result`. A step that reads a register not
/// computed before it, or an op with no element function, is an error (a fusion bug).
fn fused_program(
    steps: &[FusedStep],
    outputs: &[u32],
    result: &str,
) -> std::result::Result<String, String> {
    let mut used = vec![false; steps.len()];
    let mut mark = |r: u32, i: usize| match used.get_mut(r as usize) {
        Some(u) if (r as usize) < i => {
            *u = true;
            Ok(())
        }
        _ => Err(format!(
            "fused step {i} reads register r{r}, not computed before it"
        )),
    };
    for &o in outputs {
        mark(o, steps.len())?;
    }
    for (i, step) in steps.iter().enumerate() {
        match *step {
            FusedStep::Arg(_) | FusedStep::Index | FusedStep::Const(_) => {}
            FusedStep::Unary(_, r) => mark(r, i)?,
            FusedStep::Binary(_, a, b) => {
                mark(a, i)?;
                mark(b, i)?;
            }
        }
    }
    let no_fn = |name: &str| format!("`{name}` has no f32 element function");
    let mut out = String::new();
    for (i, step) in steps.iter().enumerate() {
        let name = if used[i] {
            format!("r{i}")
        } else {
            format!("_r{i}")
        };
        let value = match *step {
            FusedStep::Arg(k) => format!("x{k}"),
            FusedStep::Index => "i as f32".to_string(),
            FusedStep::Const(bits) => format!("f32::from_bits({bits:#010x})"),
            FusedStep::Unary(op, r) => {
                format!(
                    "{}(r{r})",
                    unary_f32_fn(op).ok_or_else(|| no_fn(op.name()))?
                )
            }
            FusedStep::Binary(op, a, b) => format!(
                "{}(r{a}, r{b})",
                binary_f32_fn(op).ok_or_else(|| no_fn(op.name()))?
            ),
        };
        let _ = write!(out, "let {name}: f32 = {value}; ");
    }
    out.push_str(result);
    Ok(out)
}

/// The element function of a unary tensor op, or `None` (`not` has no tensor form).
pub(super) fn unary_f32_fn(op: UnaryOp) -> Option<&'static str> {
    Some(match op {
        UnaryOp::Neg => "rt::ops::neg_f32",
        UnaryOp::Abs => "rt::ops::libm::fabsf",
        UnaryOp::Sqrt => "rt::ops::libm::sqrtf",
        UnaryOp::Exp => "rt::ops::math::expf",
        UnaryOp::Ln => "rt::ops::libm::logf",
        UnaryOp::Sin => "rt::ops::libm::sinf",
        UnaryOp::Cos => "rt::ops::libm::cosf",
        UnaryOp::Tanh => "rt::ops::math::tanhf",
        UnaryOp::Floor => "rt::ops::libm::floorf",
        UnaryOp::Ceil => "rt::ops::libm::ceilf",
        UnaryOp::Relu => "rt::ops::relu_f32",
        UnaryOp::Sigmoid => "rt::ops::sigmoid_f32",
        UnaryOp::Not => return None,
    })
}

/// The element function of a binary tensor op, or `None` for the scalar-only ones.
pub(super) fn binary_f32_fn(op: BinaryOp) -> Option<&'static str> {
    Some(match op {
        BinaryOp::Add => "rt::ops::add_f32",
        BinaryOp::Sub => "rt::ops::sub_f32",
        BinaryOp::Mul => "rt::ops::mul_f32",
        BinaryOp::Div => "rt::ops::div_f32",
        BinaryOp::Min => "rt::ops::math::fminf",
        BinaryOp::Max => "rt::ops::math::fmaxf",
        BinaryOp::Rem | BinaryOp::Pow | BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => {
            return None;
        }
    })
}
