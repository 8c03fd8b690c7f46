//! The rewrite itself: reachability, shadow stack pushes, allocator
//! wrappers, `memory.grow` hooks, site table.

use crate::discover::{self, Allocator, Shape};
use crate::symbols::{self, Layout};
use crate::{HookedAllocator, InstrumentError, Instrumented, Options, Report};
use heapscope_trace::abi::{self, AllocFn, Site, SiteTable};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use walrus::ir::{
    self, BinaryOp, Instr, InstrLocId, InstrSeqId, InstrSeqType, LoadKind, MemArg, StoreKind,
    UnaryOp, Value,
};
use walrus::{
    ConstExpr, ElementItems, FunctionBuilder, FunctionId, FunctionKind, GlobalId, InstrSeqBuilder,
    LocalId, MemoryId, Module, ModuleConfig, RawCustomSection, TypeId, ValType,
};

/// What one function does that matters for reachability.
#[derive(Default)]
struct Calls {
    direct: FxHashSet<FunctionId>,
    indirect: FxHashSet<TypeId>,
    grows: bool,
    refs: Vec<FunctionId>,
    /// The instruction sequences that hold a call, a tail call or a
    /// `memory.grow`, in
    /// the order [`Calls::scan`] visits them: the only ones the rewrite
    /// looks at again.
    call_seqs: Vec<InstrSeqId>,
}

impl Calls {
    /// Walk every instruction sequence of `f` (its body, blocks, loops,
    /// branches, try bodies and handlers) once. A plain walk over the
    /// instructions: walrus' visitor traversal also visits every operand,
    /// which made it a quarter of the instrumenter's time on large modules.
    fn scan(f: &walrus::LocalFunction) -> Calls {
        let mut c = Calls::default();
        let mut stack = vec![f.entry_block()];
        while let Some(id) = stack.pop() {
            let mut calls = false;
            for (instr, _) in &f.block(id).instrs {
                match instr {
                    Instr::Block(ir::Block { seq }) | Instr::Loop(ir::Loop { seq }) => {
                        stack.push(*seq)
                    }
                    Instr::IfElse(ir::IfElse {
                        consequent,
                        alternative,
                    }) => stack.extend([*consequent, *alternative]),
                    Instr::TryTable(t) => stack.push(t.seq),
                    Instr::Try(t) => {
                        stack.push(t.seq);
                        for c in &t.catches {
                            if let ir::LegacyCatch::Catch { handler, .. }
                            | ir::LegacyCatch::CatchAll { handler } = c
                            {
                                stack.push(*handler);
                            }
                        }
                    }
                    Instr::Call(ir::Call { func }) => {
                        c.direct.insert(*func);
                        calls = true;
                    }
                    Instr::ReturnCall(ir::ReturnCall { func }) => {
                        c.direct.insert(*func);
                        calls = true;
                    }
                    Instr::CallIndirect(ir::CallIndirect { ty, .. })
                    | Instr::CallRef(ir::CallRef { ty }) => {
                        c.indirect.insert(*ty);
                        calls = true;
                    }
                    Instr::ReturnCallIndirect(ir::ReturnCallIndirect { ty, .. })
                    | Instr::ReturnCallRef(ir::ReturnCallRef { ty }) => {
                        c.indirect.insert(*ty);
                        calls = true;
                    }
                    Instr::MemoryGrow(_) => {
                        c.grows = true;
                        calls = true;
                    }
                    Instr::RefFunc(r) => c.refs.push(r.func),
                    _ => {}
                }
            }
            if calls {
                c.call_seqs.push(id);
            }
        }
        c
    }
}

/// How one function that can reach a hook is changed.
struct Plan {
    /// Its index in the original module.
    func_index: u32,
    /// Local holding `sp` at entry: this frame's slot.
    entry_sp: LocalId,
    /// Local holding `entry + 4`: where its callees' frames start.
    entry4: LocalId,
    /// Its sequences that hold a call, a tail call or a `memory.grow`.
    call_seqs: Vec<InstrSeqId>,
    /// Per sequence of `call_seqs`: its sites and its tail calls.
    seq_counts: Vec<(usize, usize)>,
    /// The one frame of its sites until the collector symbolises them.
    frame: abi::SiteFrame,
    /// Id of its first site.
    first_site: u32,
}

/// Everything the inserted code refers to.
struct Infra {
    sp: GlobalId,
    nest: GlobalId,
    shadow: MemoryId,
    hook_grow: FunctionId,
    /// `heapscope:record(tag|kind, a, b, c, sp)`: appends an event to the
    /// buffer, or calls the synchronous hook of its tag.
    record: FunctionId,
}

pub(crate) fn run(wasm: &[u8], opts: &Options) -> Result<Instrumented, InstrumentError> {
    // Map walrus ids back to the original function indices.
    let index_of: Arc<Mutex<FxHashMap<FunctionId, u32>>> = Default::default();
    let mut config = ModuleConfig::new();
    {
        let index_of = index_of.clone();
        config.on_parse(move |_, indices| {
            let mut m = index_of.lock().unwrap_or_else(|e| e.into_inner());
            let mut i = 0u32;
            while let Ok(id) = indices.get_func(i) {
                m.insert(id, i);
                i += 1;
            }
            Ok(())
        });
    }
    let mut module = Module::from_buffer_with_config(wasm, &config).map_err(|e| {
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

    let memories: Vec<MemoryId> = module.memories.iter().map(|m| m.id()).collect();
    let Some(&mem0) = memories.first() else {
        return Err(InstrumentError::NoMemory);
    };
    let ptr_ty = if module.memories.get(mem0).memory64 {
        ValType::I64
    } else {
        ValType::I32
    };

    let has_names = module.funcs.iter().any(|f| f.name.is_some());
    let mut warnings = Vec::new();
    let allocators = discover::discover(&module, &opts.alloc_fns, &index_of, ptr_ty, &mut warnings)
        .map_err(InstrumentError::AllocFn)?;
    if !allocators.iter().any(|a| a.role.hook() != abi::HOOK_FREE) {
        let hint = if has_names {
            "if the module uses a custom allocator, name its functions with `--alloc-fn ROLE=NAME|INDEX` (roles: malloc, free, calloc, realloc, aligned)"
        } else {
            "the module has no name section; pass `--alloc-fn ROLE=NAME|INDEX` (roles: malloc, free, calloc, realloc, aligned) or build with names kept (clang: link without `-O` and `-s`; Rust: `strip = false`)"
        };
        return Err(InstrumentError::NoAllocator {
            looked_for: discover::looked_for(),
            hint: hint.into(),
        });
    }
    if !allocators.iter().any(|a| a.role.hook() == abi::HOOK_FREE) {
        warnings.push("no freeing function found: every block will look leaked".into());
    }
    if allocators.iter().all(|a| {
        matches!(
            a.role,
            AllocFn::WbgMalloc | AllocFn::WbgFree | AllocFn::WbgRealloc
        )
    }) {
        warnings.push(
            "only wasm-bindgen's exported __wbindgen_* functions were found: the allocations the JS glue makes \
             through them are visible, but not those the module's own code makes through its allocator; \
             build with names kept (`[profile.release] debug = 1, strip = false`, wasm-bindgen `--keep-debug`) to see all"
                .into(),
        );
    }

    // Call graph and reachability.
    let mut calls: FxHashMap<FunctionId, Calls> = module
        .funcs
        .par_iter_local()
        .map(|(id, f)| (id, Calls::scan(f)))
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    let mut address_taken: FxHashSet<FunctionId> = calls
        .values()
        .flat_map(|c| c.refs.iter().copied())
        .collect();
    for e in module.elements.iter() {
        match &e.items {
            ElementItems::Functions(fs) => address_taken.extend(fs.iter().copied()),
            ElementItems::Expressions(_, es) => {
                address_taken.extend(es.iter().filter_map(|e| match e {
                    ConstExpr::RefFunc(f) => Some(*f),
                    _ => None,
                }))
            }
        }
    }
    for g in module.globals.iter() {
        if let walrus::GlobalKind::Local(ConstExpr::RefFunc(f)) = g.kind {
            address_taken.insert(f);
        }
    }
    // Emscripten grows memory through an import, never `memory.grow`.
    let resize_heap = module.imports.iter().find_map(|i| match i.kind {
        walrus::ImportKind::Function(f) if i.name == EMSCRIPTEN_RESIZE_HEAP => Some(f),
        _ => None,
    });
    let mut targets: FxHashSet<FunctionId> = allocators.iter().map(|a| a.id).collect();
    targets.extend(resize_heap);
    let reaching = reachable(&module, &calls, &address_taken, &targets);

    // The module's own globals, for the host's leak scan.
    let globals: Vec<(walrus::GlobalId, ValType, bool, Option<String>)> = module
        .globals
        .iter()
        .map(|g| (g.id(), g.ty, g.mutable, g.name.clone()))
        .collect();
    // By name; without global names, wasm-ld's convention: the first
    // mutable global, if it starts at a plausible stack top.
    let stack_pointer = globals
        .iter()
        .find(|g| g.3.as_deref() == Some("__stack_pointer"))
        .or_else(|| {
            if globals.iter().any(|g| g.3.is_some()) {
                return None;
            }
            let first = globals.iter().find(|g| g.2)?;
            let init = match module.globals.get(first.0).kind {
                walrus::GlobalKind::Local(ConstExpr::Value(Value::I32(v))) => v as i64,
                walrus::GlobalKind::Local(ConstExpr::Value(Value::I64(v))) => v,
                _ => return None,
            };
            (init > 0 && init % 16 == 0).then_some(first)
        })
        .map(|g| g.0);
    for (i, (id, ty, _, _)) in globals.iter().enumerate() {
        if matches!(ty, ValType::I32 | ValType::I64) && Some(*id) != stack_pointer {
            module
                .exports
                .add(&format!("{}{i}", abi::GLOBAL_EXPORT_PREFIX), *id);
        }
    }
    if let Some(sp) = stack_pointer {
        module.exports.add(abi::STACK_POINTER_EXPORT, sp);
    }
    for (i, &m) in memories.iter().enumerate() {
        module
            .exports
            .add(&format!("{}{i}", abi::MEMORY_EXPORT_PREFIX), m);
    }

    // Infrastructure: shadow memory, globals, hook imports.
    let shadow = module.memories.add_local(
        false,
        false,
        abi::SHADOW_PAGES + abi::EVENT_PAGES,
        Some(abi::SHADOW_PAGES + abi::EVENT_PAGES),
        None,
    );
    module.exports.add(abi::SHADOW_MEMORY_EXPORT, shadow);
    let zero = ConstExpr::Value(Value::I32(0));
    let sp = module
        .globals
        .add_local(ValType::I32, true, false, zero.clone());
    let nest = module.globals.add_local(ValType::I32, true, false, zero);
    module.globals.get_mut(sp).name = Some("heapscope:sp".into());
    module.exports.add(abi::SHADOW_SP_EXPORT, sp);
    module.globals.get_mut(nest).name = Some("heapscope:nest".into());
    let (i32t, i64t) = (ValType::I32, ValType::I64);
    let import = |module: &mut Module, name: &str, params: &[ValType]| {
        let ty = module.types.add(params, &[]);
        let (f, _) = module.add_import_func(abi::IMPORT_MODULE, name, ty);
        module.funcs.get_mut(f).name = Some(format!("{}:{name}", abi::IMPORT_MODULE));
        f
    };
    let hook_alloc = import(
        &mut module,
        abi::HOOK_ALLOC,
        &[i32t, i64t, i64t, i64t, i32t],
    );
    let hook_free = import(&mut module, abi::HOOK_FREE, &[i32t, i64t, i32t]);
    let hook_realloc = import(
        &mut module,
        abi::HOOK_REALLOC,
        &[i32t, i64t, i64t, i64t, i32t],
    );
    let hook_grow = import(&mut module, abi::HOOK_GROW, &[i32t, i64t, i64t, i32t]);
    let hook_flush = import(&mut module, abi::HOOK_FLUSH, &[]);
    let record = record_helper(
        &mut module,
        shadow,
        [hook_alloc, hook_free, hook_realloc],
        hook_flush,
    );
    let infra = Infra {
        sp,
        nest,
        shadow,
        hook_grow,
        record,
    };

    // One growth helper per memory that is grown.
    let mut grow_helpers: FxHashMap<MemoryId, FunctionId> = FxHashMap::default();
    for (i, &m) in memories.iter().enumerate() {
        let helper = grow_helper(&mut module, &infra, m, i as u32);
        grow_helpers.insert(m, helper);
    }

    let resize_helper = resize_heap.map(|f| resize_heap_helper(&mut module, &infra, f, mem0));
    if resize_heap.is_some() {
        warnings.push(format!(
            "memory growth through the imported `{EMSCRIPTEN_RESIZE_HEAP}` is reported as `memory.grow` of memory 0"
        ));
    }

    // Shadow stack pushes around every call that can reach a hook.
    let layout = Layout::of(wasm);
    let mut sites = SiteTable::default();
    let mut grow_sites = 0;
    let reaching_ids: Vec<FunctionId> = {
        let mut v: Vec<_> = reaching
            .funcs
            .iter()
            .copied()
            .filter(|f| calls.contains_key(f))
            .collect();
        v.sort_by_key(|f| index_of.get(f).copied().unwrap_or(u32::MAX));
        v
    };
    // Per function, in parallel: its name (the sites' frame until the
    // collector symbolises them) and its site count; then site ids in
    // function order; then, in parallel again, the rewrite.
    let mut plans: FxHashMap<FunctionId, Plan> = FxHashMap::default();
    for &fid in &reaching_ids {
        let call_seqs = calls
            .get_mut(&fid)
            .map(|c| std::mem::take(&mut c.call_seqs))
            .unwrap_or_default();
        plans.insert(
            fid,
            Plan {
                func_index: index_of.get(&fid).copied().unwrap_or(0),
                entry_sp: module.locals.add(ValType::I32),
                entry4: module.locals.add(ValType::I32),
                call_seqs,
                seq_counts: Vec::new(),
                frame: abi::SiteFrame::default(),
                first_site: 0,
            },
        );
    }
    // What a site becomes: the call to make between the push and the pop,
    // and whether it is a growth.
    let target = |instr: &Instr| -> Option<(Instr, bool)> {
        match instr {
            Instr::Call(c) if Some(c.func) == resize_heap => Some((
                Instr::Call(ir::Call {
                    func: resize_helper.expect("made when the import exists"),
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
                    func: grow_helpers[&g.memory],
                }),
                true,
            )),
            _ => None,
        }
    };
    type Counted = (FunctionId, String, Vec<(usize, usize)>);
    let counted: Vec<Counted> = module
        .funcs
        .par_iter()
        .filter_map(|f| {
            let plan = plans.get(&f.id())?;
            let FunctionKind::Local(local) = &f.kind else {
                return None;
            };
            let name = f
                .name
                .as_deref()
                .map(discover::demangle)
                .unwrap_or_else(|| format!("func[{}]", plan.func_index));
            let per_seq = plan
                .call_seqs
                .iter()
                .map(|&seq| {
                    let instrs = &local.block(seq).instrs;
                    let sites = instrs.iter().filter(|(i, _)| target(i).is_some()).count();
                    let tails = instrs.iter().filter(|(i, _)| is_tail_call(i)).count();
                    (sites, tails)
                })
                .collect();
            Some((f.id(), name, per_seq))
        })
        .collect();
    let mut counts: FxHashMap<FunctionId, usize> = FxHashMap::default();
    for (fid, name, per_seq) in counted {
        counts.insert(fid, per_seq.iter().map(|c| c.0).sum());
        if let Some(plan) = plans.get_mut(&fid) {
            plan.frame.function = name;
            plan.seq_counts = per_seq;
        }
    }
    let mut next_site = 0u32;
    for fid in &reaching_ids {
        if let (Some(plan), Some(&n)) = (plans.get_mut(fid), counts.get(fid)) {
            plan.first_site = next_site;
            next_site += n as u32;
        }
    }
    let code_start = layout.code_start;
    let mut rewritten: Vec<(u32, Vec<Site>, usize)> = module
        .funcs
        .par_iter_local_mut()
        .filter_map(|(fid, local)| {
            let plan = plans.get(&fid)?;
            let mut out = Vec::new();
            let mut grows = 0;
            for (&seq, &(hits, tails)) in plan.call_seqs.iter().zip(&plan.seq_counts) {
                if hits == 0 && tails == 0 {
                    continue;
                }
                let old = std::mem::take(&mut local.block_mut(seq).instrs);
                let mut new = Vec::with_capacity(old.len() + hits * PUSH_LEN + tails * 2);
                for (instr, loc) in old {
                    if is_tail_call(&instr) {
                        // The callee takes over this frame's slot.
                        let d = InstrLocId::default;
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
                    let Some((call, is_grow)) = target(&instr) else {
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
                    push_site(&mut new, &infra, plan, site);
                    new.push((call, loc));
                }
                local.block_mut(seq).instrs = new;
            }
            // Prologue: this frame's depth, and the depth its callees start at.
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
            Some((plan.first_site, out, grows))
        })
        .collect();
    rewritten.sort_by_key(|r| r.0);
    for (first, out, grows) in rewritten {
        debug_assert!(out.is_empty() || first as usize == sites.sites.len());
        sites.sites.extend(out);
        grow_sites += grows;
    }

    // Wrap the allocators; each keeps its function id (and so its index,
    // exports, table slots and callers) and its original body moves out.
    let mut hooked = Vec::new();
    for a in &allocators {
        wrap(&mut module, &infra, a, mem0, ptr_ty);
        hooked.push(HookedAllocator {
            role: a.role,
            function: a.name.clone(),
            index: index_of.get(&a.id).copied().unwrap_or(0),
            found_by: a.found_by,
        });
    }

    module.customs.add(RawCustomSection {
        name: abi::SITE_TABLE_SECTION.into(),
        data: sites.encode(),
    });
    let has_dwarf = layout.custom(".debug_info").is_some();
    let dwarf = if opts.skip_dwarf_copy {
        Vec::new()
    } else {
        symbols::dwarf_copy(&layout)
    };
    for (name, data) in dwarf {
        module.customs.add(RawCustomSection { name, data });
    }
    let report = Report {
        allocators: hooked,
        grow_sites,
        call_sites: sites.sites.len() - grow_sites,
        instrumented_functions: reaching_ids.len(),
        total_functions: index_of.len(),
        has_names,
        has_dwarf,
        warnings,
    };
    let wasm = module.emit_wasm();
    // Freeing the module's millions of instructions takes a while; leave it
    // to another thread while the caller validates or runs the output.
    std::thread::spawn(move || drop(module));
    Ok(Instrumented { wasm, report })
}

struct Reach {
    funcs: FxHashSet<FunctionId>,
    types: FxHashSet<TypeId>,
}

/// Functions that can reach an allocator or a `memory.grow`, found by a
/// breadth-first walk of the reversed call graph. An indirect call of type
/// T reaches if any address-taken function of type T does.
fn reachable(
    module: &Module,
    calls: &FxHashMap<FunctionId, Calls>,
    address_taken: &FxHashSet<FunctionId>,
    allocs: &FxHashSet<FunctionId>,
) -> Reach {
    let mut callers: FxHashMap<FunctionId, Vec<FunctionId>> = FxHashMap::default();
    let mut indirect_callers: FxHashMap<TypeId, Vec<FunctionId>> = FxHashMap::default();
    for (&f, c) in calls {
        for &callee in &c.direct {
            callers.entry(callee).or_default().push(f);
        }
        for &ty in &c.indirect {
            indirect_callers.entry(ty).or_default().push(f);
        }
    }
    let mut reach = Reach {
        funcs: FxHashSet::default(),
        types: FxHashSet::default(),
    };
    let mut queue: VecDeque<FunctionId> = VecDeque::new();
    for (&f, c) in calls {
        if c.grows {
            queue.push_back(f);
        }
    }
    queue.extend(allocs.iter().copied());
    while let Some(f) = queue.pop_front() {
        if !reach.funcs.insert(f) {
            continue;
        }
        if let Some(cs) = callers.get(&f) {
            queue.extend(cs.iter().copied().filter(|c| !reach.funcs.contains(c)));
        }
        if address_taken.contains(&f) {
            let ty = module.funcs.get(f).ty();
            if reach.types.insert(ty) {
                if let Some(cs) = indirect_callers.get(&ty) {
                    queue.extend(cs.iter().copied().filter(|c| !reach.funcs.contains(c)));
                }
            }
        }
    }
    reach
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

/// Whether `instr` is a tail call, before which a changed function hands
/// its slot to the callee.
fn is_tail_call(instr: &Instr) -> bool {
    matches!(
        instr,
        Instr::ReturnCall(_) | Instr::ReturnCallIndirect(_) | Instr::ReturnCallRef(_)
    )
}

/// Push `local` as an i64, zero-extending an i32.
fn get_u64(b: &mut InstrSeqBuilder, local: LocalId, ty: ValType) {
    b.local_get(local);
    if ty == ValType::I32 {
        b.unop(UnaryOp::I64ExtendUI32);
    }
}

/// `fn heapscope:record(tag_kind: i32, a: i64, b: i64, c: i64, sp: i32)`:
/// appends an event record (see `trace::abi`, "The event buffer") and its
/// stack to the buffer, calling `flush` first when it would not fit; a
/// record that could never fit, or any when the host set the capacity to 0,
/// goes to the synchronous hook of its tag instead.
fn record_helper(
    module: &mut Module,
    shadow: MemoryId,
    [hook_alloc, hook_free, hook_realloc]: [FunctionId; 3],
    hook_flush: FunctionId,
) -> FunctionId {
    let (i32t, i64t) = (ValType::I32, ValType::I64);
    // A mutable i32 global, named and exported for the host.
    let mut exported = |name: &str, export: &str, init: u32| {
        let g =
            module
                .globals
                .add_local(i32t, true, false, ConstExpr::Value(Value::I32(init as i32)));
        module.globals.get_mut(g).name = Some(name.into());
        module.exports.add(export, g);
        g
    };
    let events = exported("heapscope:events", abi::EVENTS_EXPORT, abi::EVENT_BASE);
    let cap = exported(
        "heapscope:events_cap",
        abi::EVENTS_CAP_EXPORT,
        abi::EVENT_BYTES,
    );

    let params = [i32t, i64t, i64t, i64t, i32t];
    let args: Vec<LocalId> = params.iter().map(|t| module.locals.add(*t)).collect();
    let [tag, a, b, c, sp] = [args[0], args[1], args[2], args[3], args[4]];
    let p = module.locals.add(i32t);
    let i = module.locals.add(i32t);
    let mut f = FunctionBuilder::new(&mut module.types, &params, &[]);
    f.name("heapscope:record".into());
    let header = abi::EVENT_HEADER as i32;
    // Room for the header, the stack and the last word the copy rounds up.
    let need = |body: &mut InstrSeqBuilder| {
        body.local_get(sp)
            .i32_const(header + 8)
            .binop(BinaryOp::I32Add);
    };
    // Whether the record does not fit what is left of the buffer.
    let full = |b: &mut InstrSeqBuilder| {
        b.global_get(events);
        need(b);
        b.binop(BinaryOp::I32Add)
            .i32_const(abi::EVENT_BASE as i32)
            .global_get(cap)
            .binop(BinaryOp::I32Add)
            .binop(BinaryOp::I32GtU);
    };
    let word = |align: u32, offset: u64| MemArg { align, offset };
    let mut body = f.func_body();
    body.block(None, |out| {
        let out_id = out.id();
        out.block(None, |to_sync| {
            let sync_id = to_sync.id();
            // A stack the buffer could never hold, or buffering turned off.
            need(to_sync);
            to_sync
                .global_get(cap)
                .binop(BinaryOp::I32GtU)
                .br_if(sync_id);
            // Full: let the host empty it; if it did not, go synchronous.
            full(to_sync);
            to_sync.if_else(
                None,
                |f| {
                    f.call(hook_flush);
                },
                |_| {},
            );
            full(to_sync);
            to_sync.br_if(sync_id);
            let w = to_sync;
            w.global_get(events).local_set(p);
            w.local_get(p).local_get(tag).store(
                shadow,
                StoreKind::I32 { atomic: false },
                word(4, 0),
            );
            for (k, v) in [a, b, c].into_iter().enumerate() {
                w.local_get(p).local_get(v).store(
                    shadow,
                    StoreKind::I64 { atomic: false },
                    word(4, 4 + 8 * k as u64),
                );
            }
            w.local_get(p).local_get(sp).store(
                shadow,
                StoreKind::I32 { atomic: false },
                word(4, 28),
            );
            // Copy the stack eight bytes at a time.
            w.i32_const(0).local_set(i);
            w.block(None, |done| {
                let done_id = done.id();
                done.loop_(None, |lp| {
                    let again = lp.id();
                    lp.local_get(i)
                        .local_get(sp)
                        .binop(BinaryOp::I32GeU)
                        .br_if(done_id);
                    lp.local_get(p).local_get(i).binop(BinaryOp::I32Add);
                    lp.local_get(i)
                        .load(shadow, LoadKind::I64 { atomic: false }, word(4, 0));
                    lp.store(
                        shadow,
                        StoreKind::I64 { atomic: false },
                        word(4, abi::EVENT_HEADER.into()),
                    );
                    lp.local_get(i)
                        .i32_const(8)
                        .binop(BinaryOp::I32Add)
                        .local_set(i)
                        .br(again);
                });
            });
            // Published last: a trap before this leaves no half record.
            w.local_get(p)
                .i32_const(header)
                .binop(BinaryOp::I32Add)
                .local_get(sp)
                .binop(BinaryOp::I32Add)
                .global_set(events);
            w.br(out_id);
        });
        // The synchronous hook of the record's tag.
        let kind = |s: &mut InstrSeqBuilder| {
            s.local_get(tag)
                .i32_const(0xff_ffff)
                .binop(BinaryOp::I32And);
        };
        let is = |s: &mut InstrSeqBuilder, t: u32| {
            s.local_get(tag)
                .i32_const(24)
                .binop(BinaryOp::I32ShrU)
                .i32_const(t as i32)
                .binop(BinaryOp::I32Eq);
        };
        is(out, abi::EVENT_FREE);
        out.if_else(
            None,
            |free| {
                kind(free);
                free.local_get(a).local_get(sp).call(hook_free);
            },
            |other| {
                is(other, abi::EVENT_REALLOC);
                other.if_else(
                    None,
                    |re| {
                        kind(re);
                        re.local_get(a).local_get(b).local_get(c).local_get(sp);
                        re.call(hook_realloc);
                    },
                    |al| {
                        kind(al);
                        al.local_get(a).local_get(b).local_get(c).local_get(sp);
                        al.call(hook_alloc);
                    },
                );
            },
        );
    });
    f.finish(args, &mut module.funcs)
}

/// `fn heapscope:grow:N(delta) -> old`: `memory.grow` plus its hook.
fn grow_helper(module: &mut Module, infra: &Infra, memory: MemoryId, index: u32) -> FunctionId {
    let ty = if module.memories.get(memory).memory64 {
        ValType::I64
    } else {
        ValType::I32
    };
    let mut b = FunctionBuilder::new(&mut module.types, &[ty], &[ty]);
    b.name(format!("heapscope:grow:{index}"));
    let delta = module.locals.add(ty);
    let result = module.locals.add(ty);
    let mut body = b.func_body();
    body.local_get(delta).memory_grow(memory).local_set(result);
    body.i32_const(index as i32);
    get_u64(&mut body, delta, ty);
    body.local_get(result);
    if ty == ValType::I32 {
        // -1 stays -1.
        body.unop(UnaryOp::I64ExtendSI32);
    }
    body.global_get(infra.sp)
        .call(infra.hook_grow)
        .local_get(result);
    b.finish(vec![delta], &mut module.funcs)
}

/// The import emscripten's libc grows the heap through.
const EMSCRIPTEN_RESIZE_HEAP: &str = "emscripten_resize_heap";

/// `fn heapscope:resize_heap(size) -> ok`: calls emscripten's
/// `emscripten_resize_heap` import and reports the growth it made (or the
/// failure) as a `memory.grow` of memory 0, comparing `memory.size` before
/// and after.
fn resize_heap_helper(
    module: &mut Module,
    infra: &Infra,
    import: FunctionId,
    mem0: MemoryId,
) -> FunctionId {
    let ty = module.types.get(module.funcs.get(import).ty()).clone();
    let (params, results) = (ty.params().to_vec(), ty.results().to_vec());
    let page_ty = if module.memories.get(mem0).memory64 {
        ValType::I64
    } else {
        ValType::I32
    };
    let mut b = FunctionBuilder::new(&mut module.types, &params, &results);
    b.name("heapscope:resize_heap".into());
    let args: Vec<LocalId> = params.iter().map(|t| module.locals.add(*t)).collect();
    let ret = results.first().map(|t| module.locals.add(*t));
    let before = module.locals.add(page_ty);
    let after = module.locals.add(page_ty);
    let mut body = b.func_body();
    body.memory_size(mem0).local_set(before);
    for &a in &args {
        body.local_get(a);
    }
    body.call(import);
    if let Some(r) = ret {
        body.local_set(r);
    }
    body.memory_size(mem0).local_set(after);
    let (ne, sub) = if page_ty == ValType::I32 {
        (BinaryOp::I32Ne, BinaryOp::I32Sub)
    } else {
        (BinaryOp::I64Ne, BinaryOp::I64Sub)
    };
    body.local_get(after).local_get(before).binop(ne);
    body.if_else(
        None,
        |grew| {
            grew.i32_const(0);
            grew.local_get(after).local_get(before).binop(sub);
            if page_ty == ValType::I32 {
                grew.unop(UnaryOp::I64ExtendUI32);
            }
            get_u64(grew, before, page_ty);
            grew.global_get(infra.sp).call(infra.hook_grow);
        },
        |same| {
            // Unchanged size and a false result: the growth failed.
            if let Some(r) = ret {
                same.local_get(r).unop(UnaryOp::I32Eqz);
                same.if_else(
                    None,
                    |failed| {
                        failed
                            .i32_const(0)
                            .i64_const(0)
                            .i64_const(-1)
                            .global_get(infra.sp)
                            .call(infra.hook_grow);
                    },
                    |_| {},
                );
            }
        },
    );
    if let Some(r) = ret {
        body.local_get(r);
    }
    b.finish(args, &mut module.funcs)
}

/// Make `a.id` a wrapper that calls the original body (moved to a new
/// function) and reports to its hook when it is the outermost allocator
/// call.
fn wrap(module: &mut Module, infra: &Infra, a: &Allocator, mem0: MemoryId, p: ValType) {
    let ty = module.funcs.get(a.id).ty();
    let params = module.types.get(ty).params().to_vec();
    let results = module.types.get(ty).results().to_vec();

    // Move the original body into a new function.
    let mut stub = FunctionBuilder::new(&mut module.types, &params, &results);
    stub.func_body().unreachable();
    let stub_args = params.iter().map(|t| module.locals.add(*t)).collect();
    let original = stub.finish(stub_args, &mut module.funcs);
    swap_bodies(module, a.id, original);
    module.funcs.get_mut(original).name = Some(format!("{}.heapscope_original", a.name));

    let kind = abi::pack_kind(a.role, 0);
    let mut b = FunctionBuilder::new(&mut module.types, &params, &results);
    let args: Vec<LocalId> = params.iter().map(|t| module.locals.add(*t)).collect();
    let ret = results.first().map(|t| module.locals.add(*t));
    // The stack of the call into the allocator: `sp` as the caller set it,
    // before the original body's own calls move it.
    let sp0 = module.locals.add(ValType::I32);
    let mut body = b.func_body();
    body.global_get(infra.sp).local_set(sp0);
    body.global_get(infra.nest)
        .i32_const(1)
        .binop(BinaryOp::I32Add)
        .global_set(infra.nest);
    for &l in &args {
        body.local_get(l);
    }
    body.call(original);
    if let Some(r) = ret {
        body.local_set(r);
    }
    body.global_get(infra.nest)
        .i32_const(1)
        .binop(BinaryOp::I32Sub)
        .global_set(infra.nest);
    body.global_get(infra.nest).unop(UnaryOp::I32Eqz);
    let ptr_load = if p == ValType::I64 {
        LoadKind::I64 { atomic: false }
    } else {
        LoadKind::I32 { atomic: false }
    };
    let ptr_align = if p == ValType::I64 { 8 } else { 4 };
    body.if_else(
        None,
        |then| {
            let tag = match a.shape {
                Shape::Alloc { .. } | Shape::OutParam { .. } => abi::EVENT_ALLOC,
                Shape::Realloc { .. } => abi::EVENT_REALLOC,
                Shape::Free { .. } => abi::EVENT_FREE,
            };
            then.i32_const(kind | (tag << 24) as i32);
            match a.shape {
                Shape::Alloc { size, count, align } => {
                    get_u64(then, ret.expect("allocating shapes return a pointer"), p);
                    get_u64(then, args[size], p);
                    if let Some(count) = count {
                        get_u64(then, args[count], p);
                        then.binop(BinaryOp::I64Mul);
                    }
                    match align {
                        Some(align) => get_u64(then, args[align], p),
                        None => {
                            then.i64_const(0);
                        }
                    }
                }
                Shape::OutParam { out, size, align } => {
                    then.local_get(ret.expect("posix_memalign returns an int"))
                        .unop(UnaryOp::I32Eqz);
                    then.if_else(
                        InstrSeqType::Simple(Some(ValType::I64)),
                        |ok| {
                            ok.local_get(args[out]).load(
                                mem0,
                                ptr_load,
                                MemArg {
                                    align: ptr_align,
                                    offset: 0,
                                },
                            );
                            if p == ValType::I32 {
                                ok.unop(UnaryOp::I64ExtendUI32);
                            }
                        },
                        |failed| {
                            failed.i64_const(0);
                        },
                    );
                    get_u64(then, args[size], p);
                    get_u64(then, args[align], p);
                }
                Shape::Realloc { ptr, size } => {
                    get_u64(then, args[ptr], p);
                    get_u64(then, ret.expect("reallocating shapes return a pointer"), p);
                    get_u64(then, args[size], p);
                }
                Shape::Free { ptr } => {
                    get_u64(then, args[ptr], p);
                    then.i64_const(0).i64_const(0);
                }
            }
            then.local_get(sp0).call(infra.record);
        },
        |_| {},
    );
    if let Some(r) = ret {
        body.local_get(r);
    }
    let wrapper = b.finish(args, &mut module.funcs);
    swap_bodies(module, a.id, wrapper);
    module.funcs.delete(wrapper);
}

fn swap_bodies(module: &mut Module, a: FunctionId, b: FunctionId) {
    let ty = module.funcs.get(a).ty();
    let ka = std::mem::replace(
        &mut module.funcs.get_mut(a).kind,
        FunctionKind::Uninitialized(ty),
    );
    let kb = std::mem::replace(&mut module.funcs.get_mut(b).kind, ka);
    module.funcs.get_mut(a).kind = kb;
}
