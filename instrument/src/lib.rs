//! # heapscope-instrument: the rewriting stage
//!
//! Consumes a WebAssembly module; produces the same module instrumented per
//! [`heapscope_trace::abi`]: its allocator functions wrapped so that they
//! report every allocation, free and reallocation, every `memory.grow`
//! reporting growth, a shadow call stack of call-site ids kept by the
//! functions that can reach either, and a site table that maps those ids to
//! source frames. The module computes exactly what it computed before; only
//! the hooks are new.
//!
//! ```no_run
//! let wasm = std::fs::read("app.wasm").unwrap();
//! let out = heapscope_instrument::instrument(&wasm, &Default::default()).unwrap();
//! std::fs::write("app.instrumented.wasm", &out.wasm).unwrap();
//! ```
#![deny(missing_docs)]

mod codemap;
pub mod component;
pub mod dirty;
pub mod discover;
mod exported;
pub mod glue;
mod infra;
mod inlined;
mod plan;
mod rewrite;
mod rust_global;
mod shapes;
pub mod symbols;
mod wrap;

pub use component::{instrument_component, InstrumentedComponent};
pub use discover::{AllocOverride, Allocator, FoundBy, FuncRef};
use heapscope_trace::abi::{self, AllocFn};

/// What to instrument and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Allocator functions named by the user (`--alloc-fn ROLE=NAME|INDEX`);
    /// they take precedence over discovery.
    pub alloc_fns: Vec<AllocOverride>,
    /// What the app's JavaScript glue says about the module's exports
    /// (`--glue FILE`, or the glue found beside the module): the roles of
    /// exports no name tells, and a renamed `emscripten_resize_heap`
    /// import. `alloc_fns` win over it.
    pub glue: Option<glue::Glue>,
    /// Validate the output with wasmparser before returning it: a check
    /// against heapscope bugs, about a tenth of the time on large modules.
    /// Off by default because the output is validated anyway when it is
    /// compiled (`heapscope run`, any wasmtime); `heapscope instrument
    /// --validate` turns it on.
    pub validate: bool,
    /// Do not copy the original's DWARF into the output, for callers that
    /// symbolise sites from the original module themselves (`heapscope run`
    /// instrumenting in memory).
    pub skip_dwarf_copy: bool,
    /// Mark every page of memory 0 the module writes, for snapshots that
    /// rescan only what changed ([`dirty`]).
    pub track_writes: bool,
    /// Instrument the module for a WebAssembly component (WASI 0.2) rather
    /// than for a core host: the hooks, memories and header page of
    /// [`heapscope_trace::component_abi`]. `None` (the default): the core
    /// ABI of [`heapscope_trace::abi`].
    pub component: Option<ComponentMode>,
}

/// How a core module inside a component is instrumented (see
/// [`heapscope_trace::component_abi`]): its hooks are imported from
/// `heapscope` with the instance id first, its defined memories and the
/// shadow memory from `heapscope:memory`, and what the host reads is kept
/// in the shadow memory's header page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentMode {
    /// The core module's depth-first index in its component, passed to
    /// the host at registration.
    pub module_id: u32,
}

/// An instrumented module and what was done to it.
#[derive(Debug, Clone)]
pub struct Instrumented {
    /// The instrumented module's bytes.
    pub wasm: Vec<u8>,
    /// What was hooked.
    pub report: Report,
}

/// One hooked allocator function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HookedAllocator {
    /// Its role.
    pub role: AllocFn,
    /// Its name (demangled), or `func[N]`.
    pub function: String,
    /// Its index in the original module.
    pub index: u32,
    /// How it was found.
    pub found_by: FoundBy,
}

/// What `instrument` did, for people (`heapscope instrument` prints it as a
/// table) and tools (`--report-json`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The hooked allocator functions.
    pub allocators: Vec<HookedAllocator>,
    /// `memory.grow` instructions hooked.
    pub grow_sites: usize,
    /// Call sites that push onto the shadow stack.
    pub call_sites: usize,
    /// Functions that can reach an allocator or `memory.grow` and were
    /// changed to keep the shadow stack.
    pub instrumented_functions: usize,
    /// Functions in the module.
    pub total_functions: usize,
    /// Whether the module has a name section (function names).
    pub has_names: bool,
    /// Whether the module has DWARF (file:line in stacks).
    pub has_dwarf: bool,
    /// What the numbers may miss: candidates passed over, and why; no
    /// allocator found.
    pub warnings: Vec<String>,
    /// How allocators were found where no name says (the roles the JS glue
    /// gives, an allocator recognised by the shape of its code): what was
    /// done, not what may be missed.
    #[serde(default)]
    pub notes: Vec<String>,
    /// What to change in the build for better stacks: debug info for
    /// file:line, in the words of the module's language. Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// The allocator families recognised from the module's function names
    /// (`dlmalloc (Rust)`, `talc`, `TLSF (AssemblyScript)`, `emmalloc`, ...).
    pub families: Vec<String>,
    /// Functions not hooked whose names look like an allocator's
    /// (demangled; at most 8): where to look with `--alloc-fn` when a run
    /// records no allocation.
    #[serde(default)]
    pub look_alikes: Vec<String>,
}

/// Why a module could not be instrumented.
#[derive(Debug, thiserror::Error)]
pub enum InstrumentError {
    /// The input is not a valid module (or uses a feature walrus cannot read).
    #[error("invalid WebAssembly: {0}")]
    Invalid(String),
    /// The input is a component, not a core module.
    #[error("the input is {}", COMPONENT)]
    Component,
    /// The module already carries heapscope's site table.
    #[error("the module is already instrumented by heapscope (it has a `{}` section); run it as it is instead of instrumenting it again", abi::SITE_TABLE_SECTION)]
    AlreadyInstrumented,
    /// The module is valid but uses a feature the rewriter cannot handle.
    #[error("the module uses a WebAssembly feature heapscope cannot rewrite yet: {0}")]
    Unsupported(String),
    /// `--alloc-fn` could not be honoured.
    #[error("{0}")]
    AllocFn(String),
    /// The module has no linear memory.
    #[error("the module has no linear memory, so it has no heap to profile")]
    NoMemory,
    /// The module uses a name the instrumented module adds.
    #[error("the module exports `{0}`, a name heapscope reserves for what it adds (`{prefix}*`); rename that export to instrument it", prefix = abi::IMPORT_MODULE.to_string() + ":")]
    ReservedName(String),
    /// The module cannot be instrumented for a component (it can still run
    /// uninstrumented there).
    #[error("heapscope cannot profile this module inside a component: {0}")]
    NotInComponent(String),
    /// A bug: the rewritten module does not validate.
    #[error("internal error: the instrumented module does not validate ({0}); please report this with the input module")]
    Internal(String),
}

/// A module file's bytes as a binary: the text format is parsed, binaries
/// pass through, anything else is refused with a message that says what
/// the file looks like instead (the message reads after "cannot run FILE: ").
pub fn module_bytes(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    if bytes.starts_with(b"\0asm") {
        if is_component(bytes) {
            return Err(format!("it is {COMPONENT}"));
        }
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let looks_like_text = std::str::from_utf8(bytes).is_ok_and(|t| {
        let mut t = t.trim_start();
        // Line comments before the first form.
        while let Some(rest) = t.strip_prefix(";;") {
            t = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        }
        t.starts_with('(')
    });
    if !looks_like_text {
        let start: String = String::from_utf8_lossy(&bytes[..bytes.len().min(16)])
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect();
        return Err(if bytes.is_empty() {
            "it is empty, not a WebAssembly module".to_string()
        } else {
            format!(
                "it is not a WebAssembly module: a binary module starts with the bytes `\\0asm` and the text format with `(`; this file starts with `{start}`"
            )
        });
    }
    match wat::parse_bytes(bytes) {
        Ok(b) if is_component(&b) => Err(format!("it is the text of {COMPONENT}")),
        Ok(b) => Ok(b),
        Err(e) => Err(format!("it is WebAssembly text that does not parse: {e:#}")),
    }
}

/// What a component is to heapscope, after "it is".
const COMPONENT: &str =
    "a WebAssembly component (WASI 0.2); heapscope profiles core modules only for now";

/// Whether `wasm`'s header is a component's: after the magic, a version
/// and the layer 1 (a core module's layer is 0: `01 00 00 00`; a
/// component's header is `0d 00 01 00`).
pub fn is_component(wasm: &[u8]) -> bool {
    wasm.starts_with(b"\0asm") && wasm.get(6..8) == Some(&[1, 0])
}

/// Whether `wasm` carries heapscope's site table (is already instrumented).
pub fn is_instrumented(wasm: &[u8]) -> bool {
    site_table_bytes(wasm).is_some()
}

/// The raw site table of an instrumented module, if it has one.
pub fn site_table_bytes(wasm: &[u8]) -> Option<&[u8]> {
    symbols::Layout::of(wasm).custom(abi::SITE_TABLE_SECTION)
}

/// Instrument `wasm`.
pub fn instrument(wasm: &[u8], opts: &Options) -> Result<Instrumented, InstrumentError> {
    if !wasm.starts_with(b"\0asm") {
        return Err(InstrumentError::Invalid(
            "not a WebAssembly module: it does not start with the `\\0asm` magic".into(),
        ));
    }
    if is_component(wasm) {
        return Err(InstrumentError::Component);
    }
    if wasm.get(4..8) != Some(&[1, 0, 0, 0]) {
        return Err(InstrumentError::Invalid(
            "not a core WebAssembly module of version 1 (its header's version bytes are not `01 00 00 00`)"
                .into(),
        ));
    }
    if is_instrumented(wasm) {
        return Err(InstrumentError::AlreadyInstrumented);
    }
    // A module instrumented for a component gets no export of heapscope's
    // (and a component's exports are often named `heapscope:...#f` by
    // their WIT package, which is no clash).
    if let Some(name) = reserved_export(wasm).filter(|_| opts.component.is_none()) {
        return Err(InstrumentError::ReservedName(name));
    }
    // walrus asserts on some malformed input; turn any panic into an error
    // instead of taking the caller down with it.
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(|| rewrite::run(wasm, opts));
    std::panic::set_hook(prev);
    let out = match r {
        Ok(r) => r?,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            return Err(InstrumentError::Invalid(format!(
                "the module could not be processed: {msg}"
            )));
        }
    };
    if opts.validate {
        validate(&out.wasm).map_err(|e| InstrumentError::Internal(e.to_string()))?;
    }
    let mut out = out;
    if has_gc_types(wasm) {
        out.report.warnings.push(
            "the module also has WasmGC types: objects it makes with `struct.new` and `array.new` live in the engine's \
             garbage-collected heap, not in linear memory, and are not in this profile"
                .into(),
        );
    }
    Ok(out)
}

/// Whether `wasm` declares a WasmGC struct or array type.
fn has_gc_types(wasm: &[u8]) -> bool {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::TypeSection(s)) => {
                return s.into_iter().flatten().any(|group| {
                    group.types().any(|t| {
                        matches!(
                            t.composite_type.inner,
                            wasmparser::CompositeInnerType::Struct(_)
                                | wasmparser::CompositeInnerType::Array(_)
                        )
                    })
                });
            }
            Ok(wasmparser::Payload::CodeSectionStart { .. }) | Err(_) => return false,
            Ok(_) => {}
        }
    }
    false
}

/// An export of `wasm` in the namespace the instrumenter adds exports to
/// (`heapscope:shadow`, `heapscope:global:0`, ...): the rewrite would emit
/// two exports of one name, an invalid module.
fn reserved_export(wasm: &[u8]) -> Option<String> {
    let prefix = format!("{}:", abi::IMPORT_MODULE);
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::ExportSection(s)) => {
                return s
                    .into_iter()
                    .flatten()
                    .find(|e| e.name.starts_with(&prefix))
                    .map(|e| e.name.to_string());
            }
            Ok(wasmparser::Payload::CodeSectionStart { .. }) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}

/// Validate `wasm` with every feature wasmparser knows, the function bodies
/// split across the machine's cores (what `Validator::validate_all` does on
/// one).
fn validate(wasm: &[u8]) -> Result<(), wasmparser::BinaryReaderError> {
    use wasmparser::{FuncValidatorAllocations, ValidPayload};
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    let mut funcs = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let ValidPayload::Func(f, body) = validator.payload(&payload?)? {
            funcs.push((f, body));
        }
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunk = funcs.len().div_ceil(threads).max(1);
    let check = |part: Vec<_>| -> Result<(), wasmparser::BinaryReaderError> {
        let mut allocs = FuncValidatorAllocations::default();
        for (f, body) in part {
            let mut v = wasmparser::FuncToValidate::into_validator(f, allocs);
            v.validate(&body)?;
            allocs = v.into_allocations();
        }
        Ok(())
    };
    let mut parts: Vec<Vec<_>> = Vec::new();
    let mut funcs = funcs.into_iter().peekable();
    while funcs.peek().is_some() {
        parts.push(funcs.by_ref().take(chunk).collect());
    }
    let first = if parts.is_empty() {
        Vec::new()
    } else {
        parts.remove(0)
    };
    std::thread::scope(|s| {
        let others: Vec<_> = parts.into_iter().map(|p| s.spawn(|| check(p))).collect();
        let mut result = check(first);
        for h in others {
            let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            result = result.and(r);
        }
        result
    })
}
