//! The assumption inventory (seed 5.3): what a graph's execution rests on outside the proof
//! boundary, and which TLA+ properties depend on each assumption.
//!
//! The entries live next to the code they describe (`ASSUMPTIONS` in `compile`, `runtime`,
//! `effects::db`, `effects::http`, `effects::kernels`, and here for the clock and the
//! scheduler); this module only collects the ones a given graph uses. A property is named
//! `Module!Property`, as in `specs/` (`tests/all/unsafe_policy.rs` checks such names exist).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::interface::Interface;

/// One assumption about something outside the proof boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Assumption {
    /// What is assumed about: `rustc`, `wasmtime`, `postgresql`, `http`, `kernels`, `clock`,
    /// `scheduler`, `libm`, `native`.
    pub component: &'static str,
    /// The assumption itself.
    pub assumption: &'static str,
    /// What happens if it does not hold.
    pub failure_mode: &'static str,
    /// What limits the damage.
    pub mitigation: &'static str,
    /// TLA+ properties (`Module!Property`) whose proof relies on it.
    pub properties: &'static [&'static str],
}

/// The host's clock and scheduler.
pub(crate) const PLATFORM: &[Assumption] = &[
    Assumption {
        component: "clock",
        assumption: "the monotonic clock advances; the epoch ticker thread runs every few milliseconds",
        failure_mode: "a stalled clock or ticker lets a run pass its wall-clock deadline",
        mitigation: "fuel bounds every run independently of time (FuelTermination)",
        properties: &["FuelTermination!AllRunsEnd"],
    },
    Assumption {
        component: "scheduler",
        assumption: "tokio polls every ready task eventually (fuel yields give it the chance)",
        failure_mode: "one run starves others; replacement drains slowly",
        mitigation: "fuel-based yielding every 10M units; per-run deadlines",
        properties: &[
            "HotReplacement!RequestsFinish",
            "JitLifecycle!RetiredEventuallyEvicted",
        ],
    },
];

/// The f32 functions both engines share (`graphjit_value::math`).
pub(crate) const MATH: &[Assumption] = &[Assumption {
    component: "libm",
    assumption: "graphjit_value::math's tanhf, expm1f, expf, fminf and fmaxf are libm 0.2.16's \
                 algorithms, copied so that they inline, and return its bits",
    failure_mode: "eval and the guest still agree (they share the copies), but no longer with \
                   libm, so results drift from what the interpreter promises",
    mitigation: "tests compare each copy with libm bit for bit over 34M inputs (pairs for \
                 fminf/fmaxf); libm's version is pinned in Cargo.lock",
    properties: &[],
}];

/// The component of the inventory that names the driver serving `interface`, when a driver
/// outside graphjit serves it (`verify` checks that the inventory has an entry for it).
pub(crate) fn driver_component(interface: Interface) -> Option<&'static str> {
    match interface {
        Interface::Db => Some("postgresql"),
        Interface::Http => Some("http"),
        Interface::Kernels => Some("kernels"),
        // Log lines go to the host's own sink; rounds carry the calls above; native is
        // graphjit's own code (its entries are always in the inventory).
        Interface::Log | Interface::Rounds | Interface::Native | Interface::Memo => None,
    }
}

/// Every assumption a graph whose effects go through `interfaces` rests on.
pub(crate) fn for_effects(interfaces: &BTreeSet<Interface>) -> Vec<Assumption> {
    let mut out: Vec<Assumption> = Vec::new();
    out.extend_from_slice(crate::compile::ASSUMPTIONS);
    out.extend_from_slice(crate::runtime::ASSUMPTIONS);
    out.extend_from_slice(PLATFORM);
    out.extend_from_slice(MATH);
    out.extend_from_slice(crate::native::ASSUMPTIONS);
    if interfaces.contains(&Interface::Db) {
        out.extend_from_slice(crate::effects::db::ASSUMPTIONS);
        out.extend_from_slice(crate::effects::SQLITE_ASSUMPTIONS);
    }
    if interfaces.contains(&Interface::Http) {
        out.extend_from_slice(crate::effects::HTTP_ASSUMPTIONS);
    }
    if interfaces.contains(&Interface::Kernels) {
        out.extend_from_slice(crate::effects::KERNEL_ASSUMPTIONS);
    }
    out
}
