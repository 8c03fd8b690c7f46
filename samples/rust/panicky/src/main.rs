//! panicky (Rust, wasm32-wasip1): a program that panics in its own code
//! after allocating, for the README's trap example: the panic's stack
//! starts at `parse_limit`, the user's function that called `expect`, not in
//! the panic machinery above it.
//!
//! Expected (tests/docs_examples.rs via the README): exit 134 (a trap, as
//! `wasmtime run` gives), the first frame `panicky::parse_limit
//! (samples/rust/panicky/src/main.rs:13)`.

#[inline(never)]
fn parse_limit(text: &str) -> u32 {
    let trimmed = text.trim().to_string();
    trimmed.parse().expect("the limit must be a number")
}

#[inline(never)]
fn load_config(lines: &[&str]) -> Vec<u32> {
    lines.iter().map(|l| parse_limit(l)).collect()
}

fn main() {
    let limits = load_config(&["16", "32", "sixty-four"]);
    println!("limits: {limits:?}");
}
