//! The plan of a rewrite: which allocator functions to wrap, which
//! functions can reach them (the call graph), and for each such function
//! the instruction sequences to change and the ids of its call sites.
//! Nothing here changes a function body; [`crate::rewrite`] does that.

use crate::discover::{self, Allocator};
use crate::{InstrumentError, Options};
use heapscope_trace::abi::{self, AllocFn};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;
use walrus::ir::{self, Instr, InstrSeqId, Value};
use walrus::{
    ConstExpr, ElementItems, FunctionId, FunctionKind, GlobalId, LocalId, Module, TypeId, ValType,
};

/// The allocator functions to wrap, with warnings about what was found;
/// none, with a warning, when nothing that allocates was (only growth is
/// recorded); an error when `--alloc-fn` cannot be honoured.
pub(crate) fn allocators(
    module: &Module,
    opts: &Options,
    index_of: &FxHashMap<FunctionId, u32>,
    ptr_ty: ValType,
    warnings: &mut Vec<String>,
) -> Result<Vec<Allocator>, InstrumentError> {
    let mut allocators = discover::discover(module, &opts.alloc_fns, index_of, ptr_ty, warnings)
        .map_err(InstrumentError::AllocFn)?;
    if let Some(glue) = &opts.glue {
        crate::glue::add_roles(module, glue, ptr_ty, &mut allocators, warnings);
    }
    crate::exported::derive_from_exports(module, ptr_ty, &mut allocators);
    crate::shapes::recognise(module, ptr_ty, &mut allocators, warnings);
    allocators.sort_by_key(|a| (a.role, index_of.get(&a.id).copied()));
    if !allocators.iter().any(|a| a.role.hook() != abi::HOOK_FREE) {
        // Static buffers and `memory.grow` (hash-wasm, xxhash-wasm), or an
        // allocator of the module's own nobody named: the growth is still
        // recorded. Frees alone would be frees of blocks never seen.
        allocators.clear();
        warnings.push(NO_ALLOCATOR_WARNING.into());
        return Ok(allocators);
    }
    if !allocators.iter().any(|a| a.role.hook() == abi::HOOK_FREE) {
        warnings.push(format!("{NO_FREE_WARNING}: every block will look leaked"));
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
    Ok(allocators)
}

/// The warning of a module in which no allocating function was found.
pub(crate) const NO_ALLOCATOR_WARNING: &str = "no allocator found: only memory growth is recorded; if the module allocates through a function of its own, name it with --alloc-fn";

/// How the warning that no freeing function was found starts (withdrawn
/// when frees inlined into the code that frees are hooked instead).
pub(crate) const NO_FREE_WARNING: &str = "no freeing function found";

/// What one function does that matters for reachability.
#[derive(Default)]
pub(crate) struct Calls {
    pub direct: FxHashSet<FunctionId>,
    pub indirect: FxHashSet<TypeId>,
    pub grows: bool,
    pub refs: Vec<FunctionId>,
    /// The instruction sequences that hold a call, a tail call or a
    /// `memory.grow`, in
    /// the order [`Calls::scan`] visits them: the only ones the rewrite
    /// looks at again.
    pub call_seqs: Vec<InstrSeqId>,
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
                if crate::plan::push_nested(instr, &mut stack) {
                    continue;
                }
                match instr {
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

/// The call graph: what each local function calls (scanned on every
/// core), and the functions whose address is taken (by `ref.func`, an
/// element segment or a global's initialiser).
pub(crate) fn call_graph(module: &Module) -> (FxHashMap<FunctionId, Calls>, FxHashSet<FunctionId>) {
    let calls: FxHashMap<FunctionId, Calls> = module
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
    (calls, address_taken)
}

/// What can reach an allocator or a `memory.grow`.
pub(crate) struct Reach {
    /// Functions that can.
    pub funcs: FxHashSet<FunctionId>,
    /// Types whose indirect calls can.
    pub types: FxHashSet<TypeId>,
}

/// Functions that can reach an allocator or a `memory.grow`, found by a
/// breadth-first walk of the reversed call graph. An indirect call of type
/// T reaches if any address-taken function of type T does.
pub(crate) fn reachable(
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

/// The module's C stack pointer: the global the name section calls
/// `__stack_pointer`; without global names, wasm-ld's convention, the
/// first mutable global, if it starts at a plausible stack top.
pub(crate) fn stack_pointer(module: &Module) -> Option<GlobalId> {
    let globals: Vec<_> = module.globals.iter().collect();
    if let Some(g) = globals
        .iter()
        .find(|g| g.name.as_deref() == Some("__stack_pointer"))
    {
        return Some(g.id());
    }
    if globals.iter().any(|g| g.name.is_some()) {
        return None;
    }
    let first = globals.iter().find(|g| g.mutable)?;
    let init = match first.kind {
        walrus::GlobalKind::Local(ConstExpr::Value(Value::I32(v))) => v as i64,
        walrus::GlobalKind::Local(ConstExpr::Value(Value::I64(v))) => v,
        _ => return None,
    };
    (init > 0 && init % 16 == 0).then_some(first.id())
}

/// How one function that can reach a hook is changed.
pub(crate) struct Plan {
    /// Its index in the original module.
    pub func_index: u32,
    /// Local holding `sp` at entry: this frame's slot.
    pub entry_sp: LocalId,
    /// Local holding `entry + 4`: where its callees' frames start.
    pub entry4: LocalId,
    /// Its sequences that hold a call, a tail call or a `memory.grow`.
    pub call_seqs: Vec<InstrSeqId>,
    /// Per sequence of `call_seqs`: its sites and its tail calls.
    pub seq_counts: Vec<(usize, usize)>,
    /// The one frame of its sites until the collector symbolises them.
    pub frame: abi::SiteFrame,
    /// Id of its first site.
    pub first_site: u32,
}

/// The plans of the functions that can reach a hook, in original function
/// order, each with its name, the sites and tail calls of each of its call
/// sequences (counted on every core) and the id of its first site. `site`
/// says whether an instruction becomes a call site.
pub(crate) fn plans(
    module: &mut Module,
    reaching: &Reach,
    calls: &mut FxHashMap<FunctionId, Calls>,
    index_of: &FxHashMap<FunctionId, u32>,
    site: &(impl Fn(&Instr) -> bool + Sync),
) -> (Vec<FunctionId>, FxHashMap<FunctionId, Plan>) {
    let mut order: Vec<FunctionId> = reaching
        .funcs
        .iter()
        .copied()
        .filter(|f| calls.contains_key(f))
        .collect();
    order.sort_by_key(|f| index_of.get(f).copied().unwrap_or(u32::MAX));
    let mut plans: FxHashMap<FunctionId, Plan> = FxHashMap::default();
    for &fid in &order {
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
    count_sites(module, &mut plans, site);
    let mut next_site = 0u32;
    for fid in &order {
        if let Some(plan) = plans.get_mut(fid) {
            plan.first_site = next_site;
            next_site += plan.seq_counts.iter().map(|c| c.0 as u32).sum::<u32>();
        }
    }
    (order, plans)
}

/// Per planned function, on every core: its name (the sites' frame until
/// the collector symbolises them) and each call sequence's sites and tail
/// calls.
fn count_sites(
    module: &Module,
    plans: &mut FxHashMap<FunctionId, Plan>,
    site: &(impl Fn(&Instr) -> bool + Sync),
) {
    type Counted = (FunctionId, String, Vec<(usize, usize)>);
    // A function the name section does not name is known by its export
    // name, when it has one (emscripten's release builds keep exports and
    // drop names): `_sqlite3_exec` tells more than `func[1758]`.
    let exported: FxHashMap<FunctionId, &str> = module
        .exports
        .iter()
        .filter_map(|e| match e.item {
            walrus::ExportItem::Function(id) => Some((id, e.name.as_str())),
            _ => None,
        })
        .collect();
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
                .or_else(|| exported.get(&f.id()).copied())
                .map(discover::demangle)
                .unwrap_or_else(|| format!("func[{}]", plan.func_index));
            let per_seq = plan
                .call_seqs
                .iter()
                .map(|&seq| {
                    let instrs = &local.block(seq).instrs;
                    let sites = instrs.iter().filter(|(i, _)| site(i)).count();
                    let tails = instrs.iter().filter(|(i, _)| is_tail_call(i)).count();
                    (sites, tails)
                })
                .collect();
            Some((f.id(), name, per_seq))
        })
        .collect();
    for (fid, name, per_seq) in counted {
        if let Some(plan) = plans.get_mut(&fid) {
            plan.frame.function = name;
            plan.seq_counts = per_seq;
        }
    }
}

/// Whether `instr` is a tail call, before which a changed function hands
/// its slot to the callee.
pub(crate) fn is_tail_call(instr: &Instr) -> bool {
    matches!(
        instr,
        Instr::ReturnCall(_) | Instr::ReturnCallIndirect(_) | Instr::ReturnCallRef(_)
    )
}

/// Push the instruction sequences nested in `instr` onto `seqs` (a block's
/// or a loop's body, both arms of an `if`, a `try_table`'s body, a legacy
/// `try`'s body and handlers): the one walk every pass over a function's
/// instructions takes. Whether `instr` had any.
pub(crate) fn push_nested(instr: &Instr, seqs: &mut Vec<InstrSeqId>) -> bool {
    match instr {
        Instr::Block(ir::Block { seq }) | Instr::Loop(ir::Loop { seq }) => seqs.push(*seq),
        Instr::IfElse(ir::IfElse {
            consequent,
            alternative,
        }) => seqs.extend([*consequent, *alternative]),
        Instr::TryTable(t) => seqs.push(t.seq),
        Instr::Try(t) => {
            seqs.push(t.seq);
            for c in &t.catches {
                if let ir::LegacyCatch::Catch { handler, .. }
                | ir::LegacyCatch::CatchAll { handler } = c
                {
                    seqs.push(*handler);
                }
            }
        }
        _ => return false,
    }
    true
}
