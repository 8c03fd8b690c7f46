//! The Extism host ABI: what a plugin built with the Extism PDK imports from
//! `extism:host/env`, so heapscope runs such plugins unmodified.
//!
//! Extism keeps the data it exchanges with a plugin (input, output, error,
//! config values, vars, log lines) in memory of its own, outside the
//! plugin's linear memory; the plugin addresses it by offsets and copies
//! bytes in and out 8 or 1 at a time. heapscope keeps that memory on the
//! host, in a [`Kernel`]: a byte arena with the blocks allocated in it.
//! As under Extism, every call starts with the arena reset (blocks from an
//! earlier call are gone) and the call's input in place; vars outlive calls.
//!
//! What differs from Extism: an HTTP request traps with an error saying
//! heapscope makes none (Extism with no allowed hosts fails the same call);
//! host functions of the embedding application (`extism:host/user`) cannot
//! be provided; the memory limit applies to the plugin's own linear memory.

use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use wasmtime::{Caller, Linker};

/// The import module of the Extism host ABI.
pub const ENV_MODULE: &str = "extism:host/env";
/// The import module of an embedding application's own host functions.
pub const USER_MODULE: &str = "extism:host/user";

/// Where the arena's first block starts: offset 0 means "none".
const BASE: u64 = 8;
/// Most bytes of Extism memory one call may hold (blocks are freed between
/// calls): a plugin asking for more fails that call instead of exhausting
/// the host.
pub const MAX_KERNEL_BYTES: u64 = 1 << 30;
/// Most bytes all vars may hold together, Extism's default
/// (`memory.max_var_bytes`).
pub const MAX_VAR_BYTES: usize = 1 << 20;

/// Extism's memory and per-plugin state, on the host.
#[derive(Debug, Default)]
pub struct Kernel {
    mem: Vec<u8>,
    /// Live blocks: start offset to length.
    blocks: FxHashMap<u64, u64>,
    input: Vec<u8>,
    output: Option<(u64, u64)>,
    error: Option<u64>,
    vars: BTreeMap<String, Vec<u8>>,
    config: BTreeMap<String, String>,
    /// `None`: logging off (the PDK then formats nothing).
    log_level: Option<LogLevel>,
}

/// Extism's log levels, in the PDK's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `log_trace`
    Trace = 0,
    /// `log_debug`
    Debug = 1,
    /// `log_info`
    Info = 2,
    /// `log_warn`
    Warn = 3,
    /// `log_error`
    Error = 4,
}

impl std::str::FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<LogLevel, String> {
        Ok(match s {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => {
                return Err(format!(
                    "`{s}` is not a log level: use trace, debug, info, warn or error"
                ))
            }
        })
    }
}

/// What one call of a plugin function came to, as Extism reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// It returned 0; its output (empty when it set none).
    Output(Vec<u8>),
    /// It set an error, or returned non-zero: Extism's error message.
    Error(String),
}

impl Kernel {
    /// A kernel with the plugin's config and a log level (`None`: off).
    pub fn new(config: BTreeMap<String, String>, log_level: Option<LogLevel>) -> Kernel {
        Kernel {
            mem: vec![0; BASE as usize],
            config,
            log_level,
            ..Kernel::default()
        }
    }

    /// Start a call: forget the previous call's blocks, output and error,
    /// and make `input` the input.
    pub fn begin(&mut self, input: Vec<u8>) {
        self.mem.truncate(BASE as usize);
        self.blocks.clear();
        self.output = None;
        self.error = None;
        self.input = input;
    }

    /// Bytes of output set by the last call, if it set any.
    pub fn output_len(&self) -> Option<u64> {
        self.output.map(|(_, len)| len)
    }

    /// What the call that just returned (with `rc`, `None` for a function
    /// with no result) came to.
    pub fn result(&self, rc: Option<i32>) -> CallResult {
        if let Some(e) = self.error.and_then(|o| self.block(o)) {
            if !e.is_empty() {
                return CallResult::Error(String::from_utf8_lossy(e).into_owned());
            }
        }
        match rc {
            Some(rc) if rc != 0 => CallResult::Error(format!("Returned non-zero exit code: {rc}")),
            _ => CallResult::Output(
                self.output
                    .and_then(|(o, len)| self.mem.get(o as usize..(o + len) as usize))
                    .unwrap_or_default()
                    .to_vec(),
            ),
        }
    }

    fn alloc(&mut self, len: u64) -> Result<u64, String> {
        if len == 0 {
            return Ok(0);
        }
        let start = (self.mem.len() as u64).next_multiple_of(8);
        let end = start
            .checked_add(len)
            .filter(|&e| e <= MAX_KERNEL_BYTES)
            .ok_or_else(|| {
                format!(
                    "extism: cannot allocate {len} bytes of Extism memory: a call may hold at most {MAX_KERNEL_BYTES} bytes ({} in use)",
                    self.mem.len()
                )
            })?;
        self.mem.resize(end as usize, 0);
        self.blocks.insert(start, len);
        Ok(start)
    }

    fn alloc_bytes(&mut self, bytes: &[u8]) -> Result<u64, String> {
        let o = self.alloc(bytes.len() as u64)?;
        if o != 0 {
            self.mem[o as usize..o as usize + bytes.len()].copy_from_slice(bytes);
        }
        Ok(o)
    }

    fn free(&mut self, offs: u64) {
        if let Some(len) = self.blocks.remove(&offs) {
            // The last block's space is reused at once.
            if offs + len == self.mem.len() as u64 {
                self.mem.truncate(offs as usize);
            }
        }
    }

    fn block(&self, offs: u64) -> Option<&[u8]> {
        let len = *self.blocks.get(&offs)?;
        self.mem.get(offs as usize..(offs + len) as usize)
    }

    fn block_str(&self, offs: u64, what: &str) -> Result<String, String> {
        let b = self.block(offs).ok_or_else(|| {
            format!("extism: {what} at offset {offs} is not an Extism memory block")
        })?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("extism: {what} is not UTF-8"))
    }

    fn bytes<const N: usize>(&self, offs: u64, what: &str) -> Result<[u8; N], String> {
        read_at(&self.mem, offs).ok_or_else(|| {
            format!(
                "extism: {what} at offset {offs} is outside Extism memory ({} bytes)",
                self.mem.len()
            )
        })
    }

    fn store<const N: usize>(&mut self, offs: u64, v: [u8; N]) -> Result<(), String> {
        let len = self.mem.len();
        usize::try_from(offs)
            .ok()
            .and_then(|o| self.mem.get_mut(o..o.checked_add(N)?))
            .map(|b| b.copy_from_slice(&v))
            .ok_or_else(|| {
                format!("extism: store at offset {offs} is outside Extism memory ({len} bytes)")
            })
    }

    fn input_bytes<const N: usize>(&self, offs: u64) -> Result<[u8; N], String> {
        read_at(&self.input, offs).ok_or_else(|| {
            format!(
                "extism: input read at offset {offs} is past its end ({} bytes)",
                self.input.len()
            )
        })
    }

    fn log(&self, level: LogLevel, offs: u64) -> Result<(), String> {
        if self.log_level.is_some_and(|l| level >= l) {
            let msg = self.block_str(offs, "log message")?;
            eprintln!("plugin {}: {msg}", format!("{level:?}").to_lowercase());
        }
        Ok(())
    }
}

/// `N` bytes of `bytes` at `offs`, if they are all there.
fn read_at<const N: usize>(bytes: &[u8], offs: u64) -> Option<[u8; N]> {
    let o = usize::try_from(offs).ok()?;
    bytes.get(o..o.checked_add(N)?)?.try_into().ok()
}

/// A host whose store holds a [`Kernel`].
pub trait HasKernel {
    /// The kernel; Extism imports trap when the run has none.
    fn kernel(&mut self) -> Option<&mut Kernel>;
}

fn trap(e: String) -> wasmtime::Error {
    wasmtime::Error::msg(e)
}

fn k<'a, T: HasKernel>(c: &'a mut Caller<'_, T>) -> wasmtime::Result<&'a mut Kernel> {
    c.data_mut().kernel().ok_or_else(|| {
        trap("the plugin imports Extism's host functions: run it with --extism FUNCTION".into())
    })
}

/// Define `extism:host/env` in `linker`.
pub fn define<T: HasKernel + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    define_memory(linker)?;
    define_config_and_vars(linker)?;
    define_http_and_log(linker)
}

/// Input, memory blocks, output and errors.
fn define_memory<T: HasKernel + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let m = ENV_MODULE;
    linker.func_wrap(m, "input_length", |mut c: Caller<'_, T>| {
        Ok(k(&mut c)?.input.len() as i64)
    })?;
    linker.func_wrap(m, "input_load_u8", |mut c: Caller<'_, T>, o: i64| {
        Ok(k(&mut c)?.input_bytes::<1>(o as u64).map_err(trap)?[0] as i32)
    })?;
    linker.func_wrap(m, "input_load_u64", |mut c: Caller<'_, T>, o: i64| {
        Ok(i64::from_le_bytes(
            k(&mut c)?.input_bytes::<8>(o as u64).map_err(trap)?,
        ))
    })?;
    for name in ["length", "length_unsafe"] {
        linker.func_wrap(m, name, |mut c: Caller<'_, T>, o: i64| {
            Ok(k(&mut c)?.blocks.get(&(o as u64)).copied().unwrap_or(0) as i64)
        })?;
    }
    linker.func_wrap(m, "alloc", |mut c: Caller<'_, T>, len: i64| {
        Ok(k(&mut c)?.alloc(len as u64).map_err(trap)? as i64)
    })?;
    linker.func_wrap(m, "free", |mut c: Caller<'_, T>, o: i64| {
        k(&mut c)?.free(o as u64);
        Ok(())
    })?;
    linker.func_wrap(m, "output_set", |mut c: Caller<'_, T>, o: i64, len: i64| {
        k(&mut c)?.output = Some((o as u64, len as u64));
        Ok(())
    })?;
    linker.func_wrap(m, "error_set", |mut c: Caller<'_, T>, o: i64| {
        k(&mut c)?.error = (o != 0).then_some(o as u64);
        Ok(())
    })?;
    linker.func_wrap(m, "load_u8", |mut c: Caller<'_, T>, o: i64| {
        Ok(k(&mut c)?.bytes::<1>(o as u64, "load").map_err(trap)?[0] as i32)
    })?;
    linker.func_wrap(m, "load_u64", |mut c: Caller<'_, T>, o: i64| {
        Ok(i64::from_le_bytes(
            k(&mut c)?.bytes::<8>(o as u64, "load").map_err(trap)?,
        ))
    })?;
    linker.func_wrap(m, "store_u8", |mut c: Caller<'_, T>, o: i64, v: i32| {
        k(&mut c)?.store(o as u64, [v as u8]).map_err(trap)
    })?;
    linker.func_wrap(m, "store_u64", |mut c: Caller<'_, T>, o: i64, v: i64| {
        k(&mut c)?.store(o as u64, v.to_le_bytes()).map_err(trap)
    })?;
    Ok(())
}

/// `config_get`, and vars (at most [`MAX_VAR_BYTES`] in all).
fn define_config_and_vars<T: HasKernel + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let m = ENV_MODULE;
    linker.func_wrap(m, "config_get", |mut c: Caller<'_, T>, o: i64| {
        let k = k(&mut c)?;
        let key = k.block_str(o as u64, "config key").map_err(trap)?;
        match k.config.get(&key).cloned() {
            Some(v) => Ok(k.alloc_bytes(v.as_bytes()).map_err(trap)? as i64),
            None => Ok(0),
        }
    })?;
    linker.func_wrap(m, "var_get", |mut c: Caller<'_, T>, o: i64| {
        let k = k(&mut c)?;
        let key = k.block_str(o as u64, "var name").map_err(trap)?;
        match k.vars.get(&key).cloned() {
            Some(v) => Ok(k.alloc_bytes(&v).map_err(trap)? as i64),
            None => Ok(0),
        }
    })?;
    linker.func_wrap(m, "var_set", |mut c: Caller<'_, T>, o: i64, v: i64| {
        let k = k(&mut c)?;
        let key = k.block_str(o as u64, "var name").map_err(trap)?;
        if v == 0 {
            k.vars.remove(&key);
        } else {
                        let value = k
                .block(v as u64)
                .ok_or_else(|| trap(format!("extism: var `{key}`'s value is not a block")))?
                .to_vec();
            let others: usize = k
                .vars
                .iter()
                .filter(|(name, _)| **name != key)
                .map(|(name, v)| name.len() + v.len())
                .sum();
            if others + key.len() + value.len() > MAX_VAR_BYTES {
                return Err(trap(format!(
                    "extism: setting var `{key}` ({} bytes) would take vars over their {MAX_VAR_BYTES}-byte limit",
                    value.len()
                )));
            }
            k.vars.insert(key, value);
        }
        Ok(())
    })?;
    Ok(())
}

/// HTTP (refused) and logging.
fn define_http_and_log<T: HasKernel + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let m = ENV_MODULE;
    linker.func_wrap(
        m,
        "http_request",
        |mut c: Caller<'_, T>, req: i64, _body: i64| {
            let k = k(&mut c)?;
            let url = k
                .block_str(req as u64, "HTTP request")
                .ok()
                .and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok())
                .and_then(|r| r.get("url").and_then(|u| u.as_str()).map(str::to_string))
                .unwrap_or_else(|| "an unreadable URL".into());
            Err::<i64, _>(trap(format!(
            "HTTP request to {url} is not allowed: heapscope's Extism host makes no HTTP requests"
        )))
        },
    )?;
    linker.func_wrap(m, "http_status_code", |_: Caller<'_, T>| Ok(0i32))?;
    linker.func_wrap(m, "http_headers", |_: Caller<'_, T>| Ok(0i64))?;
    for (name, level) in [
        ("log_trace", LogLevel::Trace),
        ("log_debug", LogLevel::Debug),
        ("log_info", LogLevel::Info),
        ("log_warn", LogLevel::Warn),
        ("log_error", LogLevel::Error),
    ] {
        linker.func_wrap(m, name, move |mut c: Caller<'_, T>, o: i64| {
            k(&mut c)?.log(level, o as u64).map_err(trap)
        })?;
    }
    linker.func_wrap(m, "get_log_level", |mut c: Caller<'_, T>| {
        Ok(k(&mut c)?.log_level.map_or(i32::MAX, |l| l as i32))
    })?;
    Ok(())
}

/// The messages of a JSON Lines file: one input per non-empty line (a
/// trailing `\r` is kept: it is part of the line's bytes).
pub fn read_messages(path: &std::path::Path) -> std::io::Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// The imports of `module` from Extism's user module (host functions of
/// the embedding application), which heapscope cannot provide.
pub fn user_imports(module: &wasmtime::Module) -> Vec<String> {
    module
        .imports()
        .filter(|i| i.module() == USER_MODULE)
        .map(|i| i.name().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reset_per_call_and_vars_are_not() {
        let mut k = Kernel::new(BTreeMap::new(), None);
        k.begin(b"hello".to_vec());
        let a = k.alloc_bytes(b"abc").unwrap();
        assert_eq!(a, BASE);
        assert_eq!(k.block(a), Some(&b"abc"[..]));
        k.vars.insert("n".into(), vec![1]);
        k.output = Some((a, 3));
        assert_eq!(k.result(Some(0)), CallResult::Output(b"abc".to_vec()));
        k.begin(Vec::new());
        assert_eq!(k.block(a), None);
        assert_eq!(k.result(None), CallResult::Output(Vec::new()));
        assert_eq!(k.vars["n"], [1]);
        assert_eq!(k.alloc(0).unwrap(), 0);
    }

    #[test]
    fn an_error_wins_over_output_and_rc_is_reported() {
        let mut k = Kernel::new(BTreeMap::new(), None);
        k.begin(Vec::new());
        assert_eq!(
            k.result(Some(3)),
            CallResult::Error("Returned non-zero exit code: 3".into())
        );
        let e = k.alloc_bytes(b"bad input").unwrap();
        k.error = Some(e);
        assert_eq!(k.result(Some(1)), CallResult::Error("bad input".into()));
    }

    #[test]
    fn out_of_bounds_reads_are_errors_not_panics() {
        let mut k = Kernel::new(BTreeMap::new(), None);
        k.begin(b"12345678".to_vec());
        assert!(k.input_bytes::<8>(0).is_ok());
        assert!(k.input_bytes::<8>(1).unwrap_err().contains("past its end"));
        assert!(k.bytes::<8>(u64::MAX, "load").is_err());
        assert!(k.store(1 << 40, [0u8; 8]).is_err());
        assert!(k.block_str(12345, "log message").is_err());
        let e = k.alloc(MAX_KERNEL_BYTES).unwrap_err();
        assert!(e.contains("at most 1073741824 bytes"), "{e}");
    }
}
