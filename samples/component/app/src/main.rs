//! app: a WASI 0.2 command composed with the library component ../keep
//! (samples/component): it passes `KEEPS` strings of 8 bytes (`item-000`
//! to `item-099`) to the library's `keep`, which keeps 64 + 8 = 72 bytes
//! for each, and prints what the library says to stdout:
//!
//! ```text
//! kept 100 strings; the library holds 7200 bytes
//! ```
//!
//! With `HEAPSCOPE_ORACLE` set in its environment it writes two oracle
//! lines to stderr (../counting/counting.rs): the library's totals (asked
//! with `stats()` at the end of `main`, `module=keep`), then its own
//! (`module=app`, counted at libc's `malloc`, from a libc `atexit` handler).
#[path = "../../counting/counting.rs"]
mod counting;

wit_bindgen::generate!({
    path: "../wit",
    world: "app",
});

use heapscope::samples::store;

const KEEPS: u32 = 100;

extern "C" fn at_exit() {
    counting::report("app");
}

fn main() {
    let oracle = counting::wanted();
    if oracle {
        extern "C" {
            fn atexit(f: extern "C" fn()) -> i32;
        }
        // SAFETY: registers a plain function; libc runs it after Rust's
        // runtime cleanup.
        unsafe { atexit(at_exit) };
    }
    let mut live = 0;
    for i in 0..KEEPS {
        let s = format!("item-{i:03}");
        live = store::keep(&s);
    }
    println!(
        "kept {} strings; the library holds {live} bytes",
        store::count()
    );
    if oracle {
        let t = store::stats();
        eprintln!(
            "heapscope-oracle: module=keep allocs={} bytes={} peak={} live={} live_blocks={} frees={}",
            t.allocs, t.bytes, t.peak, t.live, t.live_blocks, t.frees
        );
    }
}
