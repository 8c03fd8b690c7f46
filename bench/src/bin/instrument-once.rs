//! Instrument a module once, or parse and emit it with walrus unchanged:
//! the two sides of the `instrument` benchmark row, one process each, for
//! instruction counts under `valgrind --tool=callgrind`.
//!
//! ```text
//! instrument-once heapscope|walrus MODULE.wasm [OUT.wasm]
//! ```
//!
//! With `OUT.wasm` the result is written there, as `heapscope instrument`
//! writes its output: the walrus side of the benchmark's command row.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (what, path, out) = match args.as_slice() {
        [what, path] => (what, path, None),
        [what, path, out] => (what, path, Some(out)),
        _ => anyhow::bail!("usage: instrument-once heapscope|walrus MODULE.wasm [OUT.wasm]"),
    };
    let wasm = std::fs::read(path)?;
    let bytes = match what.as_str() {
        "heapscope" => heapscope_instrument::instrument(&wasm, &Default::default())?.wasm,
        "walrus" => walrus::Module::from_buffer(&wasm)?.emit_wasm(),
        other => anyhow::bail!("`{other}`: say heapscope or walrus"),
    };
    if let Some(out) = out {
        std::fs::write(out, &bytes)?;
    }
    println!("{} bytes", bytes.len());
    Ok(())
}
