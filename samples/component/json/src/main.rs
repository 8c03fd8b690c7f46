//! json-command: a WASI 0.2 command using serde_json (samples/component).
//!
//! It parses an inventory of `ITEMS` items (a JSON document it renders
//! itself, so the run needs no input), totals it by category, prints one
//! JSON line per category and a summary line to stdout, and exits 0.
//! Everything it allocates is freed except what it keeps on purpose:
//! `KEPT_BLOCKS` boxed copies of `KEPT_BYTES` bytes each, leaked with
//! `Box::leak` (the leak a test looks for).
//!
//! With `HEAPSCOPE_ORACLE` set in its environment it writes the exact
//! totals of its allocator to stderr at exit (../counting/counting.rs, which
//! counts at libc's `malloc`), from a libc `atexit` handler: after Rust's
//! runtime has freed its stdout buffer.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[path = "../../counting/counting.rs"]
mod counting;

const ITEMS: u32 = 300;
const KEPT_BLOCKS: u32 = 10;
const KEPT_BYTES: usize = 1000;

#[derive(Serialize, Deserialize)]
struct Item {
    id: u32,
    name: String,
    category: String,
    price_cents: u64,
    tags: Vec<String>,
}

#[derive(Serialize, Default)]
struct Total {
    category: String,
    items: u32,
    value_cents: u64,
    tags: u32,
}

const CATEGORIES: [&str; 5] = ["books", "games", "music", "tools", "toys"];

#[inline(never)]
fn render_inventory() -> String {
    let items: Vec<Item> = (0..ITEMS)
        .map(|i| Item {
            id: i,
            name: format!("item-{i:04}"),
            category: CATEGORIES[(i % 5) as usize].to_string(),
            price_cents: u64::from(i * 37 % 1000 + 99),
            tags: (0..i % 4).map(|t| format!("t{t}")).collect(),
        })
        .collect();
    serde_json::to_string(&items).expect("serialisable")
}

#[inline(never)]
fn totals(doc: &str) -> Vec<Total> {
    let items: Vec<Item> = serde_json::from_str(doc).expect("valid inventory");
    let mut by: BTreeMap<String, Total> = BTreeMap::new();
    for it in &items {
        let t = by.entry(it.category.clone()).or_default();
        t.category.clone_from(&it.category);
        t.items += 1;
        t.value_cents += it.price_cents;
        t.tags += it.tags.len() as u32;
    }
    by.into_values().collect()
}

/// Keeps `KEPT_BLOCKS` blocks of `KEPT_BYTES` bytes for the rest of the run.
#[inline(never)]
fn keep_forever() {
    for i in 0..KEPT_BLOCKS {
        let block: Box<[u8]> = vec![i as u8; KEPT_BYTES].into_boxed_slice();
        Box::leak(block);
    }
}

extern "C" fn at_exit() {
    counting::report("json-command");
}

fn main() {
    if counting::wanted() {
        extern "C" {
            fn atexit(f: extern "C" fn()) -> i32;
        }
        // SAFETY: registers a plain function; libc runs it after Rust's
        // runtime cleanup.
        unsafe { atexit(at_exit) };
    }
    let doc = render_inventory();
    let totals = totals(&doc);
    let mut grand = 0u64;
    for t in &totals {
        grand += t.value_cents;
        println!("{}", serde_json::to_string(t).expect("serialisable"));
    }
    keep_forever();
    println!(
        "{{\"items\":{ITEMS},\"categories\":{},\"value_cents\":{grand},\"document_bytes\":{}}}",
        totals.len(),
        doc.len()
    );
}
