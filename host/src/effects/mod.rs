//! Effects: the drivers that serve a guest's host imports, one runner per effect type (seed
//! §6; ARCHITECTURE.md, "host/src/effects"). Each runner takes a pure description in and gives
//! a typed result out, under a timeout, with its dependencies injected at construction.
//!
//! Invariants:
//! - No runner sees a graph, a footprint or the wasm store: the footprint check happens before
//!   a runner is called, and the runtime turns a runner's result into a guest value.
//! - Every driver failure arrives classified (connection, timeout, constraint, syntax, …),
//!   never as a bare string.

pub(crate) mod db;

pub(crate) mod budget;
mod call;
mod database;
mod dispatch;
mod http;
mod kernels;
mod sqlite;

pub(crate) use budget::EffectBudget;
pub(crate) use call::{EffectAnswer, EffectCall, EffectError, EffectHandler, RoundFuture};
pub(crate) use database::Database;
pub(crate) use dispatch::{Dispatcher, Services};
pub(crate) use http::{
    ASSUMPTIONS as HTTP_ASSUMPTIONS, HttpConfig, HttpRunner, Request as HttpRequest,
    Response as HttpResponse, refused_header, tls_config,
};
pub(crate) use kernels::{ASSUMPTIONS as KERNEL_ASSUMPTIONS, Kernels, work as kernel_work};
pub(crate) use sqlite::{ASSUMPTIONS as SQLITE_ASSUMPTIONS, SqliteRunner};
