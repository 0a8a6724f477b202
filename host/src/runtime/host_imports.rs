//! The host side of the effect interfaces (`db`, `http`, `kernels`, `log`, and `rounds`, which
//! carries several independent calls at once): each guest call becomes an [`EffectCall`] for
//! the run's [`EffectHandler`], under the run's accounting.
//!
//! Accounting, per run (documented in docs/graph-format.md, "Effects"):
//! - a cap on the number of effect calls (`log` included; a refused `log` line is dropped) and
//!   on the bytes their answers carry back, counted by `effects::EffectBudget`, the one
//!   definition `eval` uses too;
//! - fuel: `FUEL_PER_CALL` per call (and a kernel's work) plus `FUEL_PER_BYTE` per byte
//!   returned, taken from the run's fuel, so host work counts against the same bound as guest
//!   work;
//! - the run's deadline: each call gets only what remains of it, and a call that ends past it
//!   ends the run with the deadline error.
//!
//! Invariants:
//! - Nothing reaches a handler without passing the caps first; the handler does the footprint
//!   check before any driver.
//! - A guest can make a call fail, never make the host panic: every conversion is total.

use graphjit_value::Tensor;
use graphjit_value::effects::{Cell, Rows};
use wasmtime::component::Linker;
use wasmtime::{StoreContextMut, Trap};

use super::bindings::graphjit::guest::effect_types as wit;
use super::bindings::graphjit::guest::rounds as wit_rounds;
use super::limiter::RunState;
use crate::effects::budget::{FUEL_PER_BYTE, FUEL_PER_CALL};
use crate::effects::{EffectAnswer, EffectBudget, EffectCall, EffectError, HttpRequest};
use crate::interface::Interface;

/// The interfaces, by their full names.
const DB: &str = Interface::Db.wit();
const HTTP: &str = Interface::Http.wit();
const KERNELS: &str = Interface::Kernels.wit();
const LOG: &str = Interface::Log.wit();
const ROUNDS: &str = Interface::Rounds.wit();
const NATIVE: &str = Interface::Native.wit();
const MEMO: &str = Interface::Memo.wit();

/// Fuel charged per multiply-add of a placed `matmul` (on top of the call and its bytes): the
/// host's work counts against the run's bound like the guest's would.
pub(crate) const FUEL_PER_NATIVE_MAC: u64 = 1;

/// Products below this many multiply-adds (about 0.2 ms of work) run on the calling task: a
/// hop to tokio's blocking pool measured ~30 µs, more than a 64×64×64 product takes.
const INLINE_NATIVE_MACS: u64 = 1 << 22;
pub(crate) const EFFECT_TYPES: &str = "graphjit:guest/effect-types@0.1.0";

/// Defines every effect function in `linker`. Which of them a component may import is decided
/// per graph, before instantiation (`imports::check`).
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    linker.instance(EFFECT_TYPES)?;
    let mut db = linker.instance(DB)?;
    db.func_wrap_async(
        "query",
        |store: StoreContextMut<'_, RunState>, (sql, params): (String, Vec<wit::Cell>)| {
            Box::new(async move {
                let call = EffectCall::DbQuery {
                    sql,
                    params: params.into_iter().map(from_wit_cell).collect(),
                };
                let answer = serve(store, call).await?.and_then(|a| match a {
                    EffectAnswer::Rows(rows) => Ok(to_wit_rows(rows)),
                    other => Err(unexpected(&other)),
                });
                Ok((answer.map_err(to_wit_error),))
            })
        },
    )?;
    db.func_wrap_async(
        "execute",
        |store: StoreContextMut<'_, RunState>, (sql, params): (String, Vec<wit::Cell>)| {
            Box::new(async move {
                let call = EffectCall::DbExecute {
                    sql,
                    params: params.into_iter().map(from_wit_cell).collect(),
                };
                let answer = serve(store, call).await?.and_then(|a| match a {
                    EffectAnswer::Count(n) => Ok(n),
                    other => Err(unexpected(&other)),
                });
                Ok((answer.map_err(to_wit_error),))
            })
        },
    )?;
    db.func_wrap_async(
        "execute-many",
        |store: StoreContextMut<'_, RunState>, (sql, rows): (String, Vec<Vec<wit::Cell>>)| {
            Box::new(async move {
                let call = EffectCall::DbExecuteMany {
                    sql,
                    rows: rows
                        .into_iter()
                        .map(|row| row.into_iter().map(from_wit_cell).collect())
                        .collect(),
                };
                let answer = serve(store, call).await?.and_then(|a| match a {
                    EffectAnswer::Count(n) => Ok(n),
                    other => Err(unexpected(&other)),
                });
                Ok((answer.map_err(to_wit_error),))
            })
        },
    )?;
    let mut http = linker.instance(HTTP)?;
    http.func_wrap_async(
        "request",
        |store: StoreContextMut<'_, RunState>, (request,): (wit::HttpRequest,)| {
            Box::new(async move {
                let call = EffectCall::Http(from_wit_request(request));
                let answer = serve(store, call).await?.and_then(|a| match a {
                    EffectAnswer::Response(r) => Ok(to_wit_response(r)),
                    other => Err(unexpected(&other)),
                });
                Ok((answer.map_err(to_wit_error),))
            })
        },
    )?;
    let mut kernels = linker.instance(KERNELS)?;
    kernels.func_wrap_async(
        "call",
        |store: StoreContextMut<'_, RunState>, (name, args): (String, Vec<wit::Tensor>)| {
            Box::new(async move {
                let call = EffectCall::Kernel {
                    name,
                    args: args
                        .into_iter()
                        .map(|t| Tensor {
                            shape: t.shape,
                            data: t.data,
                        })
                        .collect(),
                };
                let answer = serve(store, call).await?.and_then(|a| match a {
                    EffectAnswer::Tensor(t) => Ok(wit::Tensor {
                        shape: t.shape,
                        data: t.data,
                    }),
                    other => Err(unexpected(&other)),
                });
                Ok((answer.map_err(to_wit_error),))
            })
        },
    )?;
    let mut rounds = linker.instance(ROUNDS)?;
    rounds.func_wrap_async(
        "run",
        |store: StoreContextMut<'_, RunState>, (calls,): (Vec<wit_rounds::Call>,)| {
            Box::new(async move {
                let calls = calls.into_iter().map(from_wit_call).collect();
                let answers = serve_round(store, calls).await?;
                Ok((answers
                    .into_iter()
                    .map(|a| a.and_then(to_wit_answer).map_err(to_wit_error))
                    .collect::<Vec<_>>(),))
            })
        },
    )?;
    let mut native = linker.instance(NATIVE)?;
    native.func_wrap_async(
        "matmul",
        |mut store: StoreContextMut<'_, RunState>,
         (m, k, n, a, b): (u32, u32, u32, Vec<f32>, Vec<f32>)| {
            Box::new(async move {
                let a = Tensor {
                    shape: vec![m, k],
                    data: a,
                };
                let b = Tensor {
                    shape: vec![k, n],
                    data: b,
                };
                let macs = u64::from(m)
                    .saturating_mul(u64::from(k))
                    .saturating_mul(u64::from(n));
                let bytes = 4 * (a.data.len() + b.data.len()) as u64;
                charge(
                    &mut store,
                    FUEL_PER_CALL
                        .saturating_add(bytes.saturating_mul(FUEL_PER_BYTE))
                        .saturating_add(macs.saturating_mul(FUEL_PER_NATIVE_MAC)),
                )?;
                let deadline = store.data().deadline;
                let product = if macs < INLINE_NATIVE_MACS {
                    crate::native::matmul_until(&a, &b, Some(deadline))
                } else {
                    // Off the async workers: a large product takes milliseconds of CPU; its
                    // threads read the clock between blocks and stop at the deadline.
                    tokio::task::spawn_blocking(move || {
                        crate::native::matmul_until(&a, &b, Some(deadline))
                    })
                    .await
                    .map_err(|e| wasmtime::Error::msg(format!("native matmul panicked: {e}")))?
                };
                let product = match product {
                    Ok(product) => product,
                    Err(crate::native::NativeError::Deadline) => {
                        store.data_mut().deadline_hit = true;
                        return Err(Trap::Interrupt.into());
                    }
                    Err(shape) => return Err(wasmtime::Error::msg(shape.to_string())),
                };
                Ok((product.data,))
            })
        },
    )?;
    let mut memo = linker.instance(MEMO)?;
    memo.func_wrap(
        "lookup",
        |mut store: StoreContextMut<'_, RunState>, (site, reads): (u32, Vec<u8>)| {
            let found = match store.data_mut().memo.as_mut() {
                Some(memo) => memo.lookup(site, &reads),
                None => None,
            };
            let value_bytes = found.as_ref().map_or(0, |v| v.len());
            charge(
                &mut store,
                crate::memo::RunMemo::lookup_fuel(reads.len(), value_bytes),
            )?;
            Ok((found.map(|value| value.to_vec()),))
        },
    )?;
    memo.func_wrap(
        "store",
        |mut store: StoreContextMut<'_, RunState>,
         (site, reads, value): (u32, Vec<u8>, Vec<u8>)| {
            charge(&mut store, crate::memo::RunMemo::store_fuel(value.len()))?;
            if let Some(memo) = store.data_mut().memo.as_mut() {
                memo.store(site, &reads, value);
            }
            Ok(())
        },
    )?;
    let mut log = linker.instance(LOG)?;
    log.func_wrap_async(
        "log",
        |store: StoreContextMut<'_, RunState>, (level, message): (String, String)| {
            Box::new(async move {
                // A log line that is refused (caps, no handler) is dropped, not an error: a
                // log never changes what a run computes.
                let _ignored = serve(store, EffectCall::Log { level, message }).await?;
                Ok(())
            })
        },
    )?;
    Ok(())
}

/// Caps, fuel and deadline around one handler call. `Err` ends the run (a trap: out of fuel
/// or past the deadline); `Ok(Err(_))` is the call's typed failure, which the guest returns.
async fn serve(
    store: StoreContextMut<'_, RunState>,
    call: EffectCall,
) -> wasmtime::Result<Result<EffectAnswer, EffectError>> {
    let mut answers = serve_round(store, vec![call]).await?;
    Ok(answers
        .pop()
        .unwrap_or_else(|| Err(EffectError::Other("no answer".into()))))
}

/// [`serve`] for a round: every call is admitted (call cap, fuel per call) in order, the
/// admitted ones are served together by the handler, and each answer is then accounted (byte
/// cap, fuel per byte) in order. A call past the cap is refused with `Limit` and not sent.
/// One round is one host call, whatever its size.
async fn serve_round(
    mut store: StoreContextMut<'_, RunState>,
    calls: Vec<EffectCall>,
) -> wasmtime::Result<Vec<Result<EffectAnswer, EffectError>>> {
    let state = store.data_mut();
    let Some(handler) = state.effects.handler.clone() else {
        return Ok(calls
            .iter()
            .map(|_| {
                Err(EffectError::Other(
                    "this run has no effect handler; effects are refused".into(),
                ))
            })
            .collect());
    };
    state.effects.rounds = state.effects.rounds.saturating_add(1);
    let room = state.effects.budget.admit(calls.len());
    let refused = calls.len().saturating_sub(room);
    let mut admitted = calls;
    admitted.truncate(room);
    let fuel = admitted.iter().fold(0u64, |sum, call| {
        sum.saturating_add(EffectBudget::admission_fuel(call))
    });
    charge(&mut store, fuel)?;
    let remaining = store.data().effects.budget.remaining();
    if remaining.is_zero() {
        store.data_mut().deadline_hit = true;
        return Err(Trap::Interrupt.into());
    }
    // One call (every single-effect import) goes straight to the handler: the round
    // machinery is for several.
    let work = match <[EffectCall; 1]>::try_from(admitted) {
        Ok([call]) => Box::pin(async move { vec![handler.call(call, remaining).await] })
            as crate::effects::RoundFuture<'_>,
        Err(admitted) if admitted.is_empty() => Box::pin(async { Vec::new() }),
        Err(admitted) => handler.call_round(admitted, remaining),
    };
    let served = match tokio::time::timeout(remaining, work).await {
        Ok(answers) => answers,
        Err(_) => {
            store.data_mut().deadline_hit = true;
            return Err(Trap::Interrupt.into());
        }
    };
    if store.data().effects.budget.expired() {
        store.data_mut().deadline_hit = true;
        return Err(Trap::Interrupt.into());
    }
    let mut results = Vec::with_capacity(served.len() + refused);
    for answer in served {
        let Ok(answer) = answer else {
            results.push(answer);
            continue;
        };
        let bytes = answer.bytes();
        if let Err(refused) = store.data_mut().effects.budget.account(bytes) {
            results.push(Err(refused));
            continue;
        }
        charge(&mut store, EffectBudget::answer_fuel(bytes))?;
        results.push(Ok(answer));
    }
    let refusal = store.data().effects.budget.refusal();
    results.extend((0..refused).map(|_| Err(refusal.clone())));
    Ok(results)
}

fn from_wit_call(call: wit_rounds::Call) -> EffectCall {
    let tensors = |args: Vec<wit::Tensor>| {
        args.into_iter()
            .map(|t| Tensor {
                shape: t.shape,
                data: t.data,
            })
            .collect()
    };
    match call {
        wit_rounds::Call::Query(c) => EffectCall::DbQuery {
            sql: c.sql,
            params: c.params.into_iter().map(from_wit_cell).collect(),
        },
        wit_rounds::Call::Execute(c) => EffectCall::DbExecute {
            sql: c.sql,
            params: c.params.into_iter().map(from_wit_cell).collect(),
        },
        wit_rounds::Call::Request(c) => EffectCall::Http(from_wit_request(c)),
        wit_rounds::Call::Kernel(c) => EffectCall::Kernel {
            name: c.name,
            args: tensors(c.args),
        },
    }
}

fn to_wit_answer(answer: EffectAnswer) -> Result<wit_rounds::Answer, EffectError> {
    Ok(match answer {
        EffectAnswer::Rows(rows) => wit_rounds::Answer::Rows(to_wit_rows(rows)),
        EffectAnswer::Count(n) => wit_rounds::Answer::Count(n),
        EffectAnswer::Response(r) => wit_rounds::Answer::Response(to_wit_response(r)),
        EffectAnswer::Tensor(t) => wit_rounds::Answer::Tensor(wit::Tensor {
            shape: t.shape,
            data: t.data,
        }),
        EffectAnswer::Unit => return Err(unexpected(&EffectAnswer::Unit)),
    })
}

fn from_wit_request(request: wit::HttpRequest) -> HttpRequest {
    HttpRequest {
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: request.body,
        response_headers: request.response_headers,
    }
}

fn to_wit_response(response: crate::effects::HttpResponse) -> wit::HttpResponse {
    wit::HttpResponse {
        status: response.status,
        headers: response.headers,
        body: response.body,
    }
}

/// Takes `cost` fuel from the run, or ends it out of fuel.
fn charge(store: &mut StoreContextMut<'_, RunState>, cost: u64) -> wasmtime::Result<()> {
    let fuel = store.get_fuel()?;
    if fuel < cost {
        store.set_fuel(0)?;
        return Err(Trap::OutOfFuel.into());
    }
    store.set_fuel(fuel - cost)?;
    Ok(())
}

fn unexpected(answer: &EffectAnswer) -> EffectError {
    EffectError::Other(format!(
        "the handler answered with the wrong kind of answer: {answer:?}"
    ))
}

fn from_wit_cell(cell: wit::Cell) -> Cell {
    match cell {
        wit::Cell::Null => Cell::Null,
        wit::Cell::Int(i) => Cell::Int(i),
        wit::Cell::Float(x) => Cell::Float(x),
        wit::Cell::Boolean(b) => Cell::Bool(b),
        wit::Cell::Text(s) => Cell::Text(s),
        wit::Cell::Bytes(b) => Cell::Bytes(b),
    }
}

fn to_wit_cell(cell: Cell) -> wit::Cell {
    match cell {
        Cell::Null => wit::Cell::Null,
        Cell::Int(i) => wit::Cell::Int(i),
        Cell::Float(x) => wit::Cell::Float(x),
        Cell::Bool(b) => wit::Cell::Boolean(b),
        Cell::Text(s) => wit::Cell::Text(s),
        Cell::Bytes(b) => wit::Cell::Bytes(b),
    }
}

fn to_wit_rows(rows: Rows) -> wit::Rows {
    wit::Rows {
        columns: rows.columns,
        rows: rows
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(to_wit_cell).collect())
            .collect(),
    }
}

/// Host error → WIT error.
pub(crate) fn to_wit_error(error: EffectError) -> wit::EffectError {
    match error {
        EffectError::FootprintDenied(m) => wit::EffectError::FootprintDenied(m),
        EffectError::Limit(m) => wit::EffectError::Limit(m),
        EffectError::Connection(m) => wit::EffectError::Connection(m),
        EffectError::Timeout(m) => wit::EffectError::Timeout(m),
        EffectError::Constraint(m) => wit::EffectError::Constraint(m),
        EffectError::Syntax(m) => wit::EffectError::Syntax(m),
        EffectError::Permission(m) => wit::EffectError::Permission(m),
        EffectError::HttpStatus(s) => wit::EffectError::HttpStatus(s),
        EffectError::BodyTooLarge(n) => wit::EffectError::BodyTooLarge(n),
        EffectError::BadAnswer(m) => wit::EffectError::BadAnswer(m),
        EffectError::Other(m) => wit::EffectError::Other(m),
    }
}

/// WIT error → host error (what a guest reported back in its `run-error`).
pub(crate) fn from_wit_error(error: wit::EffectError) -> EffectError {
    match error {
        wit::EffectError::FootprintDenied(m) => EffectError::FootprintDenied(m),
        wit::EffectError::Limit(m) => EffectError::Limit(m),
        wit::EffectError::Connection(m) => EffectError::Connection(m),
        wit::EffectError::Timeout(m) => EffectError::Timeout(m),
        wit::EffectError::Constraint(m) => EffectError::Constraint(m),
        wit::EffectError::Syntax(m) => EffectError::Syntax(m),
        wit::EffectError::Permission(m) => EffectError::Permission(m),
        wit::EffectError::HttpStatus(s) => EffectError::HttpStatus(s),
        wit::EffectError::BodyTooLarge(n) => EffectError::BodyTooLarge(n),
        wit::EffectError::BadAnswer(m) => EffectError::BadAnswer(m),
        wit::EffectError::Other(m) => EffectError::Other(m),
    }
}
