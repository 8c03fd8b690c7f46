//! An actor as Reflow runs them: an Extism plugin whose `process` export takes
//! one JSON message and returns a JSON reply, called again and again in one
//! instance.
//!
//! Every message is remembered in a cache keyed by its id (to answer
//! "seen before?"). The default build never evicts: the seed's "growing
//! collections" leak. **Per message it keeps exactly 2,056 bytes live in two
//! blocks**: the key, a copy of the 8-byte id (`m0000001`), and the rendered
//! record of `RECORD_BYTES` = 2,048 bytes, both allocated in `cache_insert`.
//! The map itself reserves room for 8,192 entries on the first message, so it
//! does not grow with them (a map that doubles would add a step to the curve,
//! not a slope). Over 5,000 messages live heap therefore grows by 2,056 bytes
//! per invocation; heapscope's growth fit should say so.
//!
//! Built with `--features bounded`, the fixed twin keeps at most `CACHE_CAP`
//! entries and evicts the oldest: once it holds 256, live heap stops growing
//! (its map has room for 512, so evictions never make it grow either).
//!
//! Messages (from `gen-messages.sh`): `{"id":"m0000001","user":"u17",
//! "text":"..."}`. Reply: `{"id","user","words","checksum","seen","cached",
//! "greeting"}`. A message that is not such JSON gets a plugin error.

use extism_pdk::*;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;

/// Bytes of the record kept per message.
const RECORD_BYTES: usize = 2048;
/// Entries the unbounded cache reserves room for up front.
#[cfg(not(feature = "bounded"))]
const CACHE_RESERVE: usize = 8192;
/// Entries the bounded cache keeps.
#[cfg(feature = "bounded")]
const CACHE_CAP: usize = 256;

#[derive(Deserialize)]
struct Message {
    id: String,
    user: String,
    text: String,
}

#[derive(Serialize)]
struct Reply {
    id: String,
    user: String,
    words: usize,
    checksum: u32,
    /// Messages this instance has processed, this one included (kept in an
    /// Extism var).
    seen: i64,
    /// Entries in the cache after this message.
    cached: usize,
    /// The `greeting` config value, or "hello".
    greeting: String,
}

struct Cache {
    entries: HashMap<String, Box<[u8]>>,
    #[cfg(feature = "bounded")]
    order: std::collections::VecDeque<String>,
}

thread_local! {
    static CACHE: RefCell<Option<Cache>> = const { RefCell::new(None) };
}

/// FNV-1a over the text: the "work" of the actor.
fn checksum(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// The record kept for a message: its text, repeated to fill the record.
#[inline(never)]
fn render_record(msg: &Message) -> Box<[u8]> {
    let mut record = vec![b' '; RECORD_BYTES];
    let text = msg.text.as_bytes();
    if !text.is_empty() {
        for (i, b) in record.iter_mut().enumerate() {
            *b = text[i % text.len()];
        }
    }
    record.into_boxed_slice()
}

/// Remember `msg`; returns how many entries the cache holds.
#[inline(never)]
fn cache_insert(cache: &mut Cache, msg: &Message) -> usize {
    let key = msg.id.clone();
    let record = render_record(msg);
    #[cfg(feature = "bounded")]
    {
        if !cache.entries.contains_key(&key) {
            if cache.order.len() >= CACHE_CAP {
                if let Some(oldest) = cache.order.pop_front() {
                    cache.entries.remove(&oldest);
                }
            }
            cache.order.push_back(key.clone());
        }
    }
    cache.entries.insert(key, record);
    cache.entries.len()
}

fn new_cache() -> Cache {
    #[cfg(not(feature = "bounded"))]
    {
        Cache {
            entries: HashMap::with_capacity(CACHE_RESERVE),
        }
    }
    #[cfg(feature = "bounded")]
    {
        // Room for twice the entries: with evictions leaving tombstones, a
        // map at most half full rehashes in place instead of growing.
        Cache {
            entries: HashMap::with_capacity(2 * CACHE_CAP),
            order: std::collections::VecDeque::with_capacity(CACHE_CAP + 1),
        }
    }
}

#[plugin_fn]
pub fn process(input: Vec<u8>) -> FnResult<Json<Reply>> {
    let msg: Message = serde_json::from_slice(&input)
        .map_err(|e| Error::msg(format!("not a message: {e}")))?;
    let seen = var::get::<i64>("seen")?.unwrap_or(0) + 1;
    var::set("seen", seen)?;
    let greeting = config::get("greeting")?.unwrap_or_else(|| "hello".to_string());
    let cached = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        cache_insert(c.get_or_insert_with(new_cache), &msg)
    });
    info!("processed {}", msg.id);
    Ok(Json(Reply {
        words: msg.text.split_whitespace().count(),
        checksum: checksum(&msg.text),
        id: msg.id,
        user: msg.user,
        seen,
        cached,
        greeting,
    }))
}
