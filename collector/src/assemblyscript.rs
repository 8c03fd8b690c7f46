//! The `env` imports an AssemblyScript module has by default: `abort`
//! (every build that can fail an assertion or run out of bounds), `trace`
//! and `seed` (when the program calls `trace()` or `Math.random()`).
//! AssemblyScript's own loader defines them in JavaScript; heapscope
//! defines them for a module that imports them with AssemblyScript's
//! signatures, so a plain `asc` build runs without extra flags.

use crate::host::Host;
use wasmtime::{Caller, Extern, ExternType, FuncType, Linker, ValType};

/// The import module AssemblyScript uses.
const ENV: &str = "env";

/// Characters read from a guest string at most.
const MAX_CHARS: usize = 1024;

/// Define the AssemblyScript imports `module` has, each only when its type
/// is AssemblyScript's (another language's `env.abort` stays undefined, and
/// instantiating says so).
pub(crate) fn define(linker: &mut Linker<Host>, module: &wasmtime::Module) -> wasmtime::Result<()> {
    use ValType::{F64, I32};
    let has = |name: &str, params: &[ValType], results: &[ValType]| {
        module.imports().any(|i| {
            i.module() == ENV
                && i.name() == name
                && matches!(i.ty(), ExternType::Func(f) if same(&f, params, results))
        })
    };
    if has("abort", &[I32, I32, I32, I32], &[]) {
        linker.func_wrap(
            ENV,
            "abort",
            |mut c: Caller<'_, Host>,
             msg: i32,
             file: i32,
             line: i32,
             col: i32|
             -> wasmtime::Result<()> {
                let msg = read_string(&mut c, msg);
                let file = read_string(&mut c, file);
                Err(wasmtime::Error::msg(format!(
                    "abort: {msg} in {file}({line}:{col})",
                    line = line as u32,
                    col = col as u32
                )))
            },
        )?;
    }
    if has("trace", &[I32, I32, F64, F64, F64, F64, F64], &[]) {
        linker.func_wrap(
            ENV,
            "trace",
            |mut c: Caller<'_, Host>,
             msg: i32,
             n: i32,
             a0: f64,
             a1: f64,
             a2: f64,
             a3: f64,
             a4: f64| {
                let msg = read_string(&mut c, msg);
                let args = [a0, a1, a2, a3, a4];
                let n = (n.max(0) as usize).min(args.len());
                let args: Vec<String> = args[..n].iter().map(|a| a.to_string()).collect();
                eprintln!(
                    "trace: {msg}{}{}",
                    if n > 0 { " " } else { "" },
                    args.join(", ")
                );
            },
        )?;
    }
    if has("seed", &[], &[F64]) {
        linker.func_wrap(ENV, "seed", |_: Caller<'_, Host>| {
            // What AssemblyScript's loader passes: `Date.now()`.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_millis() as f64)
        })?;
    }
    Ok(())
}

fn same(f: &FuncType, params: &[ValType], results: &[ValType]) -> bool {
    let eq = |a: &ValType, b: &ValType| ValType::eq(a, b);
    f.params().len() == params.len()
        && f.results().len() == results.len()
        && f.params().zip(params).all(|(a, b)| eq(&a, b))
        && f.results().zip(results).all(|(a, b)| eq(&a, b))
}

/// An AssemblyScript string at `ptr` of memory 0: UTF-16LE, its byte
/// length in the object header's `rtSize` just before it. `null` for 0;
/// at most [`MAX_CHARS`] characters; `<unreadable>` when the guest's
/// pointer or length lies outside its memory.
fn read_string(c: &mut Caller<'_, Host>, ptr: i32) -> String {
    let ptr = ptr as u32 as usize;
    if ptr == 0 {
        return "null".into();
    }
    let Some(Extern::Memory(mem)) = c.get_export("memory") else {
        return "<unreadable>".into();
    };
    let data = mem.data(&*c);
    let Some(len) = ptr
        .checked_sub(4)
        .and_then(|at| data.get(at..ptr))
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    else {
        return "<unreadable>".into();
    };
    let len = len.min(MAX_CHARS * 2);
    let Some(bytes) = data.get(ptr..ptr.saturating_add(len)) else {
        return "<unreadable>".into();
    };
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    // Control characters would reach the terminal as they are.
    String::from_utf16_lossy(&units)
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}
