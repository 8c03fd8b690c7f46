//! write-adapter OUT: writes wasmtime 48's WASI preview-1 *command* adapter
//! (`wasi_snapshot_preview1.command.wasm`, from the crates.io package
//! wasi-preview1-component-adapter-provider) to OUT, for
//! `wasm-tools component new prog.wasm --adapt wasi_snapshot_preview1=OUT`.
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
};

fn main() {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: write-adapter OUT (writes the {WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME} command adapter)");
        std::process::exit(2);
    };
    if let Err(e) = std::fs::write(&out, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER) {
        eprintln!(
            "write-adapter: error: cannot write {}: {e}",
            out.to_string_lossy()
        );
        std::process::exit(1);
    }
}
