//! `graphjit serve`: graphjit as a multi-tenant HTTP service (axum on tokio). The API is in
//! docs/service.md.
//!
//! Invariants:
//! - Every request but `/healthz` and `/metrics` names its tenant by its API key; keys are
//!   kept only as blake3 hashes and compared in constant time against every tenant's.
//! - A tenant's deployments live in its own table: no request of another tenant can read,
//!   run, replace, remove or detect them (an unknown name and another tenant's are the same
//!   404).
//! - A request may lower its tenant's ceilings (fuel, memory, deadline), never raise them; a
//!   graph whose footprint declares more than the tenant's footprint ceiling is refused before
//!   it is compiled.
//! - Graph input never causes a 500: every failure is a typed error object with a status a
//!   client can act on (400, 401, 403, 404, 413, 422, 429, 503, 504).
//! - Every rustc runs in the tenant's compile sandbox (time, CPU, memory) and is charged to
//!   the tenant's compile budget; a compile that reaches a limit is the tenant's typed
//!   `resource_exceeded`, and the service goes on.
//! - After SIGTERM no new request starts (503) and the ones in flight finish.

mod config;
mod metrics;
mod quota;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use graphjit::{
    CacheConfig, CompileStats, Deployments, Error, ErrorKind, Graph, Host, HostConfig,
    HttpSettings, RunLimits, RunOutput, Stage,
};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::cli::error::CliError;
use config::TenantConfig;
use metrics::{Metrics, Outcome};
use quota::{CompileBudget, Drain};

pub(crate) use config::key_hash;

/// One tenant at run time: its configuration, its own host (its drivers, its memo, maybe its
/// cache partition), its own deployments, its run slots and its compile slots.
struct Tenant {
    config: TenantConfig,
    host: Host,
    deployments: Deployments,
    slots: Arc<Semaphore>,
    compiles: Semaphore,
    /// Compile time left this minute, when the tenant has a `compile_ms_per_minute`.
    compile_budget: Option<CompileBudget>,
}

struct Service {
    tenants: Vec<Tenant>,
    metrics: Metrics,
    /// rustc runs at once, whoever asks: one per core.
    compilers: Semaphore,
    drain: Drain,
    /// Where guests run: a runtime of its own, its threads at a lower priority than the
    /// front's, so that requests are read, admitted and answered while long runs hold every
    /// guest thread (see `guest_runtime`).
    guests: tokio::runtime::Handle,
    /// The host's instance slots (`max_instances`): a run holds one from admission to its
    /// answer, so the engine's pool is never found full mid-request; when none is free the
    /// run is refused with 429 before anything is instantiated.
    instances: Arc<Semaphore>,
    /// Its size.
    instance_slots: u32,
}

/// What an admitted run holds until its answer is sent: one of its tenant's run slots and
/// one of the host's instance slots.
struct RunSlot {
    _tenant: tokio::sync::OwnedSemaphorePermit,
    _instance: tokio::sync::OwnedSemaphorePermit,
}

/// The priority (`nice`) of the threads guests run on; the front's are at the process's own.
const GUEST_NICE: i32 = 5;

/// The runtime guests run on: one worker per core, each at [`GUEST_NICE`].
///
/// Why a second runtime: on the front's runtime, requests are read and admitted by the same
/// workers that long runs hold; with runs on their own lower-priority threads, the front's
/// threads take the CPU when a request arrives. Measured (serve bench, noisy phase, 2 cores):
/// a tiny invocation's p99 under a neighbour's flood went from 7.9 ms to 4.7 ms (0.4–0.6 ms
/// quiet). More guest threads than cores, or tokio checking its global queue every tick,
/// measured no better.
fn guest_runtime(cores: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("graphjit-guest")
        .on_thread_start(|| {
            // Linux: PRIO_PROCESS with no pid sets the calling thread's nice value. Best
            // effort: a refusal leaves the thread at the front's priority.
            #[cfg(target_os = "linux")]
            let _best_effort = rustix::process::setpriority_process(None, GUEST_NICE);
        })
        .enable_all()
        .build()
}

/// Runs the service until SIGTERM or Ctrl-C, then drains: no new connection is accepted and
/// the requests in flight finish.
pub(crate) fn serve(config_path: &Path) -> Result<(), CliError> {
    let setup = |message: String| {
        CliError::own(
            "invalid_input",
            Stage::Setup,
            message,
            "fix the service configuration (docs/service.md)",
        )
    };
    let (file, tenants) = config::load(config_path).map_err(setup)?;
    // Structured logs: one JSON object per line on stderr, `GRAPHJIT_LOG` filtering
    // (`info` by default). Keys never reach them: only tenant names, outcomes and costs.
    let filter = tracing_subscriber::EnvFilter::try_from_env("GRAPHJIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    // The pool holds every run the tenants may have at once, unless the operator caps it.
    let instances = file
        .max_instances
        .unwrap_or_else(|| {
            tenants
                .iter()
                .map(|t| t.max_concurrent_runs)
                .fold(0u32, u32::saturating_add)
        })
        .clamp(1, config::MAX_INSTANCES);
    let host = Host::with_config(&HostConfig {
        max_instances: instances,
        cache: CacheConfig {
            disk_dir: file.cache_dir.clone(),
            ..CacheConfig::default()
        },
        http: HttpSettings {
            allow_loopback: file.allow_loopback,
            ..HttpSettings::default()
        },
        ..HostConfig::default()
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| setup(format!("cannot start the async runtime: {e}")))?;
    let mut hosts = Vec::with_capacity(tenants.len());
    for config in &tenants {
        let partition = config
            .partition_cache
            .then(|| format!("tenant:{}", config.name));
        let tenant_host = host.tenant_host(partition.as_deref());
        if let Some(url) = &config.database_url {
            runtime
                .block_on(tenant_host.connect_database(url))
                .map_err(|e| setup(format!("tenant {:?}: {}", config.name, e.message)))?;
        }
        hosts.push(tenant_host);
    }
    let tenants = tenants
        .into_iter()
        .zip(hosts)
        .map(|(config, host)| Tenant {
            deployments: Deployments::new(&host),
            host,
            slots: Arc::new(Semaphore::new(config.max_concurrent_runs as usize)),
            compiles: Semaphore::new(config.max_concurrent_compiles as usize),
            compile_budget: config.compile_per_minute.map(CompileBudget::new),
            config,
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let guests = guest_runtime(cores)
        .map_err(|e| setup(format!("cannot start the guests' runtime: {e}")))?;
    let service = Arc::new(Service {
        guests: guests.handle().clone(),
        tenants,
        metrics: Metrics::new(),
        compilers: Semaphore::new(cores),
        drain: Drain::default(),
        instances: Arc::new(Semaphore::new(instances as usize)),
        instance_slots: instances,
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/v1/run", post(run_graph))
        .route("/v1/deployments/{name}", put(deploy).delete(undeploy))
        .route("/v1/deployments/{name}/invoke", post(invoke))
        .layer(DefaultBodyLimit::max(file.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&service),
            admission,
        ))
        .with_state(Arc::clone(&service));
    let drain_limit = Duration::from_millis(file.drain_timeout_ms);
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(file.listen)
            .await
            .map_err(|e| setup(format!("cannot listen on {}: {e}", file.listen)))?;
        tracing::info!(listen = %file.listen, "serving");
        let header_timeout = Duration::from_millis(file.header_timeout_ms);
        accept(
            listener,
            app,
            header_timeout,
            shutdown(service, drain_limit),
        )
        .await;
        Ok(())
    })
}

/// Serves HTTP/1.1 connections from `listener` until `stop` resolves, then closes every
/// connection (each finishes the request it is answering, if any).
///
/// Not `axum::serve`: it sets no timer on hyper's connections, so a client that sends half a
/// request head (slowloris) or never sends one holds its connection, and its task, forever —
/// and keeps a graceful shutdown from ending. Here every connection must deliver each
/// request's head within `header_timeout` or is closed.
async fn accept(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let mut closed = closed.clone();
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = closed.changed() => conn.as_mut().graceful_shutdown(),
            }
            // The request in progress, if any, is answered; the head timeout bounds one
            // that is still arriving.
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = closing.send(true);
    while connections.join_next().await.is_some() {}
}

/// Resolves on SIGTERM or Ctrl-C, once the requests in flight have finished (or the drain
/// timeout has passed); meanwhile new requests are answered 503.
async fn shutdown(service: Arc<Service>, limit: Duration) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!(
        in_flight = service.drain.in_flight(),
        "draining: new requests are refused; requests in flight finish"
    );
    let left = service.drain.drain(limit).await;
    tracing::info!(left, "drained; stopping");
}

/// Counts every API request in flight, and refuses new ones (503) once the service drains.
/// Health, readiness and metrics are always answered.
async fn admission(
    State(service): State<Arc<Service>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    match service.drain.enter() {
        Some(_in_flight) => next.run(request).await,
        None => {
            let mut response = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "draining",
                "the service is shutting down and takes no new requests",
                "retry against another instance, or after the restart",
            );
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            headers.insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            response
        }
    }
}

/// `GET /readyz`: 200 while the service takes requests, 503 once it drains.
async fn ready(State(service): State<Arc<Service>>) -> Response {
    if service.drain.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

/// A request refused before (or instead of) running: its whole answer, boxed (a `Response`
/// is large, and most results are `Ok`).
struct Refusal(Box<Response>);

impl From<Response> for Refusal {
    fn from(response: Response) -> Refusal {
        Refusal(Box::new(response))
    }
}

fn reply(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

/// A refusal of the service's own (not the library's): the same error object shape.
fn refuse(status: StatusCode, kind: &str, message: &str, remediation: &str) -> Response {
    reply(
        status,
        &json!({"error": {
            "kind": kind,
            "stage": "request",
            "node": null,
            "message": message,
            "remediation": remediation,
        }}),
    )
}

/// The library's error as the CLI's `--json` prints it, with the status it means.
fn error_reply(e: &Error) -> Response {
    let mut error = json!({
        "kind": e.kind_name(),
        "stage": e.stage.name(),
        "node": e.node,
        "message": e.message,
        "remediation": e.remediation,
    });
    if let ErrorKind::EffectFailed { class } = &e.kind {
        error["class"] = json!(class.name());
    }
    reply(status_of(e), &json!({ "error": error }))
}

/// What a client can act on: its input (400), a missing deployment (404), the footprint
/// ceiling (403), a run that failed in the graph (422), the deadline (504); 500 only for a
/// graphjit bug or a broken toolchain.
fn status_of(e: &Error) -> StatusCode {
    match (&e.kind, e.stage) {
        (ErrorKind::UnknownDeployment, _) => StatusCode::NOT_FOUND,
        (ErrorKind::FootprintDenied, Stage::Parse) => StatusCode::FORBIDDEN,
        (ErrorKind::DeadlineExceeded { .. }, _) => StatusCode::GATEWAY_TIMEOUT,
        (ErrorKind::Internal | ErrorKind::Toolchain, _) => StatusCode::INTERNAL_SERVER_ERROR,
        (_, Stage::Setup | Stage::Parse | Stage::Input) => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl Service {
    /// The tenant whose key the request carries: every tenant's hash is compared (in
    /// constant time: `blake3::Hash`'s equality), whichever matches.
    fn tenant(&self, headers: &HeaderMap) -> Result<&Tenant, Refusal> {
        let unauthorized = |message: &str| {
            refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                message,
                "send Authorization: Bearer KEY with the tenant's API key",
            )
        };
        let key = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("no bearer key"))?;
        let hash = blake3::hash(key.as_bytes());
        let mut found = None;
        for tenant in &self.tenants {
            if tenant.config.key_hash == hash {
                found = Some(tenant);
            }
        }
        found
            .ok_or_else(|| unauthorized("the key is not one of this service's"))
            .map_err(Refusal::from)
    }

    fn refused(&self, tenant: &str, reason: &str) {
        tracing::info!(tenant, reason, "refused");
        self.metrics
            .refused
            .get_or_create(&Outcome {
                tenant: tenant.to_owned(),
                outcome: reason.to_owned(),
            })
            .inc();
    }

    /// Parses a graph the tenant sent, within its size and footprint ceilings.
    fn graph(&self, tenant: &Tenant, bytes: &[u8]) -> Result<Graph, Refusal> {
        if bytes.len() > tenant.config.max_graph_bytes {
            self.refused(&tenant.config.name, "graph_size");
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "ceiling_exceeded",
                &format!(
                    "the graph is {} bytes; this tenant's graphs may have {}",
                    bytes.len(),
                    tenant.config.max_graph_bytes
                ),
                "send a smaller graph",
            )
            .into());
        }
        let graph = Graph::from_json(bytes).map_err(|e| error_reply(&e))?;
        graph
            .check_footprint_within(&tenant.config.footprint_ceiling)
            .map_err(|e| {
                self.refused(&tenant.config.name, "footprint_ceiling");
                error_reply(&e)
            })?;
        Ok(graph)
    }

    /// The tenant's ceilings lowered by the request (and by the graph's own `limits`).
    fn limits(
        &self,
        tenant: &Tenant,
        graph: &Graph,
        asked: &Request,
    ) -> Result<RunLimits, Refusal> {
        let ceiling = tenant.config.limits;
        let over = |field: &str, asked: u64, allowed: u64| {
            self.refused(&tenant.config.name, field);
            refuse(
                StatusCode::FORBIDDEN,
                "ceiling_exceeded",
                &format!("{field} {asked} is over this tenant's ceiling, {allowed}"),
                &format!("ask for at most {allowed}, or leave {field} out"),
            )
        };
        let deadline_ceiling = u64::try_from(ceiling.deadline.as_millis()).unwrap_or(u64::MAX);
        let mut limits = ceiling;
        if let Some(fuel) = asked.fuel {
            if fuel > ceiling.fuel {
                return Err(over("fuel", fuel, ceiling.fuel).into());
            }
            limits.fuel = fuel;
        }
        if let Some(memory) = asked.memory {
            if memory > ceiling.memory_bytes {
                return Err(over("memory", memory, ceiling.memory_bytes).into());
            }
            limits.memory_bytes = memory;
        }
        if let Some(ms) = asked.deadline_ms {
            if ms > deadline_ceiling {
                return Err(over("deadline_ms", ms, deadline_ceiling).into());
            }
            limits.deadline = Duration::from_millis(ms);
        }
        Ok(graph.limits_over(limits))
    }

    /// Refuses (403) a deployment of a new name once the tenant holds `max_deployments`;
    /// replacing one it holds is always allowed. Deploys of new names racing each other may
    /// pass this check together, at most `max_concurrent_compiles` of them.
    fn deployment_room(&self, tenant: &Tenant, name: &str) -> Result<(), Refusal> {
        let held = tenant.deployments.list();
        if held.len() < tenant.config.max_deployments || held.iter().any(|(n, _)| n == name) {
            return Ok(());
        }
        self.refused(&tenant.config.name, "max_deployments");
        Err(refuse(
            StatusCode::FORBIDDEN,
            "ceiling_exceeded",
            &format!(
                "this tenant holds {} deployments, its most",
                tenant.config.max_deployments
            ),
            "undeploy one, or replace one by deploying under its name",
        )
        .into())
    }

    /// One of the tenant's run slots and one of the host's instance slots, or 429 with
    /// `Retry-After`.
    fn slot(&self, tenant: &Tenant) -> Result<RunSlot, Refusal> {
        let own = self.tenant_slot(tenant)?;
        let instance = Arc::clone(&self.instances)
            .try_acquire_owned()
            .map_err(|_| {
                self.refused(&tenant.config.name, "instance_pool");
                too_many(
                    "instance_pool_full",
                    "every instance slot of the service is in use",
                    "retry after a second; the service's operator may raise max_instances",
                    1,
                )
            })?;
        Ok(RunSlot {
            _tenant: own,
            _instance: instance,
        })
    }

    /// One of the tenant's run slots, or 429 with `Retry-After`.
    fn tenant_slot(&self, tenant: &Tenant) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
        Arc::clone(&tenant.slots).try_acquire_owned().map_err(|_| {
            self.refused(&tenant.config.name, "concurrent_runs");
            quota_refusal(
                &format!(
                    "this tenant already has {} runs in progress",
                    tenant.config.max_concurrent_runs
                ),
                "retry after a second, or run fewer graphs at once",
                1,
            )
        })
    }

    /// Counts a finished run or invocation.
    fn record(&self, tenant: &str, result: &Result<RunOutput, Error>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.kind_name(),
        };
        match result {
            Ok(out) => tracing::info!(
                tenant,
                outcome,
                fuel = out.fuel_used,
                run_us = out.run_time.as_micros() as u64,
                "run"
            ),
            Err(e) => tracing::info!(tenant, outcome, node = e.node.as_deref(), "run"),
        }
        self.metrics
            .requests
            .get_or_create(&Outcome {
                tenant: tenant.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        if let Ok(out) = result {
            let label = metrics::Tenant {
                tenant: tenant.to_owned(),
            };
            self.metrics
                .fuel
                .get_or_create(&label)
                .inc_by(out.fuel_used);
            self.metrics
                .run_seconds
                .get_or_create(&label)
                .observe(out.run_time.as_secs_f64());
        }
    }

    /// Runs `work` (a compile of `graph`, or a deploy that compiles it) once the tenant has a
    /// compile slot and then a compiler is free: a tenant's compile storm waits behind its own
    /// `max_concurrent_compiles`, never in front of other tenants' compiles. A graph not yet
    /// compiled needs compile budget left (else 429 with the seconds until there is); the
    /// time `work` holds a compiler is charged to the budget, whatever its outcome.
    async fn compiling<T>(
        &self,
        tenant: &Tenant,
        graph: &Graph,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, Refusal> {
        if let Some(budget) = &tenant.compile_budget
            && !tenant.host.is_compiled(graph)
            && let Err(wait) = budget.admit()
        {
            self.refused(&tenant.config.name, "compile_budget");
            return Err(quota_refusal(
                "this tenant has used its compile time for this minute",
                "retry after the Retry-After seconds, or deploy graphs once and invoke them",
                wait,
            ));
        }
        let _own = tenant.compiles.acquire().await;
        let _compiler = self.compilers.acquire().await;
        let started = Instant::now();
        let out = work.await;
        let spent = started.elapsed();
        if let Some(budget) = &tenant.compile_budget {
            budget.charge(spent);
        }
        self.metrics
            .compile_seconds
            .get_or_create(&metrics::Tenant {
                tenant: tenant.config.name.clone(),
            })
            .observe(spent.as_secs_f64());
        Ok(out)
    }

    /// What a run or an invocation needs before it starts: its limits (the tenant's ceilings
    /// lowered by the request), its inputs, and one of the tenant's run slots (held until the
    /// answer is sent).
    fn admit(
        &self,
        tenant: &Tenant,
        graph: &Graph,
        request: &Request,
    ) -> Result<(RunLimits, BTreeMap<String, graphjit::Value>, RunSlot), Refusal> {
        let limits = self.limits(tenant, graph, request)?;
        let inputs = inputs(graph, &request.inputs)?;
        Ok((limits, inputs, self.slot(tenant)?))
    }

    /// Runs `work` on the guests' runtime counted as in flight for `tenant`, records its
    /// outcome, and answers it.
    async fn serve_run(
        &self,
        tenant: &str,
        work: impl std::future::Future<Output = Result<RunOutput, Error>> + Send + 'static,
        compiled: Option<&CompileStats>,
    ) -> Response {
        let label = metrics::Tenant {
            tenant: tenant.to_owned(),
        };
        self.metrics.in_flight.get_or_create(&label).inc();
        let result = match self.guests.spawn(work).await {
            Ok(result) => result,
            Err(e) => {
                self.metrics.in_flight.get_or_create(&label).dec();
                tracing::error!(tenant, error = %e, "a run's task ended abnormally");
                return refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the run's task ended abnormally",
                    "report this as a bug",
                );
            }
        };
        self.metrics.in_flight.get_or_create(&label).dec();
        self.record(tenant, &result);
        outcome_reply(&result, compiled)
    }
}

/// 429 with `Retry-After: seconds`.
fn quota_refusal(message: &str, remediation: &str, seconds: u64) -> Refusal {
    too_many("quota_exceeded", message, remediation, seconds)
}

/// 429 of `kind` with `Retry-After: seconds`.
fn too_many(kind: &str, message: &str, remediation: &str, seconds: u64) -> Refusal {
    let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, kind, message, remediation);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    Refusal::from(response)
}

/// What a run (with its graph) or an invocation (without) asks for: inputs, and limits that
/// may only lower the tenant's ceilings.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default)]
    graph: Option<serde_json::Value>,
    /// In the order written, a name given twice kept twice (so that it is refused).
    #[serde(default, deserialize_with = "entries")]
    inputs: Vec<(String, serde_json::Value)>,
    #[serde(default)]
    fuel: Option<u64>,
    #[serde(default)]
    memory: Option<u64>,
    #[serde(default)]
    deadline_ms: Option<u64>,
}

/// A JSON object's entries in order, duplicates kept (serde_json's own maps keep the last).
fn entries<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, serde_json::Value)>, D::Error> {
    struct Entries;
    impl<'de> serde::de::Visitor<'de> for Entries {
        type Value = Vec<(String, serde_json::Value)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of input values by name")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Entries)
}

/// The body, or the typed refusal of one too large (413) or unreadable (400).
fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Refusal> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                &rejection.body_text(),
                "send a smaller request",
            )
        } else {
            refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &rejection.body_text(),
                "send the request body in full",
            )
        }
    })
    .map_err(Refusal::from)
}

fn request_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(bytes)
        .map_err(|e| {
            refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the request is not the expected JSON: {e}"),
                "see docs/service.md for the request's fields",
            )
        })
        .map_err(Refusal::from)
}

/// JSON input values as the graph's inputs (strings as they are, the rest as JSON text).
fn inputs(
    graph: &Graph,
    values: &[(String, serde_json::Value)],
) -> Result<BTreeMap<String, graphjit::Value>, Refusal> {
    let pairs: Vec<(String, String)> = values
        .iter()
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (name.clone(), text)
        })
        .collect();
    graph
        .parse_inputs(&pairs)
        .map_err(|e| error_reply(&e).into())
}

fn outcome_reply(result: &Result<RunOutput, Error>, compiled: Option<&CompileStats>) -> Response {
    match result {
        Ok(out) => reply(StatusCode::OK, &crate::cli::run::output_json(out, compiled)),
        Err(e) => error_reply(e),
    }
}

async fn metrics_text(State(service): State<Arc<Service>>) -> Response {
    let slots = i64::from(service.instance_slots);
    let free = i64::try_from(service.instances.available_permits()).unwrap_or(slots);
    service.metrics.instance_slots.set(slots);
    service.metrics.instance_slots_in_use.set(slots - free);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        service.metrics.text(),
    )
        .into_response()
}

async fn run_graph(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let tenant = service.tenant(&headers)?;
        let raw = body(raw)?;
        let request: Request = request_json(&raw)?;
        let text = request
            .graph
            .as_ref()
            .ok_or_else(|| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "the request has no \"graph\"",
                    "send {\"graph\": GRAPH, \"inputs\": {...}}",
                )
            })?
            .to_string();
        let graph = service.graph(tenant, text.as_bytes())?;
        let (limits, inputs, _slot) = service.admit(tenant, &graph, &request)?;
        // A graph that names dims compiles as its specialization for these inputs' shapes
        // (each shape once: the sizes are in its cache key).
        let graph = graph.specialize(&inputs).map_err(|e| error_reply(&e))?;
        let name = &tenant.config.name;
        let compile = tenant
            .host
            .compile_within_async(&graph, tenant.config.compile_limits);
        let compiled = service
            .compiling(tenant, &graph, compile)
            .await?
            .map_err(|e| error_reply(&e))?;
        let (host, ready) = (tenant.host.clone(), compiled.clone());
        let run = async move { host.run(&ready, &inputs, limits).await };
        Ok::<Response, Refusal>(service.serve_run(name, run, Some(&compiled.stats)).await)
    };
    answer.await.unwrap_or_else(|refusal| *refusal.0)
}

/// A deployment name: 1 to 64 of `A-Z a-z 0-9 _ - .`.
fn deployment_name(name: &str) -> Result<(), Refusal> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a deployment name is 1 to 64 letters, digits, '_', '-' or '.'",
            "rename the deployment",
        )
        .into())
    }
}

async fn deploy(
    State(service): State<Arc<Service>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let tenant = service.tenant(&headers)?;
        deployment_name(&name)?;
        let raw = body(raw)?;
        let graph = service.graph(tenant, &raw)?;
        if graph.is_generic() {
            return Err::<Response, Refusal>(
                refuse(
                    StatusCode::BAD_REQUEST,
                    "invalid_input",
                    &format!(
                        "the graph names dims ({}); deployments of such graphs are not served yet",
                        graph.dims().join(", ")
                    ),
                    "write sizes for the dims to deploy it, or run it with POST /v1/run",
                )
                .into(),
            );
        }
        service.deployment_room(tenant, &name)?;
        let deploy = tenant
            .deployments
            .deploy_within(&name, &graph, tenant.config.compile_limits);
        let deployed = service
            .compiling(tenant, &graph, deploy)
            .await?
            .map_err(|e| error_reply(&e))?;
        Ok::<Response, Refusal>(reply(
            StatusCode::OK,
            &json!({
                "name": deployed.name,
                "version": deployed.version,
                "replaced": deployed.replaced,
                "key": deployed.compiled.stats.key,
                "cache": deployed.compiled.stats.cache.name(),
            }),
        ))
    };
    answer.await.unwrap_or_else(|refusal| *refusal.0)
}

async fn undeploy(
    State(service): State<Arc<Service>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let tenant = match service.tenant(&headers) {
        Ok(tenant) => tenant,
        Err(refusal) => return *refusal.0,
    };
    match tenant.deployments.undeploy(&name) {
        Ok(()) => {
            for series in metrics::Deployment::both(&tenant.config.name, &name) {
                service.metrics.invocations.remove(&series);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error_reply(&e),
    }
}

async fn invoke(
    State(service): State<Arc<Service>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let tenant = service.tenant(&headers)?;
        let raw = body(raw)?;
        let request: Request = if raw.is_empty() {
            Request::default()
        } else {
            request_json(&raw)?
        };
        if request.graph.is_some() {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "an invocation runs the deployed graph and takes none",
                "send {\"inputs\": {...}}, or PUT the graph to replace the deployment",
            )
            .into());
        }
        let graph = tenant
            .deployments
            .graph(&name)
            .ok_or_else(|| error_reply(&Deployments::unknown(&name)))?;
        let (limits, inputs, _slot) = service.admit(tenant, &graph, &request)?;
        let (deployments, deployed) = (tenant.deployments.clone(), name.clone());
        let run = async move {
            let invocation = deployments.invoke(&deployed, &inputs, limits).await?;
            Ok(invocation.output)
        };
        let response = service.serve_run(&tenant.config.name, run, None).await;
        // Built after the run, only the one series it counts in.
        let series = metrics::Deployment {
            tenant: tenant.config.name.clone(),
            deployment: name,
            outcome: if response.status().is_success() {
                "ok"
            } else {
                "failed"
            },
        };
        service.metrics.invocations.get_or_create(&series).inc();
        Ok::<Response, Refusal>(response)
    };
    answer.await.unwrap_or_else(|refusal| *refusal.0)
}
