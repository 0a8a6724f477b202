//! Effects: the drivers that serve a guest's host imports, one runner per effect type (seed
//! §6; ARCHITECTURE.md, "host/src/effects"). Each runner takes a pure description in and gives
//! a typed result out, under a timeout, with its dependencies injected at construction.
//!
//! Invariants:
//! - No runner sees a graph, a footprint or the wasm store: the footprint check happens before
//!   a runner is called, and the runtime turns a runner's result into a guest value.
//! - Every driver failure arrives classified (connection, timeout, constraint, syntax, …),
//!   never as a bare string.

// Not called by the runtime yet: the host imports that dispatch to it come next.
#[expect(
    dead_code,
    reason = "the runner is wired to the host imports in a later change"
)]
pub(crate) mod db;

mod call;
mod dispatch;
mod http;
mod kernels;
mod sqlite;

pub(crate) use call::{EffectAnswer, EffectCall, EffectError, EffectHandler, RoundFuture};
pub(crate) use dispatch::{DbService, Dispatcher, Services};
pub(crate) use http::{ASSUMPTIONS as HTTP_ASSUMPTIONS, HttpConfig, HttpRunner, tls_config};
pub(crate) use kernels::{ASSUMPTIONS as KERNEL_ASSUMPTIONS, Kernels, work as kernel_work};
pub(crate) use sqlite::{ASSUMPTIONS as SQLITE_ASSUMPTIONS, SqliteRunner};
