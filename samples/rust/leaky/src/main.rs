//! leaky (Rust, wasm32-wasip1): the leak patterns Reflow's memory guide
//! names, each in a function of its own so heapscope's report can name it.
//!
//! Expected numbers (checked by the test suite, tests/samples.rs):
//!
//! * `leak_config`: `Box::leak` of a 4,321-byte boxed slice: 1 block,
//!   4,321 bytes, never freed.
//! * `Cache::insert`: an unbounded cache in a `static` that only grows: each
//!   of the 200 requests leaves a 96-byte value behind (200 blocks,
//!   19,200 bytes), plus the map's own table.
//! * `make_cycle`: two `Rc<Node>` that point at each other: each node is one
//!   `RcBox` block plus a 555-byte payload, none freed.
//! * Everything else (the `Vec`, `String` and `HashMap` work in `churn`) is
//!   freed.
//!
//! With Rust 1.95's std (its HashMap growth and `Rc` layout), that is 274
//! allocations, 206 blocks and 29,047 bytes live at exit: 200 x 96 cache
//! values, the cache's 4,360-byte table, the 4,321-byte leaked config, and
//! two 28-byte `RcBox<Node>` blocks with their two 555-byte payloads.
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Mutex;

/// A cache that is never evicted: the "growing collection" leak.
struct Cache {
    map: HashMap<u32, Vec<u8>>,
}

impl Cache {
    #[inline(never)]
    fn insert(&mut self, key: u32) -> usize {
        let value = vec![key as u8; 96];
        self.map.insert(key, value);
        self.map.len()
    }
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

#[inline(never)]
fn handle_request(id: u32) -> usize {
    let mut guard = CACHE.lock().unwrap();
    let cache = guard.get_or_insert_with(|| Cache { map: HashMap::new() });
    cache.insert(id)
}

/// Configuration leaked on purpose to get a `'static` slice.
#[inline(never)]
fn leak_config() -> &'static [u8] {
    Box::leak(vec![7u8; 4321].into_boxed_slice())
}

struct Node {
    other: RefCell<Option<Rc<Node>>>,
    payload: Vec<u8>,
}

/// Two nodes that own each other: neither count ever reaches zero.
#[inline(never)]
fn make_cycle() -> usize {
    let a = Rc::new(Node { other: RefCell::new(None), payload: vec![1; 555] });
    let b = Rc::new(Node { other: RefCell::new(Some(a.clone())), payload: vec![2; 555] });
    *a.other.borrow_mut() = Some(b.clone());
    let linked = usize::from(b.other.borrow().is_some());
    a.payload.len() + b.payload.len() + linked
}

/// Ordinary work whose allocations are all freed.
#[inline(never)]
fn churn() -> usize {
    let mut words: Vec<String> = Vec::new();
    for i in 0..50 {
        words.push(format!("word-{i}"));
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in &words {
        *counts.entry(w.as_str()).or_default() += w.len();
    }
    let joined = words.join(",");
    counts.values().sum::<usize>() + joined.len()
}

fn main() {
    let total = churn();
    let config = leak_config();
    let mut cached = 0;
    // Keys from 1: `vec![0; n]` would take the zeroed-allocation path.
    for id in 1..=200 {
        cached = handle_request(id);
    }
    let cycle = make_cycle();
    println!("leaky (rust): churn={total} config={} cached={cached} cycle={cycle}", config.len());
}
