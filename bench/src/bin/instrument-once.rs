//! Instrument a module once, or parse and emit it with walrus unchanged:
//! the two sides of the `instrument` benchmark row, one process each, for
//! instruction counts under `valgrind --tool=callgrind`.
//!
//! ```text
//! instrument-once heapscope|walrus MODULE.wasm
//! ```

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [what, path] = args.as_slice() else {
        anyhow::bail!("usage: instrument-once heapscope|walrus MODULE.wasm");
    };
    let wasm = std::fs::read(path)?;
    let bytes = match what.as_str() {
        "heapscope" => heapscope_instrument::instrument(&wasm, &Default::default())?.wasm,
        "walrus" => walrus::Module::from_buffer(&wasm)?.emit_wasm(),
        other => anyhow::bail!("`{other}`: say heapscope or walrus"),
    };
    println!("{} bytes", bytes.len());
    Ok(())
}
