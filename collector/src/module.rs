//! The module a run executes: read (binary or text), instrumented in
//! memory unless it already is (or the run is `--plain`), its ABI version
//! checked, its site table and symboliser chosen, its memories and static
//! data laid out, and compiled.

use crate::config::{RunConfig, RunError};
use crate::recorder::{phase, Phase, Progress};
use crate::symbolize::Symbolizer;
use heapscope_instrument::symbols::Layout;
use heapscope_instrument::Report;
use heapscope_trace::abi::{self, CodeMap, SiteTable};
use heapscope_trace::format::MemoryInfo;
use std::path::Path;
use wasmtime::{Engine, Module};

/// A module ready to compile, with what the run needs to know of it.
pub(crate) struct Loaded {
    /// The module as the user gave it (text parsed to binary); shared, so
    /// what keeps it for the whole run (the snapshots' state) does not copy
    /// it.
    pub original: std::sync::Arc<Vec<u8>>,
    /// The module instrumented in memory, if it was (see [`Loaded::wasm`]).
    instrumented_wasm: Option<Vec<u8>>,
    /// What was hooked, when the module was instrumented in memory.
    pub instrumented: Option<Report>,
    /// Call-site ids to frames.
    pub sites: SiteTable,
    /// Symbolises sites the first time the run reaches them.
    pub symbolizer: Option<Symbolizer>,
    /// Where the instrumented module's code was in the original, for a
    /// trap's stack ([`abi::CODE_MAP_SECTION`]), encoded: decoded only when
    /// a trap needs it ([`Loaded::code_map`]); empty for a plain run, or a
    /// module instrumented by a heapscope that wrote none.
    pub code_map_bytes: Vec<u8>,
    /// The original's memories, in index order.
    pub memories: Vec<MemoryInfo>,
    /// Index of heapscope's shadow memory in the module that runs.
    pub shadow: Option<usize>,
    /// Whether the module that runs is instrumented.
    pub is_instrumented: bool,
    /// The compiled module's cache entry, when the run has a cache: what
    /// is computed from the module alone is kept beside it
    /// ([`crate::cache::Beside`]).
    pub cache_entry: Option<(crate::cache::Cache, crate::cache::EntryKey)>,
}

impl Loaded {
    /// What runs: the module instrumented in memory, or the original when
    /// it is instrumented already or the run is plain.
    pub fn wasm(&self) -> &[u8] {
        self.instrumented_wasm.as_deref().unwrap_or(&self.original)
    }
}

/// Read `cfg.module`, prepare it for the run and compile it for `engine`,
/// or take both from the cache when `cfg.cache` holds this module compiled
/// with these options.
pub(crate) fn prepare(
    cfg: &RunConfig,
    engine: &Engine,
    progress: Option<&Progress>,
) -> Result<(Loaded, Module, crate::cache::CacheUse), RunError> {
    use crate::cache::{Cache, CacheUse, Meta};
    let original = read(&cfg.module)?;
    tracing::info!("read `{}`: {} bytes", cfg.module.display(), original.len());
    let Some(cache) = cfg.cache.as_ref() else {
        phase(progress, Phase::Instrumenting);
        let loaded = load(cfg, original, None, None)?;
        phase(progress, Phase::Compiling);
        let module = compile(engine, &loaded, cfg)?;
        return Ok((loaded, module, CacheUse::Off));
    };
    let key = Cache::key(
        engine,
        &original,
        cfg.plain,
        &cfg.alloc_fns,
        cfg.glue.as_ref(),
        track_writes(cfg, &original),
    );
    if let Some((module, meta)) = cache.load(engine, &key) {
        if let Ok(sites) = SiteTable::decode(&meta.sites) {
            tracing::info!("compiled module from the cache: {}", cache.dir().display());
            let symbolizer = symbolizer(cfg, &original, meta.report.is_some(), Some((cache, &key)));
            let loaded = Loaded {
                memories: memory_infos(&original),
                original: std::sync::Arc::new(original),
                instrumented_wasm: None,
                instrumented: meta.report,
                sites,
                symbolizer,
                code_map_bytes: meta.code_map,
                shadow: meta.shadow,
                is_instrumented: meta.instrumented,
                cache_entry: Some((cache.clone(), key.clone())),
            };
            return Ok((loaded, module, CacheUse::Hit));
        }
    }
    phase(progress, Phase::Instrumenting);
    let loaded = load(cfg, original, None, Some((cache, &key)))?;
    phase(progress, Phase::Compiling);
    let module = compile(engine, &loaded, cfg)?;
    let meta = Meta {
        sites: loaded.sites.encode(),
        report: loaded.instrumented.clone(),
        shadow: loaded.shadow,
        instrumented: loaded.is_instrumented,
        code_map: loaded.code_map_bytes.clone(),
    };
    cache.store(&key, &module, &meta);
    Ok((loaded, module, CacheUse::Miss))
}

/// Read `cfg.module` and prepare it as [`prepare`] does, without compiling
/// it: for a run another host makes (the JavaScript collector's), which
/// needs the module's sites, symboliser and layout, and the bytes to run.
/// The module instrumented in memory is kept in `cfg.cache` (an
/// `instrument` entry, keyed by the module, `--alloc-fn` and what the glue
/// says), so a second run of it skips instrumenting.
pub(crate) fn load_only(cfg: &RunConfig) -> Result<Loaded, RunError> {
    load(cfg, read(&cfg.module)?, cfg.cache.as_ref(), None)
}

/// The key of the module instrumented in memory for a run another host
/// makes: `instrument`'s entries, with options of their own (`run`: no
/// DWARF copy) so that `heapscope instrument`'s output is never taken for
/// it, nor it for that.
fn instrumented_key(cfg: &RunConfig, original: &[u8]) -> crate::cache::EntryKey {
    crate::cache::Cache::instrument_key(
        original,
        &format!(
            "run skip_dwarf_copy {:?} {:?}{}",
            cfg.alloc_fns,
            cfg.glue,
            if track_writes(cfg, original) {
                " track_writes"
            } else {
                ""
            }
        ),
    )
}

/// Whether the run instruments write tracking (`heapscope_instrument::
/// dirty`): when it takes snapshots (`--snapshot-at`, `--snapshot-every`,
/// or the module asks for them), so each reads only what changed.
fn track_writes(cfg: &RunConfig, original: &[u8]) -> bool {
    !cfg.plain
        && (!cfg.snapshots.is_empty() || heapscope_instrument::dirty::imports_snapshot(original))
}

/// The symboliser of a run: none for a plain run; from the original's
/// DWARF when instrumenting in memory, else from the copy the instrumenter
/// made in the module. With the compiled module's cache entry
/// (`sites_cache`), the sites earlier runs symbolised are taken from
/// beside it, and the ones this run adds kept there.
fn symbolizer(
    cfg: &RunConfig,
    original: &[u8],
    instrumented_here: bool,
    sites_cache: Option<(&crate::cache::Cache, &crate::cache::EntryKey)>,
) -> Option<Symbolizer> {
    let dwarf = |layout: &Layout<'_>, prefix: &str| match sites_cache {
        Some((cache, key)) => Symbolizer::with_cached_sites(layout, prefix, cache, key),
        None => Symbolizer::new(layout, prefix),
    };
    if cfg.plain {
        None
    } else if instrumented_here {
        let layout = Layout::of(original);
        // Without DWARF, a source map beside the module (AssemblyScript's
        // `--sourceMap`).
        dwarf(&layout, "").or_else(|| Symbolizer::from_source_map(&cfg.module, original, &layout))
    } else {
        // Instrumented beforehand: the copy of the original's DWARF, or
        // the note of the original's source map.
        let layout = Layout::of(original);
        dwarf(&layout, abi::DWARF_SECTION_PREFIX)
            .or_else(|| Symbolizer::from_source_map_note(&cfg.module, &layout))
    }
}

/// Prepare `original` (`cfg.module`'s bytes) for the run; the module
/// instrumented in memory is taken from `cache`, or stored there, when
/// one is given.
fn load(
    cfg: &RunConfig,
    original: Vec<u8>,
    cache: Option<&crate::cache::Cache>,
    sites_cache: Option<(&crate::cache::Cache, &crate::cache::EntryKey)>,
) -> Result<Loaded, RunError> {
    let path = &cfg.module;
    let instrument_here = !cfg.plain && !heapscope_instrument::is_instrumented(&original);
    let cache = cache
        .filter(|_| instrument_here)
        .map(|c| (c, instrumented_key(cfg, &original)));
    let (wasm, instrumented) = if !instrument_here {
        (None, None)
    } else if let Some((wasm, report)) = cache.as_ref().and_then(|(c, k)| c.load_instrumented(k)) {
        tracing::info!(
            "instrumented module from the cache: {}",
            cache
                .as_ref()
                .map_or(Path::new(""), |(c, _)| c.dir())
                .display()
        );
        (Some(wasm), Some(report))
    } else {
        // wasmtime validates the module when it compiles it, and sites are
        // symbolised from the original's DWARF.
        let opts = heapscope_instrument::Options {
            alloc_fns: cfg.alloc_fns.clone(),
            glue: cfg.glue.clone(),
            skip_dwarf_copy: true,
            track_writes: track_writes(cfg, &original),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let out = heapscope_instrument::instrument(&original, &opts).map_err(|source| {
            RunError::Instrument {
                path: path.clone(),
                source,
            }
        })?;
        tracing::info!(
            "instrumented `{}` in {} ms: {} bytes to {} bytes, {} allocator functions hooked",
            path.display(),
            started.elapsed().as_millis(),
            original.len(),
            out.wasm.len(),
            out.report.allocators.len()
        );
        if let Some((c, k)) = &cache {
            c.store_instrumented(k, &out.wasm, &out.report);
        }
        (Some(out.wasm), Some(out.report))
    };
    let layout = Layout::of(wasm.as_deref().unwrap_or(&original));
    let sites = match layout.custom(abi::SITE_TABLE_SECTION) {
        Some(b) => SiteTable::decode(b).map_err(|source| RunError::Sites {
            path: path.clone(),
            source,
        })?,
        None => SiteTable::default(),
    };
    // Sites are symbolised the first time the run reaches them: from the
    // original's DWARF when instrumenting here, else from the copy the
    // instrumenter made.
    let symbolizer = symbolizer(cfg, &original, instrumented.is_some(), sites_cache);
    let code_map_bytes = layout
        .custom(abi::CODE_MAP_SECTION)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    drop(layout);
    let runs = wasm.as_deref().unwrap_or(&original);
    Ok(Loaded {
        memories: memory_infos(&original),
        shadow: shadow_memory_position(runs),
        is_instrumented: heapscope_instrument::is_instrumented(runs),
        original: std::sync::Arc::new(original),
        instrumented_wasm: wasm,
        instrumented,
        sites,
        symbolizer,
        code_map_bytes,
        cache_entry: sites_cache.map(|(c, k)| (c.clone(), k.clone())),
    })
}

impl Loaded {
    /// The code map, decoded (`None` when there is none, or it does not
    /// decode): only a trap needs it.
    pub fn code_map(&self) -> Option<CodeMap> {
        CodeMap::decode(&self.code_map_bytes)
    }
}

/// The file's bytes; the text format is parsed, binaries pass through,
/// anything else (a directory, a JSON file) is refused saying what it is.
fn read(path: &Path) -> Result<Vec<u8>, RunError> {
    if path.is_dir() {
        return Err(RunError::Setup {
            path: path.to_path_buf(),
            message: "it is a directory, not a WebAssembly module".into(),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| RunError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match heapscope_instrument::module_bytes(&bytes) {
        Ok(std::borrow::Cow::Borrowed(_)) => Ok(bytes),
        Ok(std::borrow::Cow::Owned(b)) => Ok(b),
        Err(message) => Err(RunError::Setup {
            path: path.to_path_buf(),
            message,
        }),
    }
}

/// Compile `loaded.wasm` for `engine`. An instrumented module that does
/// not compile while its original does is heapscope's fault: the error says
/// how to tell and what to do.
pub(crate) fn compile(
    engine: &Engine,
    loaded: &Loaded,
    cfg: &RunConfig,
) -> Result<Module, RunError> {
    let started = std::time::Instant::now();
    let module = Module::new(engine, loaded.wasm());
    if module.is_ok() {
        tracing::info!(
            "compiled `{}` ({} bytes) in {} ms",
            cfg.module.display(),
            loaded.wasm().len(),
            started.elapsed().as_millis()
        );
    }
    module.map_err(|e| {
        let mut message = format!("{e:#}");
        if !cfg.plain && heapscope_instrument::is_instrumented(loaded.wasm()) {
            message.push_str(
                "\nif the original module runs under `heapscope run --plain`, this is a heapscope bug: \
                 `heapscope instrument --validate` on the original checks the instrumented output; \
                 please report it with the original module",
            );
        }
        RunError::Setup {
            path: cfg.module.clone(),
            message,
        }
    })
}

/// The memories `wasm` declares or imports, in index order (heapscope's
/// own shadow memory left out).
pub fn memory_infos(wasm: &[u8]) -> Vec<MemoryInfo> {
    let mut out = Vec::new();
    let mut shadow = None;
    let conv = |m: wasmparser::MemoryType| MemoryInfo {
        initial_pages: m.initial,
        maximum_pages: m.maximum,
        memory64: m.memory64,
        page_size_log2: m.page_size_log2.unwrap_or(16) as u8,
    };
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::ImportSection(s)) => {
                for imp in s.into_imports().flatten() {
                    if let wasmparser::TypeRef::Memory(m) = imp.ty {
                        out.push(conv(m));
                    }
                }
            }
            Ok(wasmparser::Payload::MemorySection(s)) => {
                out.extend(s.into_iter().flatten().map(conv))
            }
            Ok(wasmparser::Payload::ExportSection(s)) => {
                shadow = s
                    .into_iter()
                    .flatten()
                    .find(|e| {
                        e.kind == wasmparser::ExternalKind::Memory
                            && e.name == abi::SHADOW_MEMORY_EXPORT
                    })
                    .map(|e| e.index as usize);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if let Some(i) = shadow.filter(|&i| i < out.len()) {
        out.remove(i);
    }
    out
}

/// The position of heapscope's shadow memory among the memories `wasm`
/// defines itself (imported ones left out): the order wasmtime creates
/// them in when it instantiates the module. `None` when it has none.
pub(crate) fn shadow_memory_position(wasm: &[u8]) -> Option<usize> {
    let mut imported = 0;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::ImportSection(s)) => {
                imported += s
                    .into_imports()
                    .flatten()
                    .filter(|i| matches!(i.ty, wasmparser::TypeRef::Memory(_)))
                    .count();
            }
            Ok(wasmparser::Payload::ExportSection(s)) => {
                return s
                    .into_iter()
                    .flatten()
                    .find(|e| {
                        e.kind == wasmparser::ExternalKind::Memory
                            && e.name == abi::SHADOW_MEMORY_EXPORT
                    })
                    .and_then(|e| (e.index as usize).checked_sub(imported));
            }
            Ok(wasmparser::Payload::CodeSectionStart { .. }) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}

/// Where the module's active data segments end in memory 0: a lower bound
/// of the end of its static data (zero-initialised `.bss` may follow).
pub(crate) fn data_end(wasm: &[u8]) -> u64 {
    data_ends(wasm)
        .iter()
        .find(|(m, _)| *m == 0)
        .map_or(0, |(_, end)| *end)
}

/// Where the active data segments end in each memory that has one, as
/// `(memory, end)`.
pub(crate) fn data_ends(wasm: &[u8]) -> Vec<(u32, u64)> {
    let mut ends: Vec<(u32, u64)> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let Ok(wasmparser::Payload::DataSection(s)) = payload {
            for d in s.into_iter().flatten() {
                if let wasmparser::DataKind::Active {
                    memory_index,
                    offset_expr,
                } = d.kind
                {
                    let mut ops = offset_expr.get_operators_reader();
                    let offset = match ops.read() {
                        Ok(wasmparser::Operator::I32Const { value }) => value as u32 as u64,
                        Ok(wasmparser::Operator::I64Const { value }) => value as u64,
                        _ => continue,
                    };
                    let end = offset.saturating_add(d.data.len() as u64);
                    match ends.iter_mut().find(|(m, _)| *m == memory_index) {
                        Some((_, e)) => *e = (*e).max(end),
                        None => ends.push((memory_index, end)),
                    }
                }
            }
        }
    }
    ends
}

/// The values of the linker's `__data_end` and `__heap_base` globals, when
/// the module exports them or names them in its name section (wasm-ld
/// exports both for wasm32-unknown-unknown builds).
pub(crate) fn linker_globals(wasm: &[u8]) -> (Option<u64>, Option<u64>) {
    use wasmparser::{Name, Payload};
    let mut values: Vec<Option<u64>> = Vec::new();
    let mut named: Vec<(u32, String)> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::ImportSection(s)) => {
                for i in s.into_imports().flatten() {
                    // Imported globals come first in the index space, with
                    // no value known here.
                    if matches!(i.ty, wasmparser::TypeRef::Global(_)) {
                        values.push(None);
                    }
                }
            }
            Ok(Payload::GlobalSection(s)) => {
                for g in s.into_iter().flatten() {
                    let mut ops = g.init_expr.get_operators_reader();
                    values.push(match ops.read() {
                        Ok(wasmparser::Operator::I32Const { value }) => Some(value as u32 as u64),
                        Ok(wasmparser::Operator::I64Const { value }) => Some(value as u64),
                        _ => None,
                    });
                }
            }
            Ok(Payload::ExportSection(s)) => {
                for e in s.into_iter().flatten() {
                    if e.kind == wasmparser::ExternalKind::Global {
                        named.push((e.index, e.name.to_string()));
                    }
                }
            }
            Ok(Payload::CustomSection(c)) if c.name() == "name" => {
                let reader = wasmparser::NameSectionReader::new(wasmparser::BinaryReader::new(
                    c.data(),
                    c.data_offset(),
                ));
                for n in reader.into_iter().flatten() {
                    if let Name::Global(map) = n {
                        for g in map.into_iter().flatten() {
                            named.push((g.index, g.name.to_string()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let value = |name: &str| {
        named
            .iter()
            .find(|(_, n)| n == name)
            .and_then(|(i, _)| values.get(*i as usize).copied().flatten())
    };
    (value("__data_end"), value("__heap_base"))
}

/// Memory 0's layout, as wasm-ld makes it: static data from address 0 (or
/// above the stack when the stack comes first), the auxiliary stack below
/// `__stack_pointer`'s initial value, the heap from `__heap_base` (else from
/// the end of the data or stack, whichever is higher). A heap that starts
/// lower than its lowest block starts there.
pub(crate) fn layout(
    wasm: &[u8],
    sp_init: Option<u64>,
    lowest_block: Option<u64>,
) -> heapscope_trace::format::MemoryLayout {
    let (data_end_global, heap_base_global) = linker_globals(wasm);
    let data_end = data_end_global.unwrap_or_else(|| data_end(wasm));
    let (stack_lo, stack_hi) = match sp_init {
        // The stack comes first (Rust's default): it starts at 0.
        Some(sp) if sp <= data_end => (0, sp),
        // After the data (C's default): it fills up to its initial pointer.
        Some(sp) => (data_end, sp),
        None => (data_end, data_end),
    };
    let mut heap_base = heap_base_global.unwrap_or(data_end.max(stack_hi));
    if let Some(lo) = lowest_block {
        heap_base = heap_base.min(lo);
    }
    heapscope_trace::format::MemoryLayout {
        data_end,
        stack_lo,
        stack_hi,
        heap_base,
    }
}

/// The module's exported functions, for an error naming what it has.
pub(crate) fn exported_functions(module: &Module) -> String {
    let names: Vec<String> = module
        .exports()
        .filter(|e| e.ty().func().is_some())
        .map(|e| format!("`{}`", e.name()))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
