//! `cabi_realloc`: the allocator the component model's canonical ABI calls to move a list or a
//! string from the host into the guest's linear memory.
//!
//! On wasm32-wasip2, std provides this symbol; a `no_std` guest must provide it itself.
//! Invariants: it never returns null for a non-empty request (a refused allocation traps, and the
//! host's memory limiter has recorded the refused growth), and it never builds an invalid
//! `Layout` (an invalid size/alignment pair traps too).
#![allow(
    unsafe_code,
    reason = "the canonical ABI's allocation entry point is an extern fn"
)]

use alloc::alloc::{Layout, alloc as allocate, realloc};

// ASSUMPTION: the canonical ABI calls `cabi_realloc(old_ptr, old_len, align, new_len)` with
//   `old_ptr`/`old_len`/`align` describing a block it obtained from this same function (or
//   `old_len == 0` for a fresh block), as the component model's Canonical ABI specifies.
// DEPENDS ON: wasmtime's lowering of `list<u8>` arguments (the only realloc caller: the host,
//   never guest code) and on dlmalloc being the global allocator.
// TLA+ PROPERTY: none (no state machine; covered by the runtime's fuel/memory limits).
// FAILURE MODE: a request beyond the memory limit or a nonsensical layout would return null and
//   let the host write through it.
// MITIGATION: every failure traps via `unreachable` instead of returning; layouts are built with
//   the checked `Layout::from_size_align`; the host maps the trap to a typed memory error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    if new_len == 0 {
        // A zero-length block needs no storage; any non-null aligned pointer will do.
        return align as *mut u8;
    }
    let ptr = if old_len == 0 {
        match Layout::from_size_align(new_len, align) {
            // ASSUMPTION: `layout` has a non-zero size (checked above).
            // DEPENDS ON: dlmalloc as the global allocator; the Canonical ABI's realloc contract.
            // TLA+ PROPERTY: none (covered by the runtime's memory limit).
            // FAILURE MODE: a null return, handled just below by trapping.
            // MITIGATION: the layout is checked by `Layout::from_size_align`; null traps.
            Ok(layout) => unsafe { allocate(layout) },
            Err(_) => trap(),
        }
    } else {
        match Layout::from_size_align(old_len, align) {
            // ASSUMPTION: the caller got `old_ptr` from this function with this layout; `new_len` > 0.
            // DEPENDS ON: dlmalloc as the global allocator; the Canonical ABI's realloc contract.
            // TLA+ PROPERTY: none (covered by the runtime's memory limit).
            // FAILURE MODE: a null return, handled just below by trapping.
            // MITIGATION: the layout is checked by `Layout::from_size_align`; null traps.
            Ok(layout) => unsafe { realloc(old_ptr, layout, new_len) },
            Err(_) => trap(),
        }
    };
    if ptr.is_null() {
        trap();
    }
    ptr
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    loop {}
}
