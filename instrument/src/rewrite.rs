//! The rewrite, as the pipeline it is: parse, plan ([`crate::plan`]), add
//! the infrastructure ([`crate::infra`]), rewrite every planned function
//! (shadow-stack pushes before its calls, `memory.grow` through its
//! helper), wrap the allocators ([`crate::wrap`]), write the site table and
//! emit.

use crate::discover::Allocator;
use crate::infra::{self, Infra, EMSCRIPTEN_RESIZE_HEAP};
use crate::plan::{self, is_tail_call, Plan, Reach};
use crate::symbols::{self, Layout};
use crate::{HookedAllocator, InstrumentError, Instrumented, Options, Report};
use heapscope_trace::abi::AllocFn;
use heapscope_trace::abi::{self, Site, SiteTable};
use heapscope_trace::component_abi as cabi;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::{Arc, Mutex};
use walrus::ir::{self, BinaryOp, Instr, InstrLocId, MemArg, StoreKind, Value};
use walrus::{FunctionId, GlobalId, MemoryId, Module, ModuleConfig, RawCustomSection, ValType};

pub(crate) fn run(wasm: &[u8], opts: &Options) -> Result<Instrumented, InstrumentError> {
    let layout = Layout::of(wasm);
    let (mut module, index_of, locals) = parse(wasm, crate::inlined::may_have(&layout))?;
    let memories: Vec<MemoryId> = module.memories.iter().map(|m| m.id()).collect();
    let Some(&mem0) = memories.first() else {
        return Err(InstrumentError::NoMemory);
    };
    let ptr_ty = if module.memories.get(mem0).memory64 {
        ValType::I64
    } else {
        ValType::I32
    };
    if opts.component.is_some() {
        check_component_mode(&module)?;
    }
    // The module's own globals, by index, before heapscope adds any.
    let original_globals: Vec<(GlobalId, ValType, bool)> = module
        .globals
        .iter()
        .map(|g| (g.id(), g.ty, g.mutable))
        .collect();
    let has_names = module.funcs.iter().any(|f| f.name.is_some());
    let mut warnings = Vec::new();
    let mut allocators = plan::allocators(&module, opts, &index_of, ptr_ty, &mut warnings)?;
    hook_inlined_frees(
        &mut module,
        &layout,
        &locals,
        ptr_ty,
        &index_of,
        &mut allocators,
        &mut warnings,
    );
    let look_alikes = crate::discover::look_alikes(&module, &allocators);
    let families = crate::discover::families(&module);

    // Plan: the call graph, what reaches a hook.
    let (mut calls, address_taken) = plan::call_graph(&module);
    // Emscripten grows memory through an import, never `memory.grow`.
    // Minified glue renames it; the glue says to what (`l:a=>{...grow...}`).
    let renamed = opts.glue.as_ref().and_then(|g| g.resize_heap.as_deref());
    let resize_heap = module.imports.iter().find_map(|i| match i.kind {
        walrus::ImportKind::Function(f)
            if i.name == EMSCRIPTEN_RESIZE_HEAP
                || (Some(i.name.as_str()) == renamed && {
                    // `(size) -> ok`, as emscripten's is.
                    let ty = module.types.get(module.funcs.get(f).ty());
                    ty.params().len() == 1 && ty.results() == [ValType::I32]
                }) =>
        {
            Some(f)
        }
        _ => None,
    });
    let mut targets: FxHashSet<FunctionId> = allocators.iter().map(|a| a.id).collect();
    targets.extend(resize_heap);
    if opts.component.is_some() {
        // In a component, the canonical ABI calls `cabi_realloc` from inside
        // an imported function, to lower its results: every call of an
        // import is a call site, so that such an allocation's stack ends at
        // the import's call rather than at whatever the frame called last.
        targets.extend(module.imports.iter().filter_map(|i| match i.kind {
            walrus::ImportKind::Function(f) => Some(f),
            _ => None,
        }));
    }
    let reaching = plan::reachable(&module, &calls, &address_taken, &targets);

    // Infrastructure: exports for the leak scan, shadow memory, hooks,
    // helpers.
    let stack_pointer = plan::stack_pointer(&module);
    let core = opts.component.is_none();
    if core {
        infra::export_for_leak_scan(&mut module, &memories, stack_pointer);
    } else if resize_heap.is_some() {
        return Err(InstrumentError::NotInComponent(format!(
            "it grows memory through the imported `{EMSCRIPTEN_RESIZE_HEAP}` (an emscripten build), which heapscope does not follow in a component"
        )));
    }
    let stack_low = stack_pointer.and_then(|sp| {
        if core {
            infra::track_stack_low(&mut module, sp)
        } else {
            infra::stack_low_branching(&mut module, sp)
        }
    });
    let comp_setup = opts.component.map(|c| infra::CompSetup {
        module_id: c.module_id,
        memories: memories.clone(),
        globals: original_globals
            .iter()
            .enumerate()
            .filter(|(_, g)| matches!(g.1, ValType::I32 | ValType::I64))
            .map(|(i, g)| (i as u32, g.0, g.1))
            .collect(),
        global_count: original_globals.len() as u32,
        stack: stack_pointer.zip(stack_low),
    });
    let infra = Infra::add(&mut module, comp_setup);
    if infra.comp.is_some() {
        // Every write of a mutable i32/i64 global is mirrored in the
        // header; the C stack pointer's and its low mark's in their own
        // fields only (its slot is written at registration).
        let mut mirrors: FxHashMap<GlobalId, (ValType, Vec<u32>)> = FxHashMap::default();
        for (i, &(g, ty, mutable)) in original_globals.iter().enumerate() {
            if mutable && matches!(ty, ValType::I32 | ValType::I64) {
                mirrors.insert(g, (ty, vec![cabi::HEADER_GLOBALS + 8 * i as u32]));
            }
        }
        if let (Some(sp), Some(low)) = (stack_pointer, stack_low) {
            let ty = module.globals.get(sp).ty;
            mirrors.insert(sp, (ty, vec![cabi::HEADER_STACK_POINTER]));
            mirrors.insert(low, (ty, vec![cabi::HEADER_STACK_LOW]));
        }
        infra::mirror_globals(&mut module, infra.shadow, &mirrors);
    }
    let sites = Sites::new(&mut module, &infra, reaching, &memories, resize_heap, mem0);
    if resize_heap.is_some() {
        warnings.push(format!(
            "memory growth through the imported `{EMSCRIPTEN_RESIZE_HEAP}` is reported as `memory.grow` of memory 0"
        ));
    }

    // Rewrite every function that can reach a hook.
    let (order, plans) = plan::plans(&mut module, &sites.reaching, &mut calls, &index_of, &|i| {
        sites.of(i).is_some()
    });
    let (table, grow_sites) =
        rewrite_functions(&mut module, &plans, &infra, &sites, layout.code_start);

    let (hooked, bodies) =
        wrap_allocators(&mut module, &infra, &allocators, &index_of, mem0, ptr_ty);
    call_bodies_directly(&mut module, &bodies);
    infra::wrap_exports(&mut module, &infra);
    module.customs.add(RawCustomSection {
        name: abi::SITE_TABLE_SECTION.into(),
        data: table.encode(),
    });
    // Where the original's code went, for a trap's stack: every original
    // function but the wrapped allocators (now heapscope's wrappers), and
    // their bodies, under the allocators' indices.
    let starts = crate::codemap::first_instructions(wasm);
    let imported = index_of.len().saturating_sub(starts.len());
    let start_of = |i: u32| {
        let first = starts.get((i as usize).checked_sub(imported)?)?;
        first.checked_sub(layout.code_start as u64)
    };
    let mut origin: FxHashMap<FunctionId, (u32, Option<u64>)> = index_of
        .iter()
        .map(|(&f, &i)| (f, (i, start_of(i))))
        .collect();
    for (wrapper, body) in bodies {
        if let Some(i) = origin.remove(&wrapper) {
            origin.insert(body, i);
        }
    }
    module.customs.add(crate::codemap::CodeMapSection::new(
        origin,
        layout.code_start,
    ));
    let has_dwarf = layout.custom(".debug_info").is_some();
    if !opts.skip_dwarf_copy {
        for (name, data) in symbols::dwarf_copy(&layout) {
            module.customs.add(RawCustomSection { name, data });
        }
        if let Some(data) = symbols::source_map_note(wasm, &layout) {
            module.customs.add(RawCustomSection {
                name: abi::SOURCE_MAP_SECTION.into(),
                data,
            });
        }
    }
    // The original's map does not fit the rewritten code (a browser's
    // developer tools would show wrong lines); the note above keeps it for
    // heapscope.
    module.customs.remove_raw("sourceMappingURL");
    let (notes, warnings): (Vec<String>, Vec<String>) =
        warnings.into_iter().partition(|w| is_note(w));
    // The program's entry (`main`), as DWARF addresses it: whether the
    // DWARF covers the program's own code, not only the libc's.
    let entry = module
        .funcs
        .iter()
        .find(|f| f.name.as_deref().is_some_and(is_entry_name))
        .and_then(|f| index_of.get(&f.id()))
        .and_then(|&i| start_of(i));
    let hints = debug_info_hint(&module, &layout, entry)
        .into_iter()
        .collect();
    let report = Report {
        allocators: hooked,
        grow_sites,
        call_sites: table.sites.len() - grow_sites,
        instrumented_functions: order.len(),
        total_functions: index_of.len(),
        has_names,
        has_dwarf,
        warnings,
        notes,
        hints,
        families,
        look_alikes,
    };
    if opts.track_writes {
        crate::dirty::track_writes(&mut module, mem0);
    }
    let wasm = module.emit_wasm();
    // Freeing the module's millions of instructions takes a while; leave it
    // to another thread while the caller validates or runs the output.
    std::thread::spawn(move || drop(module));
    Ok(Instrumented { wasm, report })
}

/// What a module instrumented for a component cannot have: a 64-bit or
/// shared memory (neither can be a canonical ABI option's memory), more
/// globals than the header mirrors.
fn check_component_mode(module: &Module) -> Result<(), InstrumentError> {
    let why = |w: String| Err(InstrumentError::NotInComponent(w));
    for (i, m) in module.memories.iter().enumerate() {
        if m.memory64 {
            return why(format!(
                "its memory {i} is a 64-bit memory, which the canonical ABI cannot hand to the host"
            ));
        }
        if m.shared {
            return why(format!(
                "its memory {i} is shared, which the canonical ABI cannot hand to the host"
            ));
        }
    }
    if module.memories.len() > 256 {
        return why(format!(
            "it has {} memories; heapscope tells 256 apart",
            module.memories.len()
        ));
    }
    let globals = module.globals.iter().count();
    if globals > cabi::MAX_MIRRORED_GLOBALS as usize {
        return why(format!(
            "it has {globals} globals; heapscope mirrors at most {} for the leak scan",
            cabi::MAX_MIRRORED_GLOBALS
        ));
    }
    Ok(())
}

/// Whether a line the discovery wrote says how an allocator was found
/// (the roles the JS glue gives, an allocator recognised by the shape of
/// its code) rather than what the numbers may miss: a note, not a warning.
fn is_note(line: &str) -> bool {
    line.starts_with("roles from the JS glue ")
        || line.starts_with("allocator recognised by the shape of its code: ")
}

/// The language a module was built from, for the build setting a hint
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Language {
    Rust,
    C,
    AssemblyScript,
    Unknown,
}

/// The module's language: from its `producers` section (`Rust` among its
/// languages; wasi-libc's `C11` beside it does not make it C), else from
/// its function names (`__rust_alloc`, `rust_begin_unwind`; AssemblyScript's
/// `~lib/`).
pub(crate) fn language(module: &Module, layout: &crate::symbols::Layout<'_>) -> Language {
    let producers = layout.custom("producers").unwrap_or_default();
    let has = |word: &[u8]| producers.windows(word.len()).any(|w| w == word);
    let named =
        |f: &dyn Fn(&str) -> bool| module.funcs.iter().filter_map(|f| f.name.as_deref()).any(f);
    if has(b"Rust")
        || named(&|n| {
            n.starts_with("__rust_") || n == "rust_begin_unwind" || n.starts_with("__rdl_")
        })
    {
        Language::Rust
    } else if has(b"AssemblyScript") || named(&|n| n.starts_with("~lib/")) {
        Language::AssemblyScript
    } else if has(b"C11") || has(b"C99") || has(b"C++") || has(b"clang") {
        Language::C
    } else {
        Language::Unknown
    }
}

/// A name of the program's entry function: C's `main` (and what
/// wasi-libc calls it), Rust's `<crate>::main` (mangled).
fn is_entry_name(name: &str) -> bool {
    matches!(
        name,
        "main" | "__original_main" | "__main_argc_argv" | "__main_void"
    ) || (name.starts_with("_ZN") && name.contains("4main17h"))
}

/// Whether the DWARF of `layout` has a unit whose code covers `address`
/// (true when it cannot be read: no claim of what it lacks then).
fn dwarf_covers(layout: &crate::symbols::Layout<'_>, address: u64) -> bool {
    use gimli::{EndianSlice, LittleEndian};
    let Ok(dwarf) = gimli::Dwarf::load(|id| -> Result<_, gimli::Error> {
        Ok(EndianSlice::new(
            layout.custom(id.name()).unwrap_or(&[]),
            LittleEndian,
        ))
    }) else {
        return true;
    };
    let mut units = dwarf.units();
    while let Ok(Some(header)) = units.next() {
        let Ok(unit) = dwarf.unit(header) else {
            return true;
        };
        let Ok(mut ranges) = dwarf.unit_ranges(&unit) else {
            return true;
        };
        while let Ok(Some(r)) = ranges.next() {
            if r.begin <= address && address < r.end {
                return true;
            }
        }
    }
    false
}

/// The hint for a module with no debug info for its own code (no DWARF, or
/// DWARF only for the libraries linked in, as a C program compiled without
/// `-g` against wasi-libc's; no source map): its stacks have no file:line
/// (and no inlined frames); the setting that gives them, in its language's
/// words; none when the language is unknown. `entry` is the program's
/// `main` as DWARF addresses it. Beside the stripped build's note
/// ([`is_note`]): what heapscope could not see, and what to change.
pub(crate) fn debug_info_hint(
    module: &Module,
    layout: &crate::symbols::Layout<'_>,
    entry: Option<u64>,
) -> Option<String> {
    if crate::symbols::source_map_url(layout).is_some() {
        return None;
    }
    if layout.custom(".debug_info").is_some()
        && entry.is_none_or(|address| dwarf_covers(layout, address))
    {
        return None;
    }
    let how = match language(module, layout) {
        Language::Rust => {
            "add `[profile.release] debug = \"line-tables-only\"` to Cargo.toml (or build with `RUSTFLAGS=-Cdebuginfo=line-tables-only`)"
        }
        Language::C => "compile and link with `-g`",
        Language::AssemblyScript => "build with `asc --debug --sourceMap`",
        // Hand-written (WAT) or stripped of its producers too: no
        // toolchain to name a setting of.
        Language::Unknown => return None,
    };
    Some(format!(
        "the module's code has no debug info, so stacks show functions without file:line (and without the frames inlined into them); for file:line, {how}"
    ))
}

/// The module, each function's index in the original module, and (when
/// asked for) each function's locals by index.
type Parsed = (Module, FxHashMap<FunctionId, u32>, crate::inlined::Locals);

/// Parse `wasm` with walrus, keeping each function's index in the
/// original module and, with `keep_locals`, its locals by index (to map
/// DWARF's local numbers onto them, [`crate::inlined`]).
fn parse(wasm: &[u8], keep_locals: bool) -> Result<Parsed, InstrumentError> {
    let index_of: Arc<Mutex<FxHashMap<FunctionId, u32>>> = Default::default();
    let locals: Arc<Mutex<crate::inlined::Locals>> = Default::default();
    let mut config = ModuleConfig::new();
    // Where each instruction goes, for the code map.
    config.preserve_code_transform(true);
    {
        let index_of = index_of.clone();
        let locals = locals.clone();
        config.on_parse(move |module, indices| {
            let mut m = index_of.lock().unwrap_or_else(|e| e.into_inner());
            let mut i = 0u32;
            while let Ok(id) = indices.get_func(i) {
                m.insert(id, i);
                i += 1;
            }
            if keep_locals {
                *locals.lock().unwrap_or_else(|e| e.into_inner()) =
                    crate::inlined::locals(module, indices);
            }
            Ok(())
        });
    }
    let module = Module::from_buffer_with_config(wasm, &config).map_err(|e| {
        let msg = format!("{e:#}");
        // walrus validates with the features it supports: a valid module
        // using another one is refused with "... is disabled" or "not
        // supported yet"; say so rather than calling it invalid.
        let full = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(wasm);
        if full.is_ok()
            && (msg.contains("disabled")
                || msg.contains("not supported")
                || msg.contains("not enabled"))
        {
            InstrumentError::Unsupported(msg)
        } else {
            InstrumentError::Invalid(msg)
        }
    })?;
    let index_of = std::mem::take(&mut *index_of.lock().unwrap_or_else(|e| e.into_inner()));
    let locals = std::mem::take(&mut *locals.lock().unwrap_or_else(|e| e.into_inner()));
    Ok((module, index_of, locals))
}

/// Hook the frees rustc inlined into the code that frees (see
/// [`crate::inlined`]): one function with an empty body, wrapped like any
/// allocator's free, called where each inlined free starts. Says what was
/// hooked, and what could not be, in `warnings`. Only for a Rust allocator
/// whose free is not C's `free` or the dlmalloc crate's (functions too big
/// to be inlined): DWARF is read only then.
fn hook_inlined_frees(
    module: &mut Module,
    layout: &Layout<'_>,
    locals: &crate::inlined::Locals,
    ptr_ty: ValType,
    index_of: &FxHashMap<FunctionId, u32>,
    allocators: &mut Vec<Allocator>,
    warnings: &mut Vec<String>,
) {
    // A Rust allocator (its free may be inlined everywhere, leaving only
    // the allocation to find by name, as LTO builds of lol_alloc do).
    use crate::discover::{is_global_alloc, is_rust_shim};
    let rust_free = allocators
        .iter()
        .any(|a| is_rust_shim(a.role) || is_global_alloc(a.role));
    // C's `free` and the dlmalloc crate's are never inlined: when Rust
    // frees through one of them (std's default allocator: its `__rdl_*`
    // functions, or the dlmalloc crate), DWARF is not read. It is when the
    // module has a Rust allocator of its own (a `GlobalAlloc` impl), whose
    // `dealloc` may be inlined into some callers however it is hooked, or
    // when Rust's free is no function at all, as in a WASI build whose
    // libc brings `free` beside wee_alloc or lol_alloc.
    let big_free = allocators
        .iter()
        .any(|a| matches!(a.role, AllocFn::Free | AllocFn::DlFree));
    let rust_free_fn = allocators.iter().any(|a| {
        matches!(
            a.role,
            AllocFn::RustDealloc | AllocFn::GlobalDealloc | AllocFn::DlFree
        )
    });
    let own_allocator = allocators
        .iter()
        .any(|a| is_global_alloc(a.role) && !a.name.contains("__rdl_"));
    let rust_free_inlined = warnings
        .iter()
        .any(|w| w.starts_with(crate::discover::FREE_INLINED_WARNING));
    if locals.is_empty()
        || !rust_free
        || (big_free && rust_free_fn && !rust_free_inlined && !own_allocator)
    {
        return;
    }
    let inlined = crate::inlined::scan(layout);
    if inlined.frees.is_empty() {
        return;
    }
    let resolved = inlined.resolve(module, locals);
    let code_start = layout.code_start;
    let wrapped: FxHashSet<FunctionId> = allocators.iter().map(|a| a.id).collect();
    // What can reach a wrapped function: an inlined free whose code calls
    // that is reported by the wrapper.
    let (calls, address_taken) = plan::call_graph(module);
    let reach = plan::reachable(module, &calls, &address_taken, &wrapped);
    let builder = walrus::FunctionBuilder::new(&mut module.types, &[ptr_ty], &[]);
    let arg = module.locals.add(ptr_ty);
    let hook_fn = builder.finish(vec![arg], &mut module.funcs);
    let hooked = crate::inlined::hook(
        module,
        &inlined,
        &resolved,
        code_start,
        &crate::inlined::HookWith {
            func: hook_fn,
            ptr_ty,
            wrapped: &wrapped,
            reach: &reach,
        },
    );
    let sites: usize = hooked.sites.iter().map(|(_, n)| n).sum();
    if sites == 0 {
        module.funcs.delete(hook_fn);
    } else {
        let name_of = |f: FunctionId| {
            module
                .funcs
                .get(f)
                .name
                .as_deref()
                .map(crate::discover::demangle)
                .unwrap_or_else(|| format!("func[{}]", index_of.get(&f).copied().unwrap_or(0)))
        };
        let mut into: Vec<String> = hooked
            .sites
            .iter()
            .take(3)
            .map(|(f, _)| format!("`{}`", name_of(*f)))
            .collect();
        if hooked.sites.len() > 3 {
            into.push(format!("{} more", hooked.sites.len() - 3));
        }
        let name = format!(
            "dealloc inlined at {sites} {} in {}",
            if sites == 1 { "site" } else { "sites" },
            into.join(", ")
        );
        module.funcs.get_mut(hook_fn).name = Some(name.clone());
        allocators.push(Allocator {
            role: AllocFn::InlinedDealloc,
            id: hook_fn,
            name,
            found_by: crate::discover::FoundBy::Dwarf,
            shape: crate::discover::Shape::Free { ptr: 0 },
        });
        // The free that the shims' calls said was inlined, or that was not
        // found at all, is hooked now.
        warnings.retain(|w| {
            !w.starts_with(crate::discover::FREE_INLINED_WARNING)
                && !w.starts_with(plan::NO_FREE_WARNING)
        });
    }
    if !hooked.unhookable.is_empty() {
        let mut why: Vec<&str> = hooked.unhookable.clone();
        why.sort_unstable();
        why.dedup();
        let hint = if why.contains(&crate::inlined::UNHOOKABLE_NO_PARAMS) {
            "build with full debug info (Rust: `[profile.release] debug = true`) to have them hooked; until then "
        } else {
            // buddy_system_allocator's, and lol_alloc's under LTO, stay
            // functions at these levels.
            "a build that inlines less (Rust: `opt-level = \"s\"` or `\"z\"`) may keep the allocator's free \
             a function heapscope hooks; until then "
        };
        let n = hooked.unhookable.len();
        warnings.push(format!(
            "{n} {} of the allocator inlined into the code that frees cannot be hooked ({}): {hint}they are \
             inferred when the allocator hands the address out again, and blocks live at exit may include freed ones",
            if n == 1 { "free" } else { "frees" },
            why.join("; ")
        ));
        warnings.retain(|w| !w.starts_with(crate::discover::FREE_INLINED_WARNING));
    }
}

/// Which instructions become call sites, and what each becomes.
struct Sites {
    reaching: Reach,
    resize_heap: Option<FunctionId>,
    resize_helper: Option<FunctionId>,
    /// One growth helper per memory.
    grow_helpers: FxHashMap<MemoryId, FunctionId>,
}

impl Sites {
    /// Add the growth helpers (one per memory, and emscripten's resize).
    fn new(
        module: &mut Module,
        infra: &Infra,
        reaching: Reach,
        memories: &[MemoryId],
        resize_heap: Option<FunctionId>,
        mem0: MemoryId,
    ) -> Sites {
        let mut grow_helpers = FxHashMap::default();
        for (i, &m) in memories.iter().enumerate() {
            grow_helpers.insert(m, infra::grow_helper(module, infra, m, i as u32));
        }
        let resize_helper = resize_heap.map(|f| infra::resize_heap_helper(module, infra, f, mem0));
        Sites {
            reaching,
            resize_heap,
            resize_helper,
            grow_helpers,
        }
    }

    /// What `instr` becomes when it is a site: the call to make after the
    /// push, and whether it is a growth.
    fn of(&self, instr: &Instr) -> Option<(Instr, bool)> {
        let reaching = &self.reaching;
        match instr {
            Instr::Call(c) if Some(c.func) == self.resize_heap => Some((
                Instr::Call(ir::Call {
                    func: self.resize_helper.expect("made when the import exists"),
                }),
                true,
            )),
            Instr::Call(c) if reaching.funcs.contains(&c.func) => Some((instr.clone(), false)),
            Instr::CallIndirect(c) if reaching.types.contains(&c.ty) => {
                Some((instr.clone(), false))
            }
            Instr::CallRef(c) if reaching.types.contains(&c.ty) => Some((instr.clone(), false)),
            Instr::MemoryGrow(g) => Some((
                Instr::Call(ir::Call {
                    func: self.grow_helpers[&g.memory],
                }),
                true,
            )),
            _ => None,
        }
    }
}

/// Rewrite every planned function, on every core; returns the site table
/// (site ids in function order, as the plans numbered them) and how many
/// sites are growths.
fn rewrite_functions(
    module: &mut Module,
    plans: &FxHashMap<FunctionId, Plan>,
    infra: &Infra,
    sites: &Sites,
    code_start: usize,
) -> (SiteTable, usize) {
    let mut rewritten: Vec<(u32, Vec<Site>, usize)> = module
        .funcs
        .par_iter_local_mut()
        .filter_map(|(fid, local)| {
            let plan = plans.get(&fid)?;
            let (out, grows) = rewrite_function(local, plan, infra, sites, code_start);
            Some((plan.first_site, out, grows))
        })
        .collect();
    rewritten.sort_by_key(|r| r.0);
    let mut table = SiteTable::default();
    let mut grow_sites = 0;
    for (first, out, grows) in rewritten {
        debug_assert!(out.is_empty() || first as usize == table.sites.len());
        table.sites.extend(out);
        grow_sites += grows;
    }
    (table, grow_sites)
}

/// One function: a push before each site, the slot handed over before
/// each tail call, and the prologue; returns its sites and growths.
fn rewrite_function(
    local: &mut walrus::LocalFunction,
    plan: &Plan,
    infra: &Infra,
    sites: &Sites,
    code_start: usize,
) -> (Vec<Site>, usize) {
    let mut out = Vec::new();
    let mut grows = 0;
    let d = InstrLocId::default;
    for (&seq, &(hits, tails)) in plan.call_seqs.iter().zip(&plan.seq_counts) {
        if hits == 0 && tails == 0 {
            continue;
        }
        let old = std::mem::take(&mut local.block_mut(seq).instrs);
        let mut new = Vec::with_capacity(old.len() + hits * PUSH_LEN + tails * 2);
        for (instr, loc) in old {
            if is_tail_call(&instr) {
                // The callee takes over this frame's slot.
                new.extend([
                    (
                        Instr::LocalGet(ir::LocalGet {
                            local: plan.entry_sp,
                        }),
                        d(),
                    ),
                    (Instr::GlobalSet(ir::GlobalSet { global: infra.sp }), d()),
                ]);
            }
            let Some((call, is_grow)) = sites.of(&instr) else {
                new.push((instr, loc));
                continue;
            };
            grows += usize::from(is_grow);
            let site = plan.first_site + out.len() as u32;
            let code_offset = if loc.is_default() {
                0
            } else {
                (loc.data() as usize).saturating_sub(code_start) as u32
            };
            out.push(Site {
                func_index: plan.func_index,
                code_offset,
                frames: vec![plan.frame.clone()],
            });
            push_site(&mut new, infra, plan, site);
            new.push((call, loc));
        }
        local.block_mut(seq).instrs = new;
    }
    prologue(local, plan, infra);
    (out, grows)
}

/// This frame's depth, and the depth its callees start at:
/// `entry = sp; entry4 = entry + 4`.
fn prologue(local: &mut walrus::LocalFunction, plan: &Plan, infra: &Infra) {
    let entry = local.entry_block();
    let d = InstrLocId::default;
    local.block_mut(entry).instrs.splice(
        0..0,
        [
            (Instr::GlobalGet(ir::GlobalGet { global: infra.sp }), d()),
            (
                Instr::LocalTee(ir::LocalTee {
                    local: plan.entry_sp,
                }),
                d(),
            ),
            (
                Instr::Const(ir::Const {
                    value: Value::I32(4),
                }),
                d(),
            ),
            (
                Instr::Binop(ir::Binop {
                    op: BinaryOp::I32Add,
                }),
                d(),
            ),
            (Instr::LocalSet(ir::LocalSet { local: plan.entry4 }), d()),
        ],
    );
}

/// Wrap the allocators; each keeps its function id (and so its index,
/// exports, table slots and callers) and its original body moves out.
/// Returns what was hooked, and each (wrapper, function now holding the
/// original body).
fn wrap_allocators(
    module: &mut Module,
    infra: &Infra,
    allocators: &[Allocator],
    index_of: &FxHashMap<FunctionId, u32>,
    mem0: MemoryId,
    ptr_ty: ValType,
) -> (Vec<HookedAllocator>, Vec<(FunctionId, FunctionId)>) {
    allocators
        .iter()
        .map(|a| {
            let body = crate::wrap::wrap(module, infra, a, mem0, ptr_ty);
            let hooked = HookedAllocator {
                role: a.role,
                function: a.name.clone(),
                index: index_of.get(&a.id).copied().unwrap_or(0),
                found_by: a.found_by,
            };
            (hooked, (a.id, body))
        })
        .unzip()
}

/// Inside an allocator's body, call the bodies of the other wrapped
/// allocators directly, not their wrappers. A body is called only by its
/// wrapper, which has raised the nesting counter, so a wrapper called from
/// a body reports nothing: it would raise and lower the counter around the
/// body it calls and skip its report. Skipping it changes no event and no
/// stack (a wrapper never moves the shadow stack; the call's site and push
/// stay), and saves two wrappers per Rust allocation (`__rust_alloc` →
/// `__rdl_alloc` → `malloc`). A trap's stack folds a wrapper and its body
/// into one frame either way.
fn call_bodies_directly(module: &mut Module, bodies: &[(FunctionId, FunctionId)]) {
    let body_of: FxHashMap<FunctionId, FunctionId> = bodies.iter().copied().collect();
    for &(_, body) in bodies {
        let walrus::FunctionKind::Local(local) = &mut module.funcs.get_mut(body).kind else {
            continue;
        };
        let mut seqs = vec![local.entry_block()];
        while let Some(seq) = seqs.pop() {
            for (instr, _) in local.block_mut(seq).instrs.iter_mut() {
                if crate::plan::push_nested(instr, &mut seqs) {
                    continue;
                }
                match instr {
                    Instr::Call(ir::Call { func }) | Instr::ReturnCall(ir::ReturnCall { func }) => {
                        if let Some(&b) = body_of.get(func) {
                            *func = b;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Before a call: `shadow[entry] = site; sp = entry + 4` (`entry + 4` kept
/// in a local since the prologue). Nothing after the call: the next push
/// sets `sp` again, so writing at the frame's entry depth rather than at
/// `sp` keeps the stack right whatever a callee, a caught exception or a
/// trap left `sp` at.
fn push_site(out: &mut Vec<(Instr, InstrLocId)>, infra: &Infra, plan: &Plan, site: u32) {
    let d = InstrLocId::default;
    out.extend([
        (
            Instr::LocalGet(ir::LocalGet {
                local: plan.entry_sp,
            }),
            d(),
        ),
        (
            Instr::Const(ir::Const {
                value: Value::I32(site as i32),
            }),
            d(),
        ),
        (
            Instr::Store(ir::Store {
                memory: infra.shadow,
                kind: StoreKind::I32 { atomic: false },
                arg: MemArg {
                    align: 4,
                    offset: 0,
                },
            }),
            d(),
        ),
        (Instr::LocalGet(ir::LocalGet { local: plan.entry4 }), d()),
        (Instr::GlobalSet(ir::GlobalSet { global: infra.sp }), d()),
    ]);
}

/// Instructions [`push_site`] adds.
const PUSH_LEN: usize = 5;
