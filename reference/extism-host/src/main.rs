//! The real Extism host (the `extism` crate) calling one plugin function once
//! per message: heapscope's reference for what a plugin outputs and for what
//! an invocation costs.
//!
//! ```text
//! extism-reference PLUGIN.wasm --function NAME --messages FILE.jsonl
//!     [--outputs FILE.jsonl] [--config KEY=VALUE]... [--memory-max-pages N]
//!     [--bench]
//! ```
//!
//! `--outputs` writes one JSON object per message in the format
//! `heapscope run --extism ... --outputs` writes: `{"index":N,"output":TEXT}`,
//! `{"index":N,"output_hex":HEX}` when the output is not UTF-8, or
//! `{"index":N,"error":MESSAGE}`. `--bench` prints the calls' timing as one JSON
//! object on stdout: `{"calls":N,"total_ns":T,"median_ns":M,"instantiate_ns":I}`.

use extism::{Manifest, Plugin, Wasm};
use std::io::{BufRead, Write};
use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("extism-reference: error: {e}");
        std::process::exit(2);
    }
}

struct Args {
    plugin: String,
    function: String,
    messages: String,
    outputs: Option<String>,
    config: Vec<(String, String)>,
    memory_max_pages: Option<u32>,
    bench: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        plugin: String::new(),
        function: "process".into(),
        messages: String::new(),
        outputs: None,
        config: Vec::new(),
        memory_max_pages: None,
        bench: false,
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--function" => a.function = value()?,
            "--messages" => a.messages = value()?,
            "--outputs" => a.outputs = Some(value()?),
            "--config" => {
                let kv = value()?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or(format!("--config wants KEY=VALUE, not `{kv}`"))?;
                a.config.push((k.into(), v.into()));
            }
            "--memory-max-pages" => {
                a.memory_max_pages = Some(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--bench" => a.bench = true,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => a.plugin = s.into(),
        }
    }
    if a.plugin.is_empty() || a.messages.is_empty() {
        return Err("usage: extism-reference PLUGIN.wasm --function NAME --messages FILE.jsonl [--outputs FILE] [--config K=V] [--memory-max-pages N] [--bench]".into());
    }
    Ok(a)
}

fn run() -> Result<(), String> {
    let a = parse_args()?;
    let wasm = std::fs::read(&a.plugin).map_err(|e| format!("{}: {e}", a.plugin))?;
    let messages = std::fs::File::open(&a.messages).map_err(|e| format!("{}: {e}", a.messages))?;
    let messages: Vec<Vec<u8>> = std::io::BufReader::new(messages)
        .split(b'\n')
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", a.messages))?;
    let messages: Vec<Vec<u8>> = messages.into_iter().filter(|m| !m.is_empty()).collect();

    let mut manifest = Manifest::new([Wasm::data(wasm)]);
    for (k, v) in &a.config {
        manifest = manifest.with_config_key(k, v);
    }
    if let Some(p) = a.memory_max_pages {
        manifest = manifest.with_memory_max(p);
    }
    let started = Instant::now();
    let mut plugin = Plugin::new(&manifest, [], false).map_err(|e| format!("{e:#}"))?;
    let instantiate_ns = started.elapsed().as_nanos() as u64;

    let mut out = match &a.outputs {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| format!("{p}: {e}"))?,
        )),
        None => None,
    };
    let mut times = Vec::with_capacity(messages.len());
    let all = Instant::now();
    for (index, m) in messages.iter().enumerate() {
        let t = Instant::now();
        let r = plugin.call::<&[u8], Vec<u8>>(&a.function, m);
        times.push(t.elapsed().as_nanos() as u64);
        // Keys in a fixed order, whatever serde_json's features.
        let line = match r {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => format!(
                    "{{\"index\":{index},\"output\":{}}}",
                    serde_json::Value::String(s)
                ),
                Err(e) => format!(
                    "{{\"index\":{index},\"output_hex\":\"{}\"}}",
                    hex(e.as_bytes())
                ),
            },
            Err(e) => format!(
                "{{\"index\":{index},\"error\":{}}}",
                serde_json::Value::String(format!("{e}"))
            ),
        };
        if let Some(o) = &mut out {
            writeln!(o, "{line}").map_err(|e| format!("writing outputs: {e}"))?;
        }
    }
    let total_ns = all.elapsed().as_nanos() as u64;
    if let Some(o) = &mut out {
        o.flush().map_err(|e| format!("writing outputs: {e}"))?;
    }
    if a.bench {
        times.sort_unstable();
        let median_ns = times.get(times.len() / 2).copied().unwrap_or(0);
        println!(
            "{}",
            serde_json::json!({"calls": messages.len(), "total_ns": total_ns,
                "median_ns": median_ns, "instantiate_ns": instantiate_ns})
        );
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
