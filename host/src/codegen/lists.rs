//! The nodes with a region run per element or at most once: `map`, `filter`, `fold`,
//! `sort_by` and `group_by` (one loop each), a list chain fused into one loop
//! (`Graph::list_chains`), and `cached` (the body behind a memo lookup).

use super::literal::rust_type;
use super::{At, Generator, Result, emit};
use crate::graph::{NodeId, Op, Region};

/// The variables of one fused list loop that every stage writes to.
#[derive(Clone, Copy)]
struct LoopNames<'a> {
    /// Stages still running in the drain (a failure in stage `j` leaves the `j` before it).
    live: &'a str,
    /// The hot loop's failure (stage, error); the drain's error to report.
    failed: &'a str,
    /// A `fold`'s accumulator: a plain variable for a `Copy` type, else an `Option` taken by
    /// each step (the body owns it).
    acc: &'a str,
    /// Whether `acc` is an `Option`.
    acc_option: bool,
    /// Writing the drain (after a failure) rather than the hot loop.
    drain: bool,
}

impl Generator<'_> {
    /// A list chain (`Graph::list_chains`) as one loop: the source's elements go through
    /// each stage's body in turn (a closure each, so that a stage's error is caught), and
    /// only the last member's list (or accumulator) is made.
    ///
    /// Two loops over one iterator. The hot loop runs every stage and knows nothing of
    /// failures but the first: a failure in stage `j` ends it. The drain then runs stages
    /// `0..j` over the elements left (a failure in an earlier stage there narrows it again),
    /// so the error reported is the one an unfused run would meet first — without the hot
    /// loop paying a stage check per element for it.
    pub(super) fn fused_list(
        &mut self,
        id: NodeId,
        region: &Region,
        chain: &[NodeId],
    ) -> Result<()> {
        let graph = self.graph;
        let node = graph.node(id);
        self.current = Some(id);
        let names: Vec<String> = chain
            .iter()
            .map(|&m| format!("{} {:?}", graph.node(m).op.name(), graph.node(m).name))
            .collect();
        self.line(&format!(
            "// {}: one loop for {}",
            self.var(id),
            names.join(" → ")
        ));
        let at = At { id, node, region };
        let d = self.loop_depth;
        let (live, failed, acc, out, item, iter) = (
            format!("live{d}"),
            format!("failed{d}"),
            format!("acc{d}"),
            format!("out{d}"),
            format!("e{d}"),
            format!("it{d}"),
        );
        let first = graph.node(chain[0]);
        let first_at = At {
            id: chain[0],
            node: first,
            region,
        };
        let (source, stages, item_ty) = match &first.op {
            Op::Range => (
                format!(
                    "{}..{}",
                    self.var(first_at.arg(0)?),
                    self.var(first_at.arg(1)?)
                ),
                &chain[1..],
                crate::graph::Type::I64,
            ),
            _ => {
                let list = first_at.arg(0)?;
                let crate::graph::Type::List(item) = &graph.node(list).ty else {
                    return Err(first_at.error("a list op over something not a list".into()));
                };
                (
                    format!("{}.into_iter()", self.owned(list, at.local(list))),
                    chain,
                    (**item).clone(),
                )
            }
        };
        let fold = matches!(node.op, Op::Fold { .. });
        let acc_option = fold && !node.ty.is_copy();
        let mut names = LoopNames {
            live: &live,
            failed: &failed,
            acc: &acc,
            acc_option,
            drain: false,
        };
        let open = format!("{} = {{", self.binding(id));
        self.block(&open, "};", |g| {
            g.line(&format!("let mut {iter} = {source};"));
            g.line(&format!(
                "let mut {failed}: Option<(usize, rt::RunError)> = None;"
            ));
            let ty = rust_type(&node.ty);
            if fold {
                let init = at.arg(1)?;
                let value = g.owned(init, at.local(init));
                if acc_option {
                    g.line(&format!("let mut {acc}: Option<{ty}> = Some({value});"));
                } else {
                    g.line(&format!("let mut {acc}: {ty} = {value};"));
                }
            } else {
                g.line(&format!(
                    "let mut {out}: {ty} = rt::data::with_capacity(0, {})?;",
                    at.at()
                ));
            }
            // The drain writes the same bodies again: what the hot loop's writing marked as
            // moved is theirs to move too.
            let moved = g.moved.borrow().clone();
            g.block(&format!("for {item} in {iter}.by_ref() {{"), "}", |g| {
                g.fused_stages(&at, stages, (&item, &item_ty), &names, &out)
            })?;
            if stages.len() > 1 {
                g.block(
                    &format!("if let Some((stage, error)) = {failed} {{"),
                    "}",
                    |g| {
                        g.line(&format!("let mut {live}: usize = stage;"));
                        g.line(&format!("let mut {failed}: rt::RunError = error;"));
                        *g.moved.borrow_mut() = moved;
                        names.drain = true;
                        g.block(&format!("for {item} in {iter} {{"), "}", |g| {
                            g.line(&format!("if {live} == 0 {{ break; }}"));
                            let early = &stages[..stages.len() - 1];
                            g.fused_stages(&at, early, (&item, &item_ty), &names, &out)
                        })?;
                        g.line(&format!("return Err({failed});"));
                        Ok(())
                    },
                )?;
            } else {
                g.line(&format!(
                    "if let Some((_, error)) = {failed} {{ return Err(error); }}"
                ));
            }
            if acc_option {
                g.line(&format!(
                    "match {acc} {{ Some(a) => a, None => return Err(rt::RunError::BadInput(alloc::string::String::from(\"a fused fold lost its accumulator\"))) }}"
                ));
            } else if fold {
                g.line(&acc);
            } else {
                g.line(&out);
            }
            Ok(())
        })
    }

    /// The body of one of a fused loop's two loops: `stages` in turn on the element `item`.
    /// In the drain, stage `j` runs only while `live > j`, and the last stage (a fold or
    /// the push of the list made) never runs: the drain only looks for an earlier error.
    fn fused_stages(
        &mut self,
        at: &At<'_>,
        stages: &[NodeId],
        (item, item_ty): (&str, &crate::graph::Type),
        names: &LoopNames<'_>,
        out: &str,
    ) -> Result<()> {
        let graph = self.graph;
        self.loop_depth += 1;
        let mut current = item.to_string();
        let mut current_ty = item_ty.clone();
        for (j, &stage) in stages.iter().enumerate() {
            let last = j + 1 == stages.len();
            if names.drain && j > 0 {
                self.line(&format!("if {} < {} {{ continue; }}", names.live, j + 1));
            }
            let (value, ty) =
                self.stream_stage(stage, at.region, j, (&current, &current_ty), names)?;
            self.current = Some(at.id);
            match (&graph.node(stage).op, last, names.drain) {
                (Op::Fold { .. }, _, _) => {}
                (_, true, false) => self.line(&format!(
                    "rt::data::push(&mut {out}, {value}, {})?;",
                    at.at()
                )),
                // The drain's last stage feeds nothing.
                (_, true, true) => self.line(&format!("let _ = &{value};")),
                (_, false, _) => {}
            }
            current = value;
            current_ty = ty;
        }
        self.loop_depth -= 1;
        Ok(())
    }

    /// One stage of a fused list loop, element `current` (of type `ty`) in: the body in a
    /// closure whose error ends the hot loop (or, in the drain, stops this stage and the
    /// later ones). Returns the element that goes on to the next stage (`map`: the body's
    /// result; `filter`: the element, if kept).
    fn stream_stage(
        &mut self,
        stage: NodeId,
        region: &Region,
        j: usize,
        (current, ty): (&str, &crate::graph::Type),
        names: &LoopNames<'_>,
    ) -> Result<(String, crate::graph::Type)> {
        let LoopNames {
            live,
            failed,
            acc,
            acc_option,
            drain,
        } = *names;
        let graph = self.graph;
        let node = graph.node(stage);
        let at = At {
            id: stage,
            node,
            region,
        };
        self.current = Some(stage);
        let body = node
            .op
            .regions()
            .first()
            .copied()
            .ok_or_else(|| at.error("a list stage without a body".into()))?;
        let result = body
            .results
            .first()
            .copied()
            .ok_or_else(|| at.error("a list stage's body without a result".into()))?;
        let result_ty = graph.node(result).ty.clone();
        let d = self.loop_depth - 1;
        let value = format!("z{d}_{j}");
        let fail = if drain {
            format!("Err(error) => {{ {live} = {j}; {failed} = error; continue; }}")
        } else {
            format!("Err(error) => {{ {failed} = Some(({j}, error)); break; }}")
        };
        let copy = |v: &str| {
            if ty.is_copy() {
                v.to_string()
            } else {
                format!("{v}.clone()")
            }
        };
        let (element, out_ty, closure_ty) = match (&node.op, body.params.as_slice()) {
            (Op::Map { .. }, [x]) => (
                (*x, current.to_string()),
                result_ty.clone(),
                rust_type(&result_ty),
            ),
            (Op::Filter { .. }, [x]) => ((*x, copy(current)), ty.clone(), "bool".to_string()),
            (Op::Fold { .. }, [_, x]) => (
                (*x, current.to_string()),
                node.ty.clone(),
                rust_type(&node.ty),
            ),
            _ => return Err(at.error("a list stage with the wrong params".into())),
        };
        let head = match (&node.op, acc_option) {
            (Op::Fold { .. }, true) => {
                format!("{acc} = Some(match (|| -> Result<{closure_ty}, rt::RunError> {{")
            }
            (Op::Fold { .. }, false) => {
                format!("{acc} = match (|| -> Result<{closure_ty}, rt::RunError> {{")
            }
            _ => format!(
                "let {value}: {closure_ty} = match (|| -> Result<{closure_ty}, rt::RunError> {{"
            ),
        };
        self.line(&head);
        self.indent += 1;
        if let (Op::Fold { .. }, Some(&a)) = (&node.op, body.params.first()) {
            if acc_option {
                self.line(&format!(
                    "{} = {acc}.take().ok_or_else(|| rt::RunError::BadInput(alloc::string::String::from(\"a fused fold lost its accumulator\")))?;",
                    self.binding(a)
                ));
            } else {
                self.line(&format!("{} = {acc};", self.binding(a)));
            }
        }
        let (param, bound) = element;
        // `count_reads` counts one more read of a filter's param: the element it keeps, which
        // the fused loop keeps outside the closure.
        let keeps = u32::from(matches!(node.op, Op::Filter { .. }));
        if self.reads[param.index()] > keeps {
            self.line(&format!("{} = {bound};", self.binding(param)));
        } else {
            // Read, so that an element the body does not look at is not an unused variable.
            self.line(&format!("let _ = &{current};"));
        }
        let done = self.region_body(body);
        self.current = Some(stage);
        let local = body.nodes.contains(&result) || body.params.contains(&result);
        let result_value = self.owned(result, local);
        self.line(&format!("Ok({result_value})"));
        self.indent -= 1;
        self.line("})() {");
        self.indent += 1;
        self.line("Ok(v) => v,");
        self.line(&fail);
        self.indent -= 1;
        self.line(match (&node.op, acc_option) {
            (Op::Fold { .. }, true) => "});",
            _ => "};",
        });
        done?;
        match &node.op {
            Op::Filter { .. } => {
                self.line(&format!("if !{value} {{ continue; }}"));
                Ok((current.to_string(), out_ty))
            }
            _ => Ok((value, out_ty)),
        }
    }

    /// `cached`: asks the host's memo for the value of the values the body reads (arguments,
    /// then outer nodes, as `eval` lists them); on a miss runs the body on the arguments and
    /// tells the memo its result. The reads are cloned into `rt::Value`s first: the body
    /// may still need them.
    pub(super) fn cached_node(&mut self, at: &At, body: &Region) -> Result<()> {
        let graph = self.graph;
        let outer = graph.outer_reads(at.id, &self.demanded);
        let reads = at
            .node
            .args
            .iter()
            .chain(&outer)
            .map(|&r| emit::value_expr(&self.clone_of(r), &graph.node(r).ty))
            .collect::<Vec<String>>();
        let hit =
            emit::read_expr("v0", &at.node.ty, 1).ok_or_else(|| at.no_rule("a cached tuple"))?;
        let (reads_var, result_var) = (format!("k{}", at.id.0), format!("m{}", at.id.0));
        self.line(&format!(
            "{} = match rt::memo::lookup({}, alloc::vec![{}])? {{",
            self.binding(at.id),
            at.at(),
            reads.join(", ")
        ));
        self.indent += 1;
        self.line(&format!("Ok(v0) => {hit},"));
        let open = format!("Err({reads_var}) => {{");
        let done = self.block(&open, "}", |g| {
            if body.params.len() != at.node.args.len() {
                return Err(at.error("a `cached` body without one param per argument".into()));
            }
            for (&param, &arg) in body.params.iter().zip(&at.node.args) {
                let value = g.owned(arg, at.local(arg));
                g.line(&format!("{} = {value};", g.binding(param)));
            }
            g.region_body(body)?;
            g.current = Some(at.id);
            let result = body
                .results
                .first()
                .copied()
                .ok_or_else(|| at.error("a `cached` body without a result".into()))?;
            let local = body.nodes.contains(&result) || body.params.contains(&result);
            let value = g.owned(result, local);
            let ty = &at.node.ty;
            g.line(&format!("let {result_var}: {} = {value};", rust_type(ty)));
            let copy = if ty.is_copy() {
                result_var.clone()
            } else {
                format!("{result_var}.clone()")
            };
            g.line(&format!(
                "rt::memo::store({}, {reads_var}, &{})?;",
                at.at(),
                emit::value_expr(&copy, ty)
            ));
            g.line(&result_var);
            Ok(())
        });
        self.indent -= 1;
        self.line("};");
        done
    }

    /// `map`, `filter`, `fold`, `sort_by` and `group_by`: a `for` over the owned list, the
    /// body once per element. `map` (and the keyed list of `sort_by` and `group_by`) reserves
    /// the list's length up front (pushes never reallocate); `filter` grows fallibly; `fold`
    /// threads its accumulator through the iterations.
    pub(super) fn list_region(&mut self, at: &At, body: &Region) -> Result<()> {
        if let Some(effects) = self.graph.element_round(at.node) {
            return self.batched_map(at, body, effects);
        }
        let depth = self.loop_depth;
        let (src, item, acc, out) = (
            format!("src{depth}"),
            format!("e{depth}"),
            format!("acc{depth}"),
            format!("out{depth}"),
        );
        let list = at.arg(0)?;
        let open = format!("{} = {{", self.binding(at.id));
        self.block(&open, "};", |g| {
            let list_value = g.owned(list, at.local(list));
            g.line(&format!("let {src} = {list_value};"));
            let fold = matches!(at.node.op, Op::Fold { .. });
            match &at.node.op {
                Op::Map { .. } => g.line(&format!(
                    "let mut {out} = rt::data::with_capacity({src}.len(), {})?;",
                    at.at()
                )),
                Op::Filter { .. } => g.line(&format!(
                    "let mut {out} = rt::data::with_capacity(0, {})?;",
                    at.at()
                )),
                Op::SortBy { .. } | Op::GroupBy { .. } => g.line(&format!(
                    "let mut {out} = rt::data::with_capacity({src}.len(), {})?;",
                    at.at()
                )),
                _ => {
                    let init = at.arg(1)?;
                    let value = g.owned(init, at.local(init));
                    let ty = rust_type(&at.node.ty);
                    g.line(&format!("let mut {acc}: {ty} = {value};"));
                }
            }
            let (acc_param, item_param) = match (body.params.as_slice(), fold) {
                ([a, x], true) => (Some(*a), *x),
                ([x], false) => (None, *x),
                _ => return Err(at.error("a list op's body has the wrong params".into())),
            };
            let result = body
                .results
                .first()
                .copied()
                .ok_or_else(|| at.error("a list op's body without a result".into()))?;
            let keyed = matches!(at.node.op, Op::SortBy { .. } | Op::GroupBy { .. });
            let position = format!("p{depth}");
            let header = if keyed {
                format!("for ({position}, {item}) in {src}.into_iter().enumerate() {{")
            } else {
                format!("for {item} in {src} {{")
            };
            g.block(&header, "}", |g| {
                g.loop_depth += 1;
                if let Some(a) = acc_param {
                    g.line(&format!("{} = {acc};", g.binding(a)));
                }
                g.line(&format!("{} = {item};", g.binding(item_param)));
                let done = g.region_body(body);
                g.current = Some(at.id);
                let local = body.nodes.contains(&result) || body.params.contains(&result);
                match &at.node.op {
                    Op::Map { .. } => {
                        let value = g.owned(result, local);
                        g.line(&format!("{out}.push({value});"));
                    }
                    Op::SortBy { .. } | Op::GroupBy { .. } => {
                        let key = g.owned(result, local);
                        let element = g.var(item_param);
                        g.line(&format!("{out}.push(({key}, {position}, {element}));"));
                    }
                    Op::Filter { .. } => {
                        let keep = g.var(result);
                        let element = g.var(item_param);
                        g.line(&format!(
                            "if {keep} {{ rt::data::push(&mut {out}, {element}, {})?; }}",
                            at.at()
                        ));
                    }
                    _ => {
                        let value = g.owned(result, local);
                        g.line(&format!("{acc} = {value};"));
                    }
                }
                g.loop_depth -= 1;
                done
            })?;
            match &at.node.op {
                Op::SortBy { .. } => g.line(&format!("rt::data::sorted({out}, {})?", at.at())),
                Op::GroupBy { .. } => g.line(&format!("rt::data::grouped({out}, {})?", at.at())),
                _ => g.line(if fold { &acc } else { &out }),
            }
            Ok(())
        })
    }
}
