//! The op table: the graph language's vocabulary, stated once.
//!
//! Every op has one row: its JSON name, the node fields it takes, its class (structural, pure,
//! or an effect with the host [`Interface`] it goes out through), whether `fold` may compute it
//! at compile time, how it takes part in fusion, and what its fuel charge counts. Lowering
//! (`check_fields`, the op-name lookup, `has_effects`), `Op::is_effect`, `fold`, `cse`, `fuse`,
//! eval's cost rule, `explain` and the assumption inventory read these rows; none of them
//! keeps its own list of ops.
//!
//! The rules that are code (typing in `types::infer`, the value rule in `eval`, the emitter in
//! `codegen`, the canonical encoding) are exhaustive matches on [`super::Op`], with no `_ =>`
//! arm, so a new op without one of them does not compile. ARCHITECTURE.md ("Adding an op")
//! lists the steps.
//!
//! Invariants: JSON names are unique (tested); an op that is not written in JSON (`param`,
//! `native_matmul`, `fused`, `fused_reductions`, made by lowering or a pass) is never found
//! by [`OpKind::from_name`].

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::interface::Interface;

/// A field of a node in graph JSON (besides `id` and `op`, which every node has).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Field {
    Args,
    Type,
    Value,
    Default,
    Shape,
    Iterations,
    Index,
    Then,
    Else,
    Body,
    Sql,
    Method,
    Url,
    Kernel,
    Level,
    After,
    /// `fields`: a record's field names, one per argument.
    Fields,
    /// `field`: which field of a record (`field`, `with`).
    Which,
    /// `headers`: the request headers an `http` node sets, one argument each.
    Headers,
    /// `response`: what an `http` node's value is (`body` or `full`).
    Response,
    /// `key`: a `cached` node's declared cache key.
    Key,
    /// `ttl_ms`: how long a `cached` node's entries live.
    TtlMs,
    /// `axis`: the tensor axis an op works along (negative counts from the end).
    Axis,
    /// `keepdims`: a reduction along an axis keeps it, with extent 1.
    Keepdims,
    /// `epsilon`: what `layer_norm` adds to the variance.
    Epsilon,
}

impl Field {
    /// The field's key in JSON.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Field::Args => "args",
            Field::Type => "type",
            Field::Value => "value",
            Field::Default => "default",
            Field::Shape => "shape",
            Field::Iterations => "iterations",
            Field::Index => "index",
            Field::Then => "then",
            Field::Else => "else",
            Field::Body => "body",
            Field::Sql => "sql",
            Field::Method => "method",
            Field::Url => "url",
            Field::Kernel => "kernel",
            Field::Level => "level",
            Field::After => "after",
            Field::Fields => "fields",
            Field::Which => "field",
            Field::Headers => "headers",
            Field::Response => "response",
            Field::Key => "key",
            Field::TtlMs => "ttl_ms",
            Field::Axis => "axis",
            Field::Keepdims => "keepdims",
            Field::Epsilon => "epsilon",
        }
    }
}

/// What kind of thing an op is, for the passes and the sandbox.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Class {
    /// Binds, scopes or moves values (`input`, `param`, `if`, `loop`, `fork`, `sequence`,
    /// `cached`, the list regions).
    Structural,
    /// A value computed from its arguments alone: no effect, the same result every time, so
    /// `cse` may merge two of them and `dce` drop an unused one.
    Pure,
    /// Leaves the sandbox through a host import. Runs whenever its region runs, used or not.
    Effect(Interface),
}

/// How an op takes part in fusion (`passes::fuse`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fusion {
    /// Never fused.
    No,
    /// Elementwise on tensors: joins a fused chain as the steps of
    /// [`super::Op::element_steps`].
    Map,
    /// A tensor with no arguments whose element `i` depends only on `i` (`iota`, `fill`):
    /// joins a chain of its shape as the index or a constant, and no tensor is made.
    Source,
    /// A reduction of a whole tensor: a chain whose only reader it is fuses into it.
    Reduce,
}

/// What `W` counts in eval's fuel charge `1 + W / 64` (see `eval::interp`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Work {
    /// The f32 elements of the result (summed over a tuple); 0 for scalars.
    Result,
    /// The f32 elements of the first argument (the reductions).
    Argument,
    /// `m · k · n` multiply-adds of a matrix product.
    MatMul,
    /// The host kernel's own work, charged whole (`effects::kernel_work`).
    Kernel,
}

/// One row of the op table.
#[derive(Debug)]
pub(crate) struct OpSpec {
    /// The name in JSON, in listings and in error messages.
    pub(crate) name: &'static str,
    /// Written by users (false: made by lowering or by a pass, refused in JSON).
    pub(crate) written: bool,
    /// The node fields the op takes; any other field present is refused.
    pub(crate) fields: &'static [Field],
    pub(crate) class: Class,
    /// `fold` may compute it when every argument is a scalar constant and its result is a
    /// scalar.
    pub(crate) fold: bool,
    pub(crate) fusion: Fusion,
    pub(crate) work: Work,
}

impl OpSpec {
    const fn new(name: &'static str, fields: &'static [Field], class: Class) -> Self {
        OpSpec {
            name,
            written: true,
            fields,
            class,
            fold: false,
            fusion: Fusion::No,
            work: Work::Result,
        }
    }

    const fn foldable(mut self) -> Self {
        self.fold = true;
        self
    }

    const fn fusion(mut self, fusion: Fusion) -> Self {
        self.fusion = fusion;
        self
    }

    const fn work(mut self, work: Work) -> Self {
        self.work = work;
        self
    }

    /// Made by lowering or a pass, never written in JSON.
    const fn internal(mut self) -> Self {
        self.written = false;
        self
    }
}

const ARGS: &[Field] = &[Field::Args];

const fn structural(name: &'static str, fields: &'static [Field]) -> OpSpec {
    OpSpec::new(name, fields, Class::Structural)
}

const fn pure(name: &'static str, fields: &'static [Field]) -> OpSpec {
    OpSpec::new(name, fields, Class::Pure)
}

const fn effect(name: &'static str, fields: &'static [Field], interface: Interface) -> OpSpec {
    OpSpec::new(name, fields, Class::Effect(interface))
}

/// A scalar or elementwise op on its arguments: foldable, and fused when on tensors.
const fn elementwise(name: &'static str) -> OpSpec {
    pure(name, ARGS).foldable().fusion(Fusion::Map)
}

/// A scalar-only op on its arguments: foldable, never fused.
const fn scalar(name: &'static str) -> OpSpec {
    pure(name, ARGS).foldable()
}

/// Defines a family of ops that share a variant of `Op` (`Op::Unary(UnaryOp)`, …): one enum
/// variant and one table row per member.
macro_rules! family {
    ($(#[$meta:meta])* $ty:ident { $($variant:ident => $spec:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub(crate) enum $ty {
            $($variant),*
        }

        impl $ty {
            pub(crate) const ALL: &'static [$ty] = &[$($ty::$variant),*];

            /// This member's row of the op table.
            pub(crate) fn spec(self) -> &'static OpSpec {
                match self {
                    $($ty::$variant => {
                        const SPEC: OpSpec = $spec;
                        &SPEC
                    })*
                }
            }

            /// The name used in graph JSON.
            pub(crate) fn name(self) -> &'static str {
                self.spec().name
            }
        }
    };
}

family!(
    /// Elementwise or scalar unary ops, by argument type (`types::infer`).
    UnaryOp {
        Neg => elementwise("neg"),
        Abs => elementwise("abs"),
        // On bools only: no tensor to fuse.
        Not => scalar("not"),
        Sqrt => elementwise("sqrt"),
        Exp => elementwise("exp"),
        Ln => elementwise("ln"),
        Sin => elementwise("sin"),
        Cos => elementwise("cos"),
        Tanh => elementwise("tanh"),
        Floor => elementwise("floor"),
        Ceil => elementwise("ceil"),
        Relu => elementwise("relu"),
        Sigmoid => elementwise("sigmoid"),
    }
);

family!(
    /// Elementwise or scalar binary ops, by argument type.
    BinaryOp {
        Add => elementwise("add"),
        Sub => elementwise("sub"),
        Mul => elementwise("mul"),
        Div => elementwise("div"),
        // Scalars only (typing refuses them on tensors).
        Rem => scalar("rem"),
        Min => elementwise("min"),
        Max => elementwise("max"),
        Pow => scalar("pow"),
        And => scalar("and"),
        Or => scalar("or"),
        Xor => scalar("xor"),
    }
);

family!(
    /// Comparisons of two scalars of one type, to a bool.
    CompareOp {
        Eq => scalar("eq"),
        Ne => scalar("ne"),
        Lt => scalar("lt"),
        Le => scalar("le"),
        Gt => scalar("gt"),
        Ge => scalar("ge"),
    }
);

/// A reduction's fields: with an `axis`, it reduces along that axis only (`keepdims`
/// keeps it with extent 1); without, the whole tensor.
const REDUCE: &[Field] = &[Field::Args, Field::Axis, Field::Keepdims];

const fn reduction(name: &'static str) -> OpSpec {
    pure(name, REDUCE)
        .fusion(Fusion::Reduce)
        .work(Work::Argument)
}

family!(
    /// Reductions of a tensor, in the defined 8-lane order: of the whole tensor to a `[]`
    /// tensor (`Op::Reduce`, fused with the chain it reads), or along one axis
    /// (`Op::ReduceAxis`, not fused).
    ReduceOp {
        Sum => reduction("sum"),
        Max => reduction("reduce_max"),
        Min => reduction("reduce_min"),
        Mean => reduction("mean"),
    }
);

family!(
    /// String ops, on UTF-8 text (positions in chars); the rules are `graphjit_value::text`,
    /// shared by both engines; typed by [`StrOp::signature`].
    StrOp {
        Contains => scalar("contains"),
        StartsWith => scalar("starts_with"),
        EndsWith => scalar("ends_with"),
        // Not folded: a constant string with an empty pattern could make a huge one at compile
        // time, outside any run's memory limit.
        Replace => pure("replace", ARGS),
        Trim => scalar("trim"),
        ToLower => scalar("to_lower"),
        ToUpper => scalar("to_upper"),
        Substring => scalar("substring"),
        ParseI64 => scalar("parse_i64"),
        ParseF64 => scalar("parse_f64"),
    }
);

/// A scalar type a string op takes or gives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Scalar {
    Bool,
    I64,
    F64,
    Str,
}

impl StrOp {
    /// Argument types → result type.
    pub(crate) fn signature(self) -> (&'static [Scalar], Scalar) {
        use Scalar::{Bool, F64, I64, Str};
        match self {
            StrOp::Contains | StrOp::StartsWith | StrOp::EndsWith => (&[Str, Str], Bool),
            StrOp::Replace => (&[Str, Str, Str], Str),
            StrOp::Trim | StrOp::ToLower | StrOp::ToUpper => (&[Str], Str),
            StrOp::Substring => (&[Str, I64, I64], Str),
            StrOp::ParseI64 => (&[Str], I64),
            StrOp::ParseF64 => (&[Str], F64),
        }
    }
}

/// Defines [`OpKind`]: one variant per op without a family, one per family.
macro_rules! op_kinds {
    (
        plain { $($kind:ident => $spec:expr),* $(,)? }
        families { $($family:ident($ty:ident)),* $(,)? }
    ) => {
        /// Which op a node is, without its fields: one row of the table each (a family's
        /// variant holds its member).
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub(crate) enum OpKind {
            $($kind,)*
            $($family($ty),)*
        }

        impl OpKind {
            /// Every op, in table order.
            pub(crate) fn all() -> impl Iterator<Item = OpKind> {
                [$(OpKind::$kind),*]
                    .into_iter()
                    $(.chain($ty::ALL.iter().map(|&member| OpKind::$family(member))))*
            }

            /// This op's row of the table.
            pub(crate) fn spec(self) -> &'static OpSpec {
                match self {
                    $(OpKind::$kind => {
                        const SPEC: OpSpec = $spec;
                        &SPEC
                    })*
                    $(OpKind::$family(member) => member.spec(),)*
                }
            }
        }
    };
}

op_kinds! {
    plain {
        Input => structural("input", &[Field::Type, Field::Default]),
        Param => structural("param", &[]).internal(),
        Const => pure("const", &[Field::Type, Field::Value]),
        If => structural("if", &[Field::Args, Field::Then, Field::Else]),
        Loop => structural("loop", &[Field::Args, Field::Iterations, Field::Body]),
        Fork => structural("fork", ARGS),
        Sequence => structural("sequence", ARGS),
        // A tuple's item (`index`), or a list's element (a second, i64 argument).
        Get => pure("get", &[Field::Args, Field::Index]),
        Iota => pure("iota", &[Field::Shape]).fusion(Fusion::Source),
        Fill => pure("fill", &[Field::Shape, Field::Value]).fusion(Fusion::Source),
        Reshape => pure("reshape", &[Field::Args, Field::Shape]),
        Transpose => pure("transpose", ARGS),
        MatMul => pure("matmul", ARGS).work(Work::MatMul),
        // Computed in the host through `Interface::Native`, but pure: the same bits as
        // `matmul`, nothing outside the run touched, so no footprint.
        NativeMatMul => pure("native_matmul", ARGS).work(Work::MatMul).internal(),
        Clamp => elementwise("clamp"),
        // Along one axis (the last by default), one line at a time in a defined order.
        Softmax => pure("softmax", &[Field::Args, Field::Axis]),
        LogSoftmax => pure("log_softmax", &[Field::Args, Field::Axis]),
        LayerNorm => pure("layer_norm", &[Field::Args, Field::Axis, Field::Epsilon]),
        ToF64 => scalar("to_f64"),
        ToI64 => scalar("to_i64"),
        ToTensor => pure("to_tensor", ARGS),
        Concat => scalar("concat"),
        Len => scalar("len"),
        ToString => scalar("to_string"),
        DbQuery => effect(
            "db_query",
            &[Field::Args, Field::Sql, Field::Type, Field::After],
            Interface::Db,
        ),
        DbExecute => effect("db_execute", &[Field::Args, Field::Sql, Field::After], Interface::Db),
        DbExecuteMany => effect(
            "db_execute_many",
            &[Field::Args, Field::Sql, Field::Fields, Field::After],
            Interface::Db,
        ),
        Http => effect(
            "http",
            &[
                Field::Args,
                Field::Method,
                Field::Url,
                Field::Headers,
                Field::Response,
                Field::Type,
                Field::After,
            ],
            Interface::Http,
        ),
        Kernel => effect(
            "kernel",
            &[Field::Args, Field::Kernel, Field::After],
            Interface::Kernels,
        )
        .work(Work::Kernel),
        Log => effect("log", &[Field::Args, Field::Level, Field::After], Interface::Log),
        List => pure("list", ARGS),
        Range => pure("range", ARGS),
        Slice => pure("slice", ARGS),
        Reverse => pure("reverse", ARGS),
        Any => pure("any", ARGS),
        All => pure("all", ARGS),
        Map => structural("map", &[Field::Args, Field::Body]),
        Filter => structural("filter", &[Field::Args, Field::Body]),
        Fold => structural("fold", &[Field::Args, Field::Body]),
        SortBy => structural("sort_by", &[Field::Args, Field::Body]),
        GroupBy => structural("group_by", &[Field::Args, Field::Body]),
        // A memoization point (the seed's `Cached CacheKey ComputeNode`): the host keeps its
        // body's result across runs under the key and the values the body reads.
        Cached => structural("cached", &[Field::Args, Field::Body, Field::Key, Field::TtlMs]),
        Zip => pure("zip", ARGS),
        Split => pure("split", ARGS),
        Join => pure("join", ARGS),
        JsonParse => pure("json_parse", &[Field::Args, Field::Type]),
        JsonEmit => pure("json_emit", ARGS),
        Record => pure("record", &[Field::Args, Field::Fields]),
        GetField => pure("field", &[Field::Args, Field::Which]),
        With => pure("with", &[Field::Args, Field::Which]),
        Some => pure("some", ARGS),
        None => pure("none", &[Field::Type]),
        IsSome => pure("is_some", ARGS),
        UnwrapOr => pure("unwrap_or", ARGS),
        Unwrap => pure("unwrap", ARGS),
        Fused => pure("fused", &[]).internal(),
        FusedReductions => pure("fused_reductions", &[]).internal(),
    }
    families {
        Unary(UnaryOp),
        Binary(BinaryOp),
        Compare(CompareOp),
        Reduce(ReduceOp),
        Str(StrOp),
    }
}

impl OpKind {
    /// The op written `name` in JSON; `None` for an unknown name and for internal ops.
    pub(crate) fn from_name(name: &str) -> Option<OpKind> {
        static BY_NAME: LazyLock<HashMap<&'static str, OpKind>> =
            LazyLock::new(|| OpKind::written().map(|k| (k.spec().name, k)).collect());
        BY_NAME.get(name).copied()
    }

    /// Every op a graph may write, in table order.
    pub(crate) fn written() -> impl Iterator<Item = OpKind> {
        OpKind::all().filter(|k| k.spec().written)
    }
}

impl Class {
    /// The interface an effect goes out through; `None` for the other classes.
    pub(crate) fn interface(self) -> Option<Interface> {
        match self {
            Class::Effect(interface) => Some(interface),
            Class::Structural | Class::Pure => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{Class, Fusion, OpKind};

    #[test]
    fn names_are_unique_and_every_written_op_is_found_by_its_name() {
        let names: Vec<&str> = OpKind::all().map(|k| k.spec().name).collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(names.len(), unique.len(), "a name is used twice: {names:?}");
        for kind in OpKind::all() {
            let found = OpKind::from_name(kind.spec().name);
            if kind.spec().written {
                assert_eq!(found, Some(kind));
            } else {
                assert_eq!(found, None, "{} is internal", kind.spec().name);
            }
        }
    }

    #[test]
    fn the_format_doc_describes_every_written_op() {
        let doc = include_str!("../../../docs/graph-format.md");
        // Words of the code spans: the op table there writes families as "`min max`".
        let words: BTreeSet<&str> = doc
            .split('`')
            .skip(1)
            .step_by(2)
            .flat_map(str::split_whitespace)
            .collect();
        let missing: Vec<&str> = OpKind::written()
            .map(|k| k.spec().name)
            .filter(|name| !words.contains(name))
            .collect();
        assert!(missing.is_empty(), "docs/graph-format.md lacks {missing:?}");
    }

    #[test]
    fn only_effects_take_after_and_every_effect_does() {
        for kind in OpKind::all() {
            let spec = kind.spec();
            let effect = matches!(spec.class, Class::Effect(_));
            assert_eq!(
                spec.fields.contains(&super::Field::After),
                effect,
                "{}",
                spec.name
            );
            // Nothing that leaves the sandbox is folded or fused.
            if effect {
                assert!(!spec.fold && spec.fusion == Fusion::No, "{}", spec.name);
            }
        }
    }
}
