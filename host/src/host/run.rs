//! Running: a compiled graph in a fresh instance, or the reference interpreter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use graphjit_value::Value;

use super::Host;
use super::errors::{eval_error, runtime_error};
use super::types::{CompiledGraph, RunLimits, RunOutput};
use super::validated::Graph;
use crate::cache::Artifact;
use crate::effects::{self, Dispatcher, EffectHandler};
use crate::error::{Error, ErrorKind, Stage};
use crate::eval;
use crate::lifecycle::Running;
use crate::runtime::{self};

impl Host {
    /// The effect handler of a graph's artifacts: its footprint in front of this host's
    /// drivers, or `None` when it has no effect node.
    pub(super) fn effect_handler(&self, graph: &Graph) -> Option<Arc<Dispatcher>> {
        graph.has_effects().then(|| {
            Arc::new(Dispatcher::new(
                Arc::clone(&graph.footprint),
                Arc::clone(&self.inner.services),
            ))
        })
    }

    /// What serves a run's effect calls on this host: the artifact's own dispatcher when it
    /// was built with this host's drivers, else its footprint with this host's drivers (an
    /// artifact is shared by the hosts of one cache; drivers are not: a tenant's database is
    /// its own).
    fn run_handler(&self, artifact: &Artifact) -> Option<Arc<dyn EffectHandler>> {
        let dispatcher = artifact.effects.as_ref()?;
        if Arc::ptr_eq(dispatcher.services(), &self.inner.services) {
            return Some(Arc::clone(dispatcher) as Arc<dyn EffectHandler>);
        }
        Some(Arc::new(
            dispatcher.with_services(Arc::clone(&self.inner.services)),
        ))
    }

    /// Runs a compiled graph in a fresh instance under `limits`. If the handle's artifact was
    /// evicted meanwhile, the graph is made ready again through the cache first.
    pub async fn run(
        &self,
        compiled: &CompiledGraph,
        inputs: &BTreeMap<String, Value>,
        limits: RunLimits,
    ) -> Result<RunOutput, Error> {
        let graph = &compiled.graph;
        let bound = graph.bind_inputs(inputs)?;
        let mut encoded = Vec::with_capacity(graphjit_value::encoded_len(&bound));
        graphjit_value::encode(&bound, &mut encoded);
        let (artifact, running) = self.begin(compiled).await?;
        self.run_on(graph, &artifact, running, &encoded, limits)
            .await
    }

    /// Starts a request on `compiled`'s artifact, or on a fresh one if it was retired.
    async fn begin(&self, compiled: &CompiledGraph) -> Result<(Arc<Artifact>, Running), Error> {
        if let Ok(running) = compiled.artifact.lifecycle.begin() {
            return Ok((Arc::clone(&compiled.artifact), running));
        }
        // Retired or failed: what the cache gives now. A fresh artifact can itself be retired
        // by cache pressure before we start on it; a few attempts settle that.
        for _ in 0..3 {
            let fresh = self.compile_async(&compiled.graph).await?;
            if let Ok(running) = fresh.artifact.lifecycle.begin() {
                return Ok((fresh.artifact, running));
            }
        }
        Err(Error::new(
            ErrorKind::Internal,
            Stage::Run,
            "no ready artifact could be obtained for the graph",
            "raise the memory cache bounds; report this as a bug if it persists",
        ))
    }

    /// Runs one request on a started artifact; `running` ends the request when dropped.
    pub(crate) async fn run_on(
        &self,
        graph: &Graph,
        artifact: &Artifact,
        mut running: Running,
        encoded: &[u8],
        limits: RunLimits,
    ) -> Result<RunOutput, Error> {
        let run_limits = runtime::RunLimits {
            fuel: limits.fuel,
            memory_bytes: limits.memory_bytes,
            deadline: limits.deadline,
            max_effect_calls: limits.max_effect_calls,
            max_effect_bytes: limits.max_effect_bytes,
        };
        let memo = (!artifact.memo_sites.is_empty()).then(|| {
            crate::memo::RunMemo::new(
                Arc::clone(&self.inner.memo),
                Arc::clone(&artifact.memo_sites),
            )
        });
        let outcome = self
            .inner
            .runtime
            .run(
                &artifact.loaded,
                encoded,
                &run_limits,
                self.run_handler(artifact),
                memo,
            )
            .await;
        if let Err(runtime::RuntimeError::Instantiate { .. }) = &outcome {
            running.artifact_failed();
        }
        drop(running);
        // Node indices from the guest are those of the graph it was generated from.
        let generated_from = &artifact.graph;
        let outcome = outcome.map_err(|e| runtime_error(e, Some(generated_from), Stage::Run))?;
        let values = outcome
            .decode()
            .map_err(|e| runtime_error(e, Some(generated_from), Stage::Run))?;
        Ok(RunOutput {
            outputs: name_outputs(graph, values)?,
            fuel_used: outcome.fuel_used,
            run_time: outcome.run_time,
            context: artifact.lifecycle.context(),
            peak_memory_bytes: outcome.peak_memory_bytes,
            effect_calls: outcome.effect_calls,
            effect_rounds: outcome.effect_rounds,
            memo_hits: outcome.memo_hits,
            memo_misses: outcome.memo_misses,
        })
    }
}

impl Host {
    /// Evaluates a graph with the reference interpreter (no compilation).
    pub fn eval(
        graph: &Graph,
        inputs: &BTreeMap<String, Value>,
        limits: RunLimits,
    ) -> Result<RunOutput, Error> {
        let specialized = graph.specialize_any(inputs)?;
        let graph: &Graph = &specialized;
        let bound = graph.bind_inputs(inputs)?;
        let start = Instant::now();
        let eval_limits = eval::EvalLimits {
            fuel: limits.fuel,
            memory_bytes: limits.memory_bytes,
            deadline: eval::Deadline::after(start, limits.deadline),
        };
        let outcome = eval::eval(&graph.inner, &bound, &eval_limits)
            .map_err(|e| eval_error(e, &graph.inner, limits.memory_bytes))?;
        Ok(RunOutput {
            outputs: name_outputs(graph, outcome.outputs)?,
            fuel_used: outcome.fuel_used,
            run_time: start.elapsed(),
            context: 0,
            peak_memory_bytes: 0,
            effect_calls: 0,
            effect_rounds: 0,
            memo_hits: outcome.memo_hits,
            memo_misses: outcome.memo_misses,
        })
    }

    /// Evaluates a graph with the reference interpreter, serving its effect nodes through this
    /// host's drivers and the graph's footprint, exactly as a compiled run's host imports are.
    /// Runs on tokio's blocking pool (the interpreter is synchronous; each effect call waits).
    pub async fn eval_effects(
        &self,
        graph: &Graph,
        inputs: &BTreeMap<String, Value>,
        limits: RunLimits,
    ) -> Result<RunOutput, Error> {
        let specialized = graph.specialize_any(inputs)?;
        let graph: &Graph = &specialized;
        let bound = graph.bind_inputs(inputs)?;
        let dispatcher = Dispatcher::new(
            Arc::clone(&graph.footprint),
            Arc::clone(&self.inner.services),
        );
        let sites = graph.inner.memo_sites();
        let memo = (!sites.is_empty())
            .then(|| crate::memo::RunMemo::new(Arc::clone(&self.inner.memo), sites.into()));
        let graph = graph.clone();
        let handle = tokio::runtime::Handle::current();
        let task = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let deadline = eval::Deadline::after(start, limits.deadline);
            let eval_limits = eval::EvalLimits {
                fuel: limits.fuel,
                memory_bytes: limits.memory_bytes,
                deadline,
            };
            // The caps, fuel and deadline are the interpreter's (the same effect budget a
            // compiled run's host imports keep); this only serves the call within the time
            // the run has left.
            let mut serve = |call: effects::EffectCall, remaining: std::time::Duration| {
                handle.block_on(async {
                    tokio::time::timeout(remaining, dispatcher.call(call, remaining))
                        .await
                        .unwrap_or_else(|_| {
                            Err(effects::EffectError::Timeout(
                                "the run's deadline passed".into(),
                            ))
                        })
                })
            };
            let server = eval::EffectServer {
                max_calls: limits.max_effect_calls,
                max_bytes: limits.max_effect_bytes,
                serve: &mut serve,
            };
            let outcome = eval::eval_with(&graph.inner, &bound, &eval_limits, Some(server), memo)
                .map_err(|e| eval_error(e, &graph.inner, limits.memory_bytes))?;
            let calls = outcome.effect_calls;
            Ok::<_, Error>(RunOutput {
                outputs: name_outputs(&graph, outcome.outputs)?,
                fuel_used: outcome.fuel_used,
                run_time: start.elapsed(),
                context: 0,
                peak_memory_bytes: 0,
                effect_calls: calls,
                effect_rounds: calls,
                memo_hits: outcome.memo_hits,
                memo_misses: outcome.memo_misses,
            })
        });
        task.await.map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                Stage::Eval,
                format!("the evaluation task ended abnormally: {e}"),
                "report this as a bug",
            )
        })?
    }
}

pub(super) fn name_outputs(
    graph: &Graph,
    values: Vec<Value>,
) -> Result<Vec<(String, Value)>, Error> {
    if values.len() != graph.inner.outputs.len() {
        return Err(Error::new(
            ErrorKind::Internal,
            Stage::Run,
            format!(
                "{} outputs returned, {} expected",
                values.len(),
                graph.inner.outputs.len()
            ),
            "report this as a bug",
        ));
    }
    Ok(graph
        .inner
        .outputs
        .iter()
        .cloned()
        .zip(values.into_iter().map(Value::canonicalized))
        .collect())
}
