//! deploy: named deployments and hot code replacement (seed 9.3).
//!
//! A layer over [`Host`] (the host knows nothing of it): [`Deployments`] owns its table and
//! the lock that swaps versions. `deploy(name, graph)` compiles the new version in the background while the current one keeps
//! serving; once the new one is Ready it becomes current, and the old one is retired: it takes
//! no new request and moves to Evicted when its last in-flight request ends.
//!
//! Invariants:
//! - A request starts (its lifecycle `begin`) under the same lock that swaps versions, so it
//!   starts either on the old version before the swap or on the new one after it; never on a
//!   version that is retired, failed or not yet Ready.
//! - A deployed version's artifact is pinned: memory-cache pressure drops it from L1 but does
//!   not retire it while a deployment serves it.
//! - No request is dropped by a swap: in-flight requests hold the old artifact and finish.
//! - Each step of specs/HotReplacement.tla this file takes is recorded where it happens
//!   ([`crate::DeployEvent`], `lifecycle/deployments.rs`): `Compiled` once the deploy holds the
//!   Ready artifact, `Swapped` and `RequestStarted` under the deployments lock; `Host::
//!   deploy_trace` returns them and tests/all/conformance.rs checks them with TLC.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use graphjit_value::Value;

use crate::error::{Error, ErrorKind, Stage};
use crate::host::{CompiledGraph, Graph, Host, RunLimits, RunOutput};
use crate::lifecycle::DeployTag;

/// Named deployments served by one [`Host`], each with its current version. Cheap to clone;
/// clones share the table.
#[derive(Clone, Debug)]
pub struct Deployments {
    host: Host,
    table: Arc<Mutex<BTreeMap<String, Deployment>>>,
}

/// One named deployment: its current version.
#[derive(Debug)]
struct Deployment {
    current: CompiledGraph,
    version: u64,
}

/// What [`Deployments::deploy`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Deployed {
    /// The deployment's name.
    pub name: String,
    /// The new version's number (1 for the first deploy of a name).
    pub version: u64,
    /// The version replaced, if any.
    pub replaced: Option<u64>,
    /// The new version's compilation: cache path, key, stage times.
    pub compiled: CompiledGraph,
}

/// The result of [`Deployments::invoke`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Invocation {
    /// The run's outputs and costs.
    pub output: RunOutput,
    /// The version that served it.
    pub version: u64,
}

fn unknown(name: &str) -> Error {
    Error::new(
        ErrorKind::UnknownDeployment,
        Stage::Input,
        format!("no deployment named {name:?}"),
        "deploy a graph under that name first",
    )
}

impl Deployments {
    /// No deployments yet, served by `host`.
    pub fn new(host: &Host) -> Deployments {
        Deployments {
            host: host.clone(),
            table: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// The host that compiles and runs the deployed graphs.
    pub fn host(&self) -> &Host {
        &self.host
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Deployment>> {
        // Each critical section swaps or reads whole entries; a poisoned map is still
        // consistent.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Deploys `graph` as the next version of `name`. The current version, if any, serves
    /// until this one is Ready; then new requests go here and the old one drains.
    pub async fn deploy(&self, name: &str, graph: &Graph) -> Result<Deployed, Error> {
        let compiled = self.host.compile_async(graph).await?;
        Ok(self.deploy_compiled(name, compiled))
    }

    /// [`Deployments::deploy`] compiling under `limits` ([`Host::compile_within`]).
    pub async fn deploy_within(
        &self,
        name: &str,
        graph: &Graph,
        limits: crate::CompileLimits,
    ) -> Result<Deployed, Error> {
        let compiled = self.host.compile_within_async(graph, limits).await?;
        Ok(self.deploy_compiled(name, compiled))
    }

    /// Makes the compiled graph the next version of `name` (the swap of [`Deployments::deploy`]).
    fn deploy_compiled(&self, name: &str, compiled: CompiledGraph) -> Deployed {
        compiled.artifact().pins.fetch_add(1, Ordering::SeqCst);
        let lifecycle = &compiled.artifact().lifecycle;
        let shared_name: Arc<str> = Arc::from(name);
        lifecycle.deploy_compiled(&shared_name);
        let (version, old) = {
            let mut deployments = self.lock();
            let (version, old) = match deployments.get_mut(name) {
                Some(deployment) => {
                    deployment.version += 1;
                    let old = std::mem::replace(&mut deployment.current, compiled.clone());
                    (deployment.version, Some(old))
                }
                None => {
                    deployments.insert(
                        name.to_owned(),
                        Deployment {
                            current: compiled.clone(),
                            version: 1,
                        },
                    );
                    (1, None)
                }
            };
            lifecycle.deploy_swapped(
                DeployTag::new(shared_name, version),
                old.as_ref().map(CompiledGraph::context),
            );
            (version, old)
        };
        if let Some(old) = &old {
            self.unpin(old, &format!("replaced by version {version} of {name:?}"));
        }
        Deployed {
            name: name.to_owned(),
            version,
            replaced: old.map(|_| version - 1),
            compiled,
        }
    }

    /// Removes a deployment; its version drains and is evicted.
    pub fn undeploy(&self, name: &str) -> Result<(), Error> {
        let removed = self.lock().remove(name).ok_or_else(|| unknown(name))?;
        self.unpin(&removed.current, &format!("{name:?} undeployed"));
        Ok(())
    }

    /// The graph deployed as `name` now, if there is one.
    pub fn graph(&self, name: &str) -> Option<Graph> {
        self.lock()
            .get(name)
            .map(|deployment| deployment.current.graph().clone())
    }

    /// The error for a name with no deployment (what `invoke` and `undeploy` return).
    pub fn unknown(name: &str) -> Error {
        unknown(name)
    }

    /// Names and current versions of all deployments.
    pub fn list(&self) -> Vec<(String, u64)> {
        self.lock()
            .iter()
            .map(|(name, d)| (name.clone(), d.version))
            .collect()
    }

    fn unpin(&self, compiled: &CompiledGraph, why: &str) {
        let artifact = compiled.artifact();
        if artifact.pins.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.host.inner.cache.retire(artifact, why);
        }
    }

    /// Runs the current version of `name`.
    pub async fn invoke(
        &self,
        name: &str,
        inputs: &BTreeMap<String, Value>,
        limits: RunLimits,
    ) -> Result<Invocation, Error> {
        for _ in 0..3 {
            let started = {
                let deployments = self.lock();
                let deployment = deployments.get(name).ok_or_else(|| unknown(name))?;
                let current = &deployment.current;
                let artifact = Arc::clone(current.artifact());
                match artifact.lifecycle.begin_request() {
                    Ok(running) => Ok((current.clone(), deployment.version, artifact, running)),
                    Err(_) => Err((current.graph().clone(), deployment.version)),
                }
            };
            match started {
                Ok((compiled, version, artifact, running)) => {
                    let graph = compiled.graph();
                    let bound = graph.bind_inputs(inputs)?;
                    let mut encoded = Vec::with_capacity(graphjit_value::encoded_len(&bound));
                    graphjit_value::encode(&bound, &mut encoded);
                    let output = self
                        .host
                        .run_on(graph, &artifact, running, &encoded, limits)
                        .await?;
                    return Ok(Invocation { output, version });
                }
                // The version's artifact cannot serve (it failed): make it ready again and
                // put it back under the same version number, unless a new version came.
                Err((graph, version)) => {
                    let fresh = self.host.compile_async(&graph).await?;
                    fresh.artifact().pins.fetch_add(1, Ordering::SeqCst);
                    let lifecycle = &fresh.artifact().lifecycle;
                    let shared_name: Arc<str> = Arc::from(name);
                    lifecycle.deploy_compiled(&shared_name);
                    let old = {
                        let mut deployments = self.lock();
                        match deployments.get_mut(name) {
                            Some(d) if d.version == version => {
                                let old = std::mem::replace(&mut d.current, fresh.clone());
                                lifecycle.deploy_swapped(
                                    DeployTag::new(shared_name, version),
                                    Some(old.context()),
                                );
                                Some(old)
                            }
                            _ => None,
                        }
                    };
                    match old {
                        Some(old) => self.unpin(&old, "refreshed after failure"),
                        None => self.unpin(&fresh, "superseded while refreshing"),
                    }
                }
            }
        }
        Err(Error::new(
            ErrorKind::Internal,
            Stage::Run,
            format!("deployment {name:?} has no version that can serve"),
            "redeploy the graph; report this as a bug if it persists",
        ))
    }
}
