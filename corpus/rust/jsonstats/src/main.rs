//! jsonstats: builds a JSON document of 3,000 records with serde_json,
//! prints it back parsed, runs a regex over it and counts words in a map;
//! every line of its output is deterministic. The global allocator is the
//! one the cargo feature names (none: std's dlmalloc).

use std::collections::BTreeMap;

#[cfg(feature = "dlmalloc")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[cfg(feature = "wee_alloc")]
#[global_allocator]
static ALLOC: wee_alloc::WeeAlloc = wee_alloc::WeeAlloc::INIT;

#[cfg(feature = "talc")]
#[global_allocator]
static ALLOC: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };

#[cfg(feature = "lol_alloc")]
#[global_allocator]
static ALLOC: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

const WORDS: [&str; 8] = ["heap", "scope", "wasm", "block", "free", "alloc", "grow", "page"];

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3000);
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "id": i,
                "name": format!("{}-{}", WORDS[i % 8], i),
                "tags": (0..i % 5).map(|t| WORDS[(i + t) % 8]).collect::<Vec<_>>(),
                "score": (i * 7919) % 1000,
            })
        })
        .collect();
    let text = serde_json::to_string(&records).unwrap();
    let back: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let re = regex::Regex::new(r#""name":"([a-z]+)-(\d*7)""#).unwrap();
    let sevens = re.captures_iter(&text).count();
    let mut words: BTreeMap<String, usize> = BTreeMap::new();
    for r in &back {
        for t in r["tags"].as_array().unwrap() {
            *words.entry(t.as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    let top: u64 = back.iter().map(|r| r["score"].as_u64().unwrap()).max().unwrap();
    println!("{} records, {} bytes of JSON, {} names ending in 7, top score {}", back.len(), text.len(), sevens, top);
    println!("{words:?}");
}
