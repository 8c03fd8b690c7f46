//! keep: a library component (samples/component) whose `keep(s)` keeps
//! exactly `64 + len(s)` bytes in 2 blocks per call, for good:
//!
//! * the string, `len(s)` bytes (UTF-8): the block the canonical ABI
//!   allocated (through wit-bindgen's `cabi_realloc`) when the caller
//!   lowered the argument into this component, taken over as a `String`;
//! * a `Record` of `RECORD_BYTES` = 64 bytes (`Box<Record>`) that holds it
//!   and links it into a list the static `KEPT` holds (so the blocks stay
//!   reachable).
//!
//! `s` must not be empty: an empty string is lowered without an
//! allocation, so that call keeps 64 bytes in 1 block. Nothing else is
//! allocated, on the first call or later: after N calls of `keep("abc")`
//! the heap holds N * 67 bytes in 2 * N blocks, and `keep` returns that
//! (the bytes live after the call, from the counting allocator of
//! ../counting, the module's `#[global_allocator]`). `count()` returns N.
//! `lose(s)` leaks the string instead (`len(s)` bytes in 1 block, the
//! lowered argument itself, its address dropped: definitely lost).
//! The same functions are exported in the interface
//! `heapscope:samples/store` (../wit/store.wit), which ../app imports.
use std::cell::RefCell;

#[path = "../../counting/counting.rs"]
mod counting;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

wit_bindgen::generate!({
    path: "../wit",
    world: "library",
});

use exports::heapscope::samples::store::{Guest as StoreGuest, Totals};

/// Bytes of the record kept per call.
pub const RECORD_BYTES: usize = 64;

#[allow(dead_code)] // held, never read: what is kept
struct Record {
    text: String,
    next: Option<Box<Record>>,
    serial: u32,
    _pad: [u8; RECORD_BYTES - 20],
}

const _: () = assert!(core::mem::size_of::<Record>() == RECORD_BYTES);

struct Kept {
    head: Option<Box<Record>>,
    count: u32,
}

struct Local(RefCell<Kept>);
// SAFETY: a component instance is single-threaded.
unsafe impl Sync for Local {}

static KEPT: Local = Local(RefCell::new(Kept {
    head: None,
    count: 0,
}));

#[inline(never)]
fn keep_string(s: String) -> u32 {
    let mut kept = KEPT.0.borrow_mut();
    kept.count += 1;
    let serial = kept.count;
    let next = kept.head.take();
    kept.head = Some(Box::new(Record {
        text: s,
        next,
        serial,
        _pad: [0; RECORD_BYTES - 20],
    }));
    drop(kept);
    counting::totals()[3] as u32
}

/// Leaks `s`: nothing keeps its address.
#[inline(never)]
fn lose_string(s: String) -> u32 {
    core::mem::forget(s);
    counting::totals()[3] as u32
}

fn count_kept() -> u32 {
    KEPT.0.borrow().count
}

struct Library;

impl Guest for Library {
    fn keep(s: String) -> u32 {
        keep_string(s)
    }
    fn count() -> u32 {
        count_kept()
    }
    fn lose(s: String) -> u32 {
        lose_string(s)
    }
}

impl StoreGuest for Library {
    fn keep(s: String) -> u32 {
        keep_string(s)
    }
    fn count() -> u32 {
        count_kept()
    }
    fn stats() -> Totals {
        let [allocs, bytes, peak, live, live_blocks, frees] = counting::totals();
        Totals {
            allocs,
            bytes,
            peak,
            live,
            live_blocks,
            frees,
        }
    }
}

export!(Library);
