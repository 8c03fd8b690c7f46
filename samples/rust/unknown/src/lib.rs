//! unknown (Rust, wasm32-unknown-unknown, default allocator): a library with
//! no WASI, called through its exports, as a host calls a plugin.
//!
//! `work(n)` builds `n` strings, counts them in a map, keeps every tenth in a
//! history that is never cleared, and returns a checksum. Expected numbers
//! (tests/samples.rs checks them): `heapscope run unknown.wasm --invoke work
//! -- 100` prints 300 (10 two-byte and 90 three-byte words, plus 10 kept),
//! as `wasmtime --invoke work unknown.wasm 100` does, and leaves 11 blocks,
//! 221 bytes live: the 10 history strings (2 + 9 x 3 bytes) and the
//! history's 192-byte buffer.
use std::collections::HashMap;
use std::sync::Mutex;

static HISTORY: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[inline(never)]
fn remember(s: &str) {
    HISTORY.lock().unwrap().push(s.to_string());
}

/// Build, count and partly keep `n` strings; returns a checksum.
#[no_mangle]
pub extern "C" fn work(n: u32) -> u32 {
    let words: Vec<String> = (0..n).map(|i| format!("w{i}")).collect();
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for w in &words {
        *counts.entry(w).or_default() += w.len() as u32;
    }
    for w in words.iter().step_by(10) {
        remember(w);
    }
    counts.values().sum::<u32>() + HISTORY.lock().unwrap().len() as u32
}
