//! `GET /metrics`: Prometheus text, per tenant (prometheus-client).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Tenant {
    pub(crate) tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Outcome {
    pub(crate) tenant: String,
    /// `ok`, or the error's kind (`fuel_exhausted`, `invalid_graph`, …).
    pub(crate) outcome: String,
}

/// One deployment's invocations that answered (`ok`) or not (`failed`): two series per
/// deployment, removed when it is undeployed, so the label set stays bounded by the
/// tenants' `max_deployments`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Deployment {
    pub(crate) tenant: String,
    pub(crate) deployment: String,
    /// `ok` or `failed`.
    pub(crate) outcome: &'static str,
}

impl Deployment {
    /// Both series of `deployment`.
    pub(crate) fn both(tenant: &str, deployment: &str) -> [Deployment; 2] {
        ["ok", "failed"].map(|outcome| Deployment {
            tenant: tenant.to_owned(),
            deployment: deployment.to_owned(),
            outcome,
        })
    }
}

fn seconds() -> Histogram {
    // 0.1 ms to about 3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Every metric the service keeps.
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<Outcome, Counter>,
    pub(crate) fuel: Family<Tenant, Counter>,
    pub(crate) run_seconds: Family<Tenant, Histogram, fn() -> Histogram>,
    pub(crate) compile_seconds: Family<Tenant, Histogram, fn() -> Histogram>,
    pub(crate) in_flight: Family<Tenant, Gauge>,
    pub(crate) refused: Family<Outcome, Counter>,
    pub(crate) invocations: Family<Deployment, Counter>,
    /// The service's instance slots, and how many runs hold one (set when scraped).
    pub(crate) instance_slots: Gauge,
    pub(crate) instance_slots_in_use: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("graphjit");
        let requests = Family::<Outcome, Counter>::default();
        registry.register(
            "runs",
            "Runs and invocations, by tenant and outcome (ok or the error's kind)",
            requests.clone(),
        );
        let fuel = Family::<Tenant, Counter>::default();
        registry.register("fuel_used", "Fuel the tenant's runs used", fuel.clone());
        let run_seconds: Family<Tenant, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(seconds);
        registry.register(
            "run_seconds",
            "Wall time of a run (instance and call)",
            run_seconds.clone(),
        );
        let compile_seconds: Family<Tenant, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(seconds);
        registry.register(
            "compile_seconds",
            "Time to get a graph ready (cache lookups, codegen, rustc, Cranelift)",
            compile_seconds.clone(),
        );
        let in_flight = Family::<Tenant, Gauge>::default();
        registry.register("in_flight_runs", "Runs in progress", in_flight.clone());
        let refused = Family::<Outcome, Counter>::default();
        registry.register(
            "refused",
            "Requests refused before running: auth, ceilings, quotas (outcome: the reason)",
            refused.clone(),
        );
        let invocations = Family::<Deployment, Counter>::default();
        registry.register(
            "deployment_invocations",
            "Invocations of each deployment, by whether they answered 2xx (ok) or not (failed)",
            invocations.clone(),
        );
        let instance_slots = Gauge::default();
        registry.register(
            "instance_slots",
            "Runs the service instantiates at once, across tenants (max_instances)",
            instance_slots.clone(),
        );
        let instance_slots_in_use = Gauge::default();
        registry.register(
            "instance_slots_in_use",
            "Instance slots held by runs in progress",
            instance_slots_in_use.clone(),
        );
        Metrics {
            registry,
            invocations,
            instance_slots,
            instance_slots_in_use,
            requests,
            fuel,
            run_seconds,
            compile_seconds,
            in_flight,
            refused,
        }
    }

    /// The text exposition format.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
