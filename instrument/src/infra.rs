//! What an instrumented module gets besides its changed functions: the
//! shadow memory and its globals, the hook imports, the exports the leak
//! scan reads, and the helper functions the rewritten code calls
//! (`heapscope:record`, which appends an event record at the offsets of
//! [`abi::EventRecord`]; `heapscope:grow:N`; `heapscope:resize_heap`).

use heapscope_trace::abi;
use heapscope_trace::component_abi as cabi;
use walrus::ir::{BinaryOp, LoadKind, MemArg, StoreKind, UnaryOp, Value};
use walrus::{
    ConstExpr, FunctionBuilder, FunctionId, GlobalId, InstrSeqBuilder, LocalId, MemoryId, Module,
    ValType,
};

/// Everything the inserted code refers to.
pub(crate) struct Infra {
    /// The shadow stack pointer.
    pub sp: GlobalId,
    /// The allocator nesting counter.
    pub nest: GlobalId,
    /// The shadow memory: the stack, then the event buffer.
    pub shadow: MemoryId,
    /// The `grow` hook.
    pub hook_grow: FunctionId,
    /// `heapscope:record(tag|kind, a, b, c, sp)`: appends an event to the
    /// buffer, or calls the synchronous hook of its tag.
    pub record: FunctionId,
    /// The event buffer's write position and capacity.
    events: Pos,
    cap: GlobalId,
    /// In component mode: what the component's hooks need.
    pub comp: Option<Comp>,
}

/// Where the event buffer's write position lives: a global the host reads
/// through its export (core mode), or the header page of the shadow memory
/// (component mode, [`cabi::HEADER_EVENTS_POS`]).
#[derive(Clone, Copy)]
enum Pos {
    Global(GlobalId),
    Header,
}

impl Pos {
    fn get(self, b: &mut InstrSeqBuilder, shadow: MemoryId) {
        match self {
            Pos::Global(g) => {
                b.global_get(g);
            }
            Pos::Header => header_load(b, shadow, cabi::HEADER_EVENTS_POS),
        }
    }

    /// Set the position to the value `value` pushes.
    fn set(
        self,
        b: &mut InstrSeqBuilder,
        shadow: MemoryId,
        value: impl FnOnce(&mut InstrSeqBuilder),
    ) {
        match self {
            Pos::Global(g) => {
                value(b);
                b.global_set(g);
            }
            Pos::Header => {
                b.i32_const(0);
                value(b);
                b.store(
                    shadow,
                    StoreKind::I32 { atomic: false },
                    header_arg(cabi::HEADER_EVENTS_POS),
                );
            }
        }
    }
}

/// What a module instrumented for a component is given to work with (see
/// `trace::component_abi`).
pub(crate) struct CompSetup {
    /// [`crate::ComponentMode::module_id`].
    pub module_id: u32,
    /// The module's memories in index order (defined ones become imports).
    pub memories: Vec<MemoryId>,
    /// The module's `i32`/`i64` globals with their index: mirrored in the
    /// header.
    pub globals: Vec<(u32, GlobalId, ValType)>,
    /// How many globals the module has (the header's count).
    pub global_count: u32,
    /// The C stack pointer and the global keeping its lowest value.
    pub stack: Option<(GlobalId, GlobalId)>,
}

/// The component mode's part of [`Infra`].
pub(crate) struct Comp {
    /// Nonzero when the module has to register, or has growth to report,
    /// before its next hook call ([`Comp::attend`] does it).
    pub attention: GlobalId,
    /// How many `cabi_realloc` / `cabi_post_*` calls are running: no hook
    /// may be called then (the canonical ABI's `may_leave` is cleared).
    pub no_leave: GlobalId,
    /// `heapscope:attend()`: registers, reports growth made while no hook
    /// could be called; does nothing while `no_leave`.
    pub attend: FunctionId,
    /// `memory:N`, per memory.
    pub memory_hooks: Vec<FunctionId>,
    /// Per memory: the size in pages before its first growth while no hook
    /// could be called (-1: none), and the delta of a failed one plus one
    /// (0: none).
    pub pending: Vec<(GlobalId, GlobalId)>,
}

/// The memarg of an `i32` at a header field (the address pushed is 0).
fn header_arg(field: u32) -> MemArg {
    MemArg {
        align: 4,
        offset: field.into(),
    }
}

/// Push the `u32` header field `field`.
fn header_load(b: &mut InstrSeqBuilder, shadow: MemoryId, field: u32) {
    b.i32_const(0).load(
        shadow,
        LoadKind::I32 { atomic: false },
        MemArg {
            align: 4,
            offset: field.into(),
        },
    );
}

/// Store the `i32` that `value` pushes at header field `field`.
fn header_store(
    b: &mut InstrSeqBuilder,
    shadow: MemoryId,
    field: u32,
    value: impl FnOnce(&mut InstrSeqBuilder),
) {
    b.i32_const(0);
    value(b);
    b.store(
        shadow,
        StoreKind::I32 { atomic: false },
        MemArg {
            align: 4,
            offset: field.into(),
        },
    );
}

/// Store global `g` (an `i32` zero-extended, or an `i64`) as a `u64` at
/// header field `field`.
fn header_store_u64(
    b: &mut InstrSeqBuilder,
    shadow: MemoryId,
    field: u32,
    g: GlobalId,
    ty: ValType,
) {
    b.i32_const(0).global_get(g);
    if ty == ValType::I32 {
        b.unop(UnaryOp::I64ExtendUI32);
    }
    b.store(
        shadow,
        StoreKind::I64 { atomic: false },
        MemArg {
            align: 8,
            offset: field.into(),
        },
    );
}

impl Infra {
    /// Push the instance id the host gave at registration.
    pub fn push_id(&self, b: &mut InstrSeqBuilder) {
        header_load(b, self.shadow, cabi::HEADER_INSTANCE_ID);
    }

    /// Copy the shadow stack pointer into the header, as the host reads it
    /// at a hook call.
    pub fn mirror_sp(&self, b: &mut InstrSeqBuilder) {
        let sp = self.sp;
        header_store(b, self.shadow, cabi::HEADER_SHADOW_SP, |b| {
            b.global_get(sp);
        });
    }

    /// Component mode: `if attention { attend() }`.
    pub fn attend_if_needed(&self, b: &mut InstrSeqBuilder) {
        if let Some(c) = &self.comp {
            let attend = c.attend;
            b.global_get(c.attention).if_else(
                None,
                |t| {
                    t.call(attend);
                },
                |_| {},
            );
        }
    }
}

impl Infra {
    /// Add the shadow memory, its globals, the hook imports and the record
    /// helper to `module`. With `comp`, as `trace::component_abi` says:
    /// the module's defined memories and the shadow memory become imports,
    /// the hooks take the instance id first, and the state the host reads
    /// lives in the shadow memory's header page.
    pub fn add(module: &mut Module, comp: Option<CompSetup>) -> Infra {
        let shadow = match &comp {
            None => {
                let shadow = module.memories.add_local(
                    false,
                    false,
                    abi::SHADOW_PAGES + abi::EVENT_PAGES,
                    Some(abi::SHADOW_PAGES + abi::EVENT_PAGES),
                    None,
                );
                module.exports.add(abi::SHADOW_MEMORY_EXPORT, shadow);
                shadow
            }
            Some(c) => {
                // Defined memories become imports from the provider, in
                // index order after the module's own imports: each keeps
                // its index, its limits and its active data segments.
                for (i, &m) in c.memories.iter().enumerate() {
                    if module.memories.get(m).import.is_none() {
                        let name = cabi::provider_memory_name(i as u32);
                        let import = module.imports.add(cabi::MEMORY_MODULE, &name, m);
                        module.memories.get_mut(m).import = Some(import);
                    }
                }
                module
                    .add_import_memory(
                        cabi::MEMORY_MODULE,
                        cabi::SHADOW_IMPORT,
                        false,
                        false,
                        cabi::COMPONENT_SHADOW_PAGES,
                        Some(cabi::COMPONENT_SHADOW_PAGES),
                        None,
                    )
                    .0
            }
        };
        if comp.is_some() {
            // The provider's shadow memory starts zeroed: an active data
            // segment starts the buffer's position at its base (before
            // any start function runs).
            let data = module.data.add(
                walrus::DataKind::Active {
                    memory: shadow,
                    offset: ConstExpr::Value(Value::I32(cabi::HEADER_EVENTS_POS as i32)),
                },
                abi::EVENT_BASE.to_le_bytes().to_vec(),
            );
            module.memories.get_mut(shadow).data_segments.insert(data);
        }
        let zero = ConstExpr::Value(Value::I32(0));
        let sp = module
            .globals
            .add_local(ValType::I32, true, false, zero.clone());
        let nest = module.globals.add_local(ValType::I32, true, false, zero);
        module.globals.get_mut(sp).name = Some("heapscope:sp".into());
        if comp.is_none() {
            module.exports.add(abi::SHADOW_SP_EXPORT, sp);
        }
        module.globals.get_mut(nest).name = Some("heapscope:nest".into());
        let with_id = comp.is_some();
        let hook_alloc = import_hook(module, abi::HOOK_ALLOC, with_id);
        let hook_free = import_hook(module, abi::HOOK_FREE, with_id);
        let hook_realloc = import_hook(module, abi::HOOK_REALLOC, with_id);
        let hook_grow = import_hook(module, abi::HOOK_GROW, with_id);
        let hook_flush = import_hook(module, abi::HOOK_FLUSH, with_id);
        let mut infra = Infra {
            sp,
            nest,
            shadow,
            hook_grow,
            record: hook_flush,
            events: Pos::Header,
            cap: sp,
            comp: None,
        };
        let Some(c) = comp else {
            let (record, events, cap) = record_helper(
                module,
                &infra,
                [hook_alloc, hook_free, hook_realloc],
                hook_flush,
            );
            infra.record = record;
            infra.events = events;
            infra.cap = cap;
            return infra;
        };
        let register = import_hook(module, cabi::HOOK_REGISTER, true);
        let memory_hooks: Vec<FunctionId> = (0..c.memories.len())
            .map(|i| import_hook(module, &format!("{}{i}", cabi::HOOK_MEMORY_PREFIX), true))
            .collect();
        let mut flag = |name: &str, init: i32| {
            let g = module.globals.add_local(
                ValType::I32,
                true,
                false,
                ConstExpr::Value(Value::I32(init)),
            );
            module.globals.get_mut(g).name = Some(name.into());
            g
        };
        let attention = flag("heapscope:attention", 1);
        let no_leave = flag("heapscope:no_leave", 0);
        let pending: Vec<(GlobalId, GlobalId)> = (0..c.memories.len())
            .map(|i| {
                (
                    flag(&format!("heapscope:grown_from:{i}"), -1),
                    flag(&format!("heapscope:grow_failed:{i}"), 0),
                )
            })
            .collect();
        let attend = attend_helper(
            module,
            &infra,
            &c,
            register,
            &memory_hooks,
            &pending,
            attention,
            no_leave,
        );
        infra.comp = Some(Comp {
            attention,
            no_leave,
            attend,
            memory_hooks,
            pending,
        });
        let (record, events, cap) = record_helper(
            module,
            &infra,
            [hook_alloc, hook_free, hook_realloc],
            hook_flush,
        );
        infra.record = record;
        infra.events = events;
        infra.cap = cap;
        infra
    }

    /// The locals an allocator wrapper reports its events with
    /// ([`Infra::report`]); `sp` is its local holding the stack's length.
    pub fn report_locals(module: &mut Module, sp: LocalId) -> ReportLocals {
        let (i32t, i64t) = (ValType::I32, ValType::I64);
        ReportLocals {
            tag: module.locals.add(i32t),
            a: module.locals.add(i64t),
            b: module.locals.add(i64t),
            c: module.locals.add(i64t),
            sp,
            p: module.locals.add(i32t),
            i: module.locals.add(i32t),
        }
    }

    /// Report an event whose `a`, `b` and `c` are on the stack (as `i64`)
    /// and whose stack is `shadow[0..l.sp]`: appended in place when it fits
    /// what is left of the buffer (no call; this is every event but about
    /// one in several hundred), else through `heapscope:record`, which
    /// flushes or calls the synchronous hook.
    pub fn report(&self, b: &mut InstrSeqBuilder, tag_kind: u32, l: &ReportLocals) {
        b.local_set(l.c).local_set(l.b).local_set(l.a);
        // Component mode: register first (and report growth made where no
        // hook could be called), when there is any to do.
        self.attend_if_needed(b);
        b.i32_const(tag_kind as i32).local_set(l.tag);
        let r = Record {
            shadow: self.shadow,
            events: self.events,
            cap: self.cap,
            tag: l.tag,
            a: l.a,
            b: l.b,
            c: l.c,
            sp: l.sp,
            p: l.p,
            i: l.i,
        };
        // Fits: `events + need <= base + cap` (which implies `need <= cap`,
        // as `events >= base`).
        r.full(b);
        let record = self.record;
        b.if_else(
            None,
            |slow| {
                slow.local_get(r.tag)
                    .local_get(r.a)
                    .local_get(r.b)
                    .local_get(r.c)
                    .local_get(r.sp)
                    .call(record);
            },
            |fast| append_record(fast, &r),
        );
    }
}

/// The locals of an in-place report ([`Infra::report`]).
pub(crate) struct ReportLocals {
    tag: LocalId,
    a: LocalId,
    b: LocalId,
    c: LocalId,
    sp: LocalId,
    p: LocalId,
    i: LocalId,
}

/// Export what the host's leak scan reads: every `i32`/`i64` global
/// (`heapscope:global:N`), the C stack pointer, every memory.
pub(crate) fn export_for_leak_scan(
    module: &mut Module,
    memories: &[MemoryId],
    stack_pointer: Option<GlobalId>,
) {
    let globals: Vec<(GlobalId, ValType)> = module.globals.iter().map(|g| (g.id(), g.ty)).collect();
    for (i, (id, ty)) in globals.iter().enumerate() {
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
}

/// Add a global that keeps the lowest value the C stack pointer `sp` took
/// ([`abi::STACK_LOW_EXPORT`]): after every `global.set` of `sp`,
/// `low = min(low, sp)`. The leak scan leaves out the stack between it and
/// the pointer's value at exit (dead frames), whatever the stack's size.
pub(crate) fn track_stack_low(module: &mut Module, sp: GlobalId) -> Option<GlobalId> {
    use walrus::ir::{Binop, GlobalGet, GlobalSet, Instr, InstrSeq, Select, VisitorMut};
    let global = module.globals.get(sp);
    let (ty, init) = match (&global.kind, global.ty) {
        (walrus::GlobalKind::Local(init), ty @ (ValType::I32 | ValType::I64)) => (ty, init.clone()),
        _ => return None,
    };
    let low = module.globals.add_local(ty, true, false, init);
    module.globals.get_mut(low).name = Some("heapscope:stack_low".into());
    module.exports.add(abi::STACK_LOW_EXPORT, low);
    let lt = if ty == ValType::I64 {
        BinaryOp::I64LtU
    } else {
        BinaryOp::I32LtU
    };
    struct Track {
        sp: GlobalId,
        low: GlobalId,
        lt: BinaryOp,
    }
    impl VisitorMut for Track {
        fn start_instr_seq_mut(&mut self, seq: &mut InstrSeq) {
            if !seq
                .instrs
                .iter()
                .any(|(i, _)| matches!(i, Instr::GlobalSet(g) if g.global == self.sp))
            {
                return;
            }
            let old = std::mem::take(&mut seq.instrs);
            for (instr, loc) in old {
                let tracked = matches!(&instr, Instr::GlobalSet(g) if g.global == self.sp);
                seq.instrs.push((instr, loc));
                if tracked {
                    // low = sp < low ? sp : low
                    let (sp, low) = (self.sp, self.low);
                    for i in [
                        Instr::GlobalGet(GlobalGet { global: sp }),
                        Instr::GlobalGet(GlobalGet { global: low }),
                        Instr::GlobalGet(GlobalGet { global: sp }),
                        Instr::GlobalGet(GlobalGet { global: low }),
                        Instr::Binop(Binop { op: self.lt }),
                        Instr::Select(Select { ty: None }),
                        Instr::GlobalSet(GlobalSet { global: low }),
                    ] {
                        seq.instrs.push((i, loc));
                    }
                }
            }
        }
    }
    let mut track = Track { sp, low, lt };
    for f in module.funcs.iter_local_mut() {
        let entry = f.1.entry_block();
        walrus::ir::dfs_pre_order_mut(&mut track, f.1, entry);
    }
    Some(low)
}

/// Component mode's [`track_stack_low`]: the same global (not exported),
/// updated by a branch taken only when the stack pointer goes below it
/// (`if sp < low { low = sp }`), since in a component each update of the
/// low mark is also stored in the header ([`mirror_globals`]).
pub(crate) fn stack_low_branching(module: &mut Module, sp: GlobalId) -> Option<GlobalId> {
    use rayon::prelude::*;
    use walrus::ir::{self, Instr, InstrLocId};
    let global = module.globals.get(sp);
    let (ty, init) = match (&global.kind, global.ty) {
        (walrus::GlobalKind::Local(init), ty @ (ValType::I32 | ValType::I64)) => (ty, init.clone()),
        _ => return None,
    };
    let low = module.globals.add_local(ty, true, false, init);
    module.globals.get_mut(low).name = Some("heapscope:stack_low".into());
    let lt = if ty == ValType::I64 {
        BinaryOp::I64LtU
    } else {
        BinaryOp::I32LtU
    };
    module.funcs.par_iter_local_mut().for_each(|(_, f)| {
        let mut stack = vec![f.entry_block()];
        let mut hits = Vec::new();
        while let Some(seq) = stack.pop() {
            let mut found = false;
            for (instr, _) in &f.block(seq).instrs {
                if crate::plan::push_nested(instr, &mut stack) {
                    continue;
                }
                match instr {
                    Instr::GlobalSet(g) if g.global == sp => found = true,
                    _ => {}
                }
            }
            if found {
                hits.push(seq);
            }
        }
        for seq in hits {
            let old = std::mem::take(&mut f.block_mut(seq).instrs);
            let mut new = Vec::with_capacity(old.len() + 4);
            for (instr, loc) in old {
                let tracked = matches!(&instr, Instr::GlobalSet(g) if g.global == sp);
                new.push((instr, loc));
                if !tracked {
                    continue;
                }
                let consequent = {
                    let mut then = f.builder_mut().dangling_instr_seq(None);
                    then.global_get(sp).global_set(low);
                    then.id()
                };
                let alternative = f.builder_mut().dangling_instr_seq(None).id();
                let d = InstrLocId::default;
                new.extend([
                    (Instr::GlobalGet(ir::GlobalGet { global: sp }), d()),
                    (Instr::GlobalGet(ir::GlobalGet { global: low }), d()),
                    (Instr::Binop(ir::Binop { op: lt }), d()),
                    (
                        Instr::IfElse(ir::IfElse {
                            consequent,
                            alternative,
                        }),
                        d(),
                    ),
                ]);
            }
            f.block_mut(seq).instrs = new;
        }
    });
    Some(low)
}

/// Component mode: after every `global.set` of a global in `mirrors`,
/// store its value (as a `u64`) at each of its header fields, so that the
/// host reads the globals the leak scan needs from the shadow memory.
pub(crate) fn mirror_globals(
    module: &mut Module,
    shadow: MemoryId,
    mirrors: &rustc_hash::FxHashMap<GlobalId, (ValType, Vec<u32>)>,
) {
    use rayon::prelude::*;
    use walrus::ir::{self, Instr, InstrLocId};
    module.funcs.par_iter_local_mut().for_each(|(_, f)| {
        let mut stack = vec![f.entry_block()];
        while let Some(seq) = stack.pop() {
            let mut found = false;
            for (instr, _) in &f.block(seq).instrs {
                if crate::plan::push_nested(instr, &mut stack) {
                    continue;
                }
                match instr {
                    Instr::GlobalSet(g) if mirrors.contains_key(&g.global) => found = true,
                    _ => {}
                }
            }
            if !found {
                continue;
            }
            let old = std::mem::take(&mut f.block_mut(seq).instrs);
            let mut new = Vec::with_capacity(old.len() + 8);
            for (instr, loc) in old {
                let mirrored = match &instr {
                    Instr::GlobalSet(g) => mirrors.get(&g.global).map(|m| (g.global, m)),
                    _ => None,
                };
                new.push((instr, loc));
                let Some((global, (ty, fields))) = mirrored else {
                    continue;
                };
                let d = InstrLocId::default;
                for &field in fields {
                    new.push((
                        Instr::Const(ir::Const {
                            value: Value::I32(0),
                        }),
                        d(),
                    ));
                    new.push((Instr::GlobalGet(ir::GlobalGet { global }), d()));
                    if *ty == ValType::I32 {
                        new.push((
                            Instr::Unop(ir::Unop {
                                op: UnaryOp::I64ExtendUI32,
                            }),
                            d(),
                        ));
                    }
                    new.push((
                        Instr::Store(ir::Store {
                            memory: shadow,
                            kind: StoreKind::I64 { atomic: false },
                            arg: MemArg {
                                align: 8,
                                offset: field.into(),
                            },
                        }),
                        d(),
                    ));
                }
            }
            f.block_mut(seq).instrs = new;
        }
    });
}

/// Whether the canonical ABI calls the export `name` with `may_leave`
/// cleared (`cabi_realloc` and the adapter's two, `cabi_post_*`): no hook
/// may be called while it runs.
pub(crate) fn is_no_leave_export(name: &str) -> bool {
    matches!(
        name,
        "cabi_realloc" | "cabi_import_realloc" | "cabi_export_realloc"
    ) || name.starts_with("cabi_post_")
}

/// Component mode: every exported function is called through a wrapper
/// that keeps the header's export depth ([`cabi::HEADER_DEPTH`]), resets
/// the shadow stack pointer when entered at depth 0 (the host's call,
/// what the core host does itself before each call), mirrors it, and
/// registers the module on its first call. The wrappers of the
/// canonical ABI's `cabi_realloc` and `cabi_post_*` instead mark that no
/// hook may be called while they run, and open the buffer's reserve.
pub(crate) fn wrap_exports(module: &mut Module, infra: &Infra) {
    let Some(c) = &infra.comp else {
        return;
    };
    let exports: Vec<(walrus::ExportId, String, FunctionId)> = module
        .exports
        .iter()
        .filter_map(|e| match e.item {
            walrus::ExportItem::Function(f) => Some((e.id(), e.name.clone(), f)),
            _ => None,
        })
        .collect();
    let shadow = infra.shadow;
    for (export, name, f) in exports {
        let ty = module.types.get(module.funcs.get(f).ty()).clone();
        let (params, results) = (ty.params().to_vec(), ty.results().to_vec());
        let mut b = FunctionBuilder::new(&mut module.types, &params, &results);
        b.name(format!("heapscope:export:{name}"));
        let args: Vec<LocalId> = params.iter().map(|t| module.locals.add(*t)).collect();
        let depth = module.locals.add(ValType::I32);
        let no_leave = is_no_leave_export(&name);
        let mut body = b.func_body();
        header_load(&mut body, shadow, cabi::HEADER_DEPTH);
        body.local_tee(depth).unop(UnaryOp::I32Eqz).if_else(
            None,
            |t| {
                t.i32_const(0).global_set(infra.sp);
            },
            |_| {},
        );
        header_store(&mut body, shadow, cabi::HEADER_DEPTH, |v| {
            v.local_get(depth).i32_const(1).binop(BinaryOp::I32Add);
        });
        infra.mirror_sp(&mut body);
        if no_leave {
            body.global_get(c.no_leave)
                .i32_const(1)
                .binop(BinaryOp::I32Add)
                .global_set(c.no_leave);
            body.i32_const(abi::EVENT_BYTES as i32)
                .global_set(infra.cap);
        } else {
            infra.attend_if_needed(&mut body);
        }
        for &a in &args {
            body.local_get(a);
        }
        body.call(f);
        if no_leave {
            body.global_get(c.no_leave)
                .i32_const(1)
                .binop(BinaryOp::I32Sub)
                .global_set(c.no_leave);
            body.global_get(c.no_leave).unop(UnaryOp::I32Eqz).if_else(
                None,
                |t| {
                    t.i32_const((abi::EVENT_BYTES - cabi::NO_LEAVE_RESERVE) as i32)
                        .global_set(infra.cap);
                },
                |_| {},
            );
        }
        header_store(&mut body, shadow, cabi::HEADER_DEPTH, |v| {
            v.local_get(depth);
        });
        let wrapper = b.finish(args, &mut module.funcs);
        module.exports.get_mut(export).item = walrus::ExportItem::Function(wrapper);
    }
}

/// Import hook `name` with the parameters [`abi::hook_params`] gives, or
/// with `with_id` those of [`cabi::core_hook_params`] (the instance id
/// first; `register` returns the id).
fn import_hook(module: &mut Module, name: &str, with_id: bool) -> FunctionId {
    let params = if with_id {
        cabi::core_hook_params(name).expect("a hook of the component ABI")
    } else {
        abi::hook_params(name).expect("a hook of the ABI").to_vec()
    };
    let params: Vec<ValType> = params
        .iter()
        .map(|p| match p {
            abi::HookParam::I32 => ValType::I32,
            abi::HookParam::I64 => ValType::I64,
        })
        .collect();
    let results: &[ValType] = if with_id && name == cabi::HOOK_REGISTER {
        &[ValType::I32]
    } else {
        &[]
    };
    let ty = standalone_type(module, &params, results);
    let (f, _) = module.add_import_func(abi::IMPORT_MODULE, name, ty);
    module.funcs.get_mut(f).name = Some(format!("{}:{name}", abi::IMPORT_MODULE));
    f
}

/// A function type `params -> ()` of its own: the module's identical type
/// when that one stands alone, else a new one. An import must match the
/// host's type exactly, and a `(func)` inside a rec group with other types
/// is a different type from a lone `(func)` (GC's iso-recursive types), so
/// reusing it made the instrumented module fail to instantiate.
fn standalone_type(module: &mut Module, params: &[ValType], results: &[ValType]) -> walrus::TypeId {
    let ty = module.types.add(params, results);
    let alone = module
        .types
        .rec_group_for_type(ty)
        .is_none_or(|g| g.types.len() == 1);
    if alone {
        return ty;
    }
    let func = walrus::CompositeType::Function(walrus::FunctionType::new(
        params.to_vec().into_boxed_slice(),
        results.to_vec().into_boxed_slice(),
    ));
    module.types.add_rec_group(1, |_| vec![(func, true, None)])[0]
}

/// Push `local` as an i64, zero-extending an i32.
pub(crate) fn get_u64(b: &mut InstrSeqBuilder, local: LocalId, ty: ValType) {
    b.local_get(local);
    if ty == ValType::I32 {
        b.unop(UnaryOp::I64ExtendUI32);
    }
}

/// The locals and globals of `heapscope:record`.
#[derive(Clone, Copy)]
struct Record {
    shadow: MemoryId,
    /// The buffer's write position and capacity.
    events: Pos,
    cap: GlobalId,
    /// The parameters: tag and kind, a, b, c, the stack's length.
    tag: LocalId,
    a: LocalId,
    b: LocalId,
    c: LocalId,
    sp: LocalId,
    /// Where the record goes, and the copy's index.
    p: LocalId,
    i: LocalId,
}

impl Record {
    /// Push the bytes the record needs: header, stack and the last chunk
    /// the copy rounds up to ([`COPY_CHUNK`]).
    fn need(&self, body: &mut InstrSeqBuilder) {
        body.local_get(self.sp)
            .i32_const((abi::EVENT_HEADER + COPY_CHUNK) as i32)
            .binop(BinaryOp::I32Add);
    }

    /// Push whether the record does not fit what is left of the buffer.
    fn full(&self, b: &mut InstrSeqBuilder) {
        self.events.get(b, self.shadow);
        self.need(b);
        b.binop(BinaryOp::I32Add)
            .i32_const(abi::EVENT_BASE as i32)
            .global_get(self.cap)
            .binop(BinaryOp::I32Add)
            .binop(BinaryOp::I32GtU);
    }
}

/// `fn heapscope:record(tag_kind: i32, a: i64, b: i64, c: i64, sp: i32)`:
/// appends an event record (see `trace::abi`, "The event buffer") and its
/// stack to the buffer, calling `flush` first when it would not fit; a
/// record that could never fit, or any when the host set the capacity to 0,
/// goes to the synchronous hook of its tag instead. In component mode,
/// inside `cabi_realloc` or `cabi_post_*` (no hook may be called there) it
/// counts such a record in the header's [`cabi::HEADER_LOST_EVENTS`]
/// instead.
fn record_helper(
    module: &mut Module,
    infra: &Infra,
    hooks: [FunctionId; 3],
    hook_flush: FunctionId,
) -> (FunctionId, Pos, GlobalId) {
    let (i32t, i64t) = (ValType::I32, ValType::I64);
    let shadow = infra.shadow;
    // A mutable i32 global, named (and exported for the core host).
    let comp = infra.comp.is_some();
    let mut global = |name: &str, export: &str, init: u32| {
        let g =
            module
                .globals
                .add_local(i32t, true, false, ConstExpr::Value(Value::I32(init as i32)));
        module.globals.get_mut(g).name = Some(name.into());
        if !comp {
            module.exports.add(export, g);
        }
        g
    };
    let events = if comp {
        Pos::Header
    } else {
        Pos::Global(global(
            "heapscope:events",
            abi::EVENTS_EXPORT,
            abi::EVENT_BASE,
        ))
    };
    // A start function runs while the module is instantiated, before the
    // host can read the buffer: a trap there would lose its events. So a
    // module with one hands every event to the host as it happens until
    // the host raises the capacity, once instantiated. In a component the
    // host holds the buffer from the registration on, whenever it is; it
    // never writes the capacity, which keeps the buffer's last bytes for
    // the calls that may not flush (they raise it while they run).
    let initial_cap = if comp {
        abi::EVENT_BYTES - cabi::NO_LEAVE_RESERVE
    } else {
        abi::initial_events_cap(module.start.is_some())
    };
    let cap = global("heapscope:events_cap", abi::EVENTS_CAP_EXPORT, initial_cap);
    let params = [i32t, i64t, i64t, i64t, i32t];
    let args: Vec<LocalId> = params.iter().map(|t| module.locals.add(*t)).collect();
    let r = Record {
        shadow,
        events,
        cap,
        tag: args[0],
        a: args[1],
        b: args[2],
        c: args[3],
        sp: args[4],
        p: module.locals.add(i32t),
        i: module.locals.add(i32t),
    };
    // Component mode, where no hook may be called: count the record lost
    // and return.
    let lost = |b: &mut InstrSeqBuilder, out: walrus::ir::InstrSeqId| {
        if let Some(c) = &infra.comp {
            b.global_get(c.no_leave).if_else(
                None,
                |t| {
                    header_store(t, shadow, cabi::HEADER_LOST_EVENTS, |v| {
                        header_load(v, shadow, cabi::HEADER_LOST_EVENTS);
                        v.i32_const(1).binop(BinaryOp::I32Add);
                    });
                    t.br(out);
                },
                |_| {},
            );
        }
    };
    let mut f = FunctionBuilder::new(&mut module.types, &params, &[]);
    f.name("heapscope:record".into());
    let mut body = f.func_body();
    body.block(None, |out| {
        let out_id = out.id();
        out.block(None, |to_sync| {
            let sync_id = to_sync.id();
            // A stack the buffer could never hold, or buffering turned off.
            r.need(to_sync);
            to_sync
                .global_get(cap)
                .binop(BinaryOp::I32GtU)
                .br_if(sync_id);
            // Full: let the host empty it; if it did not, go synchronous
            // (checked again only after a flush).
            r.full(to_sync);
            to_sync.if_else(
                None,
                |f| {
                    lost(f, out_id);
                    if infra.comp.is_some() {
                        // The host reads the buffer in `flush`; the guest
                        // empties it after.
                        infra.mirror_sp(f);
                        infra.push_id(f);
                        f.call(hook_flush);
                        events.set(f, shadow, |v| {
                            v.i32_const(abi::EVENT_BASE as i32);
                        });
                    } else {
                        f.call(hook_flush);
                    }
                    r.full(f);
                    f.br_if(sync_id);
                },
                |_| {},
            );
            append_record(to_sync, &r);
            to_sync.br(out_id);
        });
        lost(out, out_id);
        synchronous_hook(out, &r, hooks, infra);
    });
    (f.finish(args, &mut module.funcs), events, cap)
}

/// Write the record at the buffer's write position (the header at the
/// offsets of [`abi::EventRecord`], then the stack), and publish it.
fn append_record(w: &mut InstrSeqBuilder, r: &Record) {
    let word = |align: u32, offset: u64| MemArg { align, offset };
    let (shadow, p, i, sp) = (r.shadow, r.p, r.i, r.sp);
    r.events.get(w, shadow);
    w.local_set(p);
    w.local_get(p)
        .local_get(r.tag)
        .store(shadow, StoreKind::I32 { atomic: false }, word(4, 0));
    for (v, offset) in [
        (r.a, abi::EVENT_A_OFFSET),
        (r.b, abi::EVENT_B_OFFSET),
        (r.c, abi::EVENT_C_OFFSET),
    ] {
        w.local_get(p).local_get(v).store(
            shadow,
            StoreKind::I64 { atomic: false },
            word(4, offset.into()),
        );
    }
    w.local_get(p).local_get(sp).store(
        shadow,
        StoreKind::I32 { atomic: false },
        word(4, abi::EVENT_STACK_LEN_OFFSET.into()),
    );
    // Copy the stack COPY_CHUNK bytes at a time, as 16-byte vectors, at
    // least once (an empty stack copies one chunk nobody reads): a stack
    // of 19 frames is two turns of the loop where it was ten of eight
    // bytes. The bytes past the stack land beyond the published end and
    // within what `need` asked for; those read past it are the shadow
    // memory's own.
    w.i32_const(0).local_set(i);
    w.loop_(None, |lp| {
        let again = lp.id();
        for k in 0..COPY_CHUNK / 16 {
            lp.local_get(p).local_get(i).binop(BinaryOp::I32Add);
            lp.local_get(i)
                .load(shadow, LoadKind::V128, word(4, (16 * k).into()));
            lp.store(
                shadow,
                StoreKind::V128,
                word(4, (abi::EVENT_HEADER + 16 * k).into()),
            );
        }
        lp.local_get(i)
            .i32_const(COPY_CHUNK as i32)
            .binop(BinaryOp::I32Add)
            .local_tee(i)
            .local_get(sp)
            .binop(BinaryOp::I32LtU)
            .br_if(again);
    });
    // Published last: a trap before this leaves no half record.
    r.events.set(w, shadow, |v| {
        v.local_get(p)
            .i32_const(abi::EVENT_HEADER as i32)
            .binop(BinaryOp::I32Add)
            .local_get(sp)
            .binop(BinaryOp::I32Add);
    });
}

/// Bytes the record helper copies of a stack per turn of its loop (four
/// `v128` loads and stores); a record needs this much room past its stack.
const COPY_CHUNK: u32 = 64;

/// Call the synchronous hook of the record's tag with its arguments.
fn synchronous_hook(
    out: &mut InstrSeqBuilder,
    r: &Record,
    [hook_alloc, hook_free, hook_realloc]: [FunctionId; 3],
    infra: &Infra,
) {
    let tag = r.tag;
    if infra.comp.is_some() {
        infra.mirror_sp(out);
    }
    // The hook's first arguments: the instance id (component mode), the
    // kind.
    let kind = |s: &mut InstrSeqBuilder| {
        if infra.comp.is_some() {
            infra.push_id(s);
        }
        s.local_get(tag)
            .i32_const(abi::EVENT_KIND_MASK as i32)
            .binop(BinaryOp::I32And);
    };
    let is = |s: &mut InstrSeqBuilder, t: u32| {
        s.local_get(tag)
            .i32_const(abi::EVENT_TAG_SHIFT as i32)
            .binop(BinaryOp::I32ShrU)
            .i32_const(t as i32)
            .binop(BinaryOp::I32Eq);
    };
    let (a, b, c, sp) = (r.a, r.b, r.c, r.sp);
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
                // A reallocation's check has no synchronous hook: one whose
                // stack does not fit the buffer goes unchecked (the
                // reallocation itself is still reported).
                |other| {
                    is(other, abi::EVENT_ALLOC);
                    other.if_else(
                        None,
                        |al| {
                            kind(al);
                            al.local_get(a).local_get(b).local_get(c).local_get(sp);
                            al.call(hook_alloc);
                        },
                        |_| {},
                    );
                },
            );
        },
    );
}

/// `fn heapscope:grow:N(delta) -> old`: `memory.grow` plus its hook. In
/// component mode, registers first when it has not, and tells the host the
/// memory's new size (`memory:N`) before the growth; inside
/// `cabi_realloc` or `cabi_post_*` (no hook may be called) it leaves both
/// for [`Comp::attend`].
pub(crate) fn grow_helper(
    module: &mut Module,
    infra: &Infra,
    memory: MemoryId,
    index: u32,
) -> FunctionId {
    let ty = if module.memories.get(memory).memory64 {
        ValType::I64
    } else {
        ValType::I32
    };
    let mut b = FunctionBuilder::new(&mut module.types, &[ty], &[ty]);
    b.name(format!("heapscope:grow:{index}"));
    let delta = module.locals.add(ty);
    let result = module.locals.add(ty);
    let bytes = module.locals.add(ValType::I64);
    let page_log2 = module.memories.get(memory).page_size_log2.unwrap_or(16);
    let mut body = b.func_body();
    infra.attend_if_needed(&mut body);
    body.local_get(delta).memory_grow(memory).local_set(result);
    let hook = |body: &mut InstrSeqBuilder| {
        if let Some(c) = &infra.comp {
            // Grown: the host's view of the memory first.
            body.local_get(result)
                .i32_const(-1)
                .binop(BinaryOp::I32Ne)
                .if_else(
                    None,
                    |t| {
                        infra.mirror_sp(t);
                        infra.push_id(t);
                        t.i32_const(index as i32).i32_const(0);
                        push_memory_bytes(t, page_log2, memory, bytes);
                        t.call(c.memory_hooks[index as usize]);
                    },
                    |_| {},
                );
            infra.mirror_sp(body);
            infra.push_id(body);
        }
        body.i32_const(index as i32);
        get_u64(body, delta, ty);
        body.local_get(result);
        if ty == ValType::I32 {
            // -1 stays -1.
            body.unop(UnaryOp::I64ExtendSI32);
        }
        body.global_get(infra.sp).call(infra.hook_grow);
    };
    match &infra.comp {
        None => hook(&mut body),
        Some(c) => {
            let (from, failed) = c.pending[index as usize];
            let attention = c.attention;
            body.global_get(c.no_leave).if_else(
                None,
                |deferred| {
                    deferred
                        .local_get(result)
                        .i32_const(-1)
                        .binop(BinaryOp::I32Eq)
                        .if_else(
                            None,
                            |f| {
                                f.local_get(delta)
                                    .i32_const(1)
                                    .binop(BinaryOp::I32Add)
                                    .global_set(failed);
                            },
                            |ok| {
                                // The size before the first such growth.
                                ok.global_get(from)
                                    .i32_const(-1)
                                    .binop(BinaryOp::I32Eq)
                                    .if_else(
                                        None,
                                        |first| {
                                            first.local_get(result).global_set(from);
                                        },
                                        |_| {},
                                    );
                            },
                        );
                    deferred.i32_const(1).global_set(attention);
                },
                |now| hook(now),
            );
        }
    }
    body.local_get(result);
    b.finish(vec![delta], &mut module.funcs)
}

/// Push the length in bytes (`i32`) of memory `memory` as a `list<u8>`
/// can hold it: its size, or `u32::MAX` for a memory of 4 GiB. `tmp` is an
/// `i64` local.
fn push_memory_bytes(b: &mut InstrSeqBuilder, page_log2: u32, memory: MemoryId, tmp: LocalId) {
    const MAX: i64 = u32::MAX as i64;
    b.memory_size(memory)
        .unop(UnaryOp::I64ExtendUI32)
        .i64_const(page_log2.into())
        .binop(BinaryOp::I64Shl)
        .local_tee(tmp)
        .i64_const(MAX)
        .local_get(tmp)
        .i64_const(MAX)
        .binop(BinaryOp::I64LtU)
        .select(None)
        .unop(UnaryOp::I32WrapI64);
}

/// `fn heapscope:attend()` (component mode): registers the module when it
/// has not (`register`, the header's constant fields and the globals'
/// mirror, then `memory:N` for every memory), reports the growth made
/// where no hook could be called, and clears `attention`; does nothing
/// while `no_leave` (inside `cabi_realloc` or `cabi_post_*`).
#[allow(clippy::too_many_arguments)]
fn attend_helper(
    module: &mut Module,
    infra: &Infra,
    c: &CompSetup,
    register: FunctionId,
    memory_hooks: &[FunctionId],
    pending: &[(GlobalId, GlobalId)],
    attention: GlobalId,
    no_leave: GlobalId,
) -> FunctionId {
    let shadow = infra.shadow;
    let page_log2: Vec<u32> = c
        .memories
        .iter()
        .map(|&m| module.memories.get(m).page_size_log2.unwrap_or(16))
        .collect();
    let mut b = FunctionBuilder::new(&mut module.types, &[], &[]);
    b.name("heapscope:attend".into());
    let id = module.locals.add(ValType::I32);
    let bytes = module.locals.add(ValType::I64);
    let mut body = b.func_body();
    body.block(None, |out| {
        let out_id = out.id();
        out.global_get(no_leave).br_if(out_id);
        header_load(out, shadow, cabi::HEADER_INSTANCE_ID);
        out.unop(UnaryOp::I32Eqz).if_else(
            None,
            |reg| {
                header_store(reg, shadow, cabi::HEADER_GLOBAL_COUNT, |v| {
                    v.i32_const(c.global_count as i32);
                });
                header_store(reg, shadow, cabi::HEADER_HAS_STACK_POINTER, |v| {
                    v.i32_const(i32::from(c.stack.is_some()));
                });
                for &(i, g, ty) in &c.globals {
                    header_store_u64(reg, shadow, cabi::HEADER_GLOBALS + 8 * i, g, ty);
                }
                if let Some((sp, low)) = c.stack {
                    let ty = module.globals.get(sp).ty;
                    header_store_u64(reg, shadow, cabi::HEADER_STACK_POINTER, sp, ty);
                    header_store_u64(reg, shadow, cabi::HEADER_STACK_LOW, low, ty);
                }
                infra.mirror_sp(reg);
                reg.i32_const(c.module_id as i32)
                    .i32_const(0)
                    .i32_const(cabi::SHADOW_LEN as i32)
                    .call(register)
                    .local_set(id);
                header_store(reg, shadow, cabi::HEADER_INSTANCE_ID, |v| {
                    v.local_get(id);
                });
                for (n, (&m, &hook)) in c.memories.iter().zip(memory_hooks).enumerate() {
                    reg.local_get(id).i32_const(n as i32).i32_const(0);
                    push_memory_bytes(reg, page_log2[n], m, bytes);
                    reg.call(hook);
                }
            },
            |_| {},
        );
        // Growth made where no hook could be called: the new size, then
        // the growth as one, from the size before the first (its stack is
        // not known: empty).
        for (n, (&m, &(from, failed))) in c.memories.iter().zip(pending).enumerate() {
            out.global_get(from)
                .i32_const(-1)
                .binop(BinaryOp::I32Ne)
                .if_else(
                    None,
                    |g| {
                        infra.mirror_sp(g);
                        infra.push_id(g);
                        g.i32_const(n as i32).i32_const(0);
                        push_memory_bytes(g, page_log2[n], m, bytes);
                        g.call(memory_hooks[n]);
                        infra.push_id(g);
                        g.i32_const(n as i32)
                            .memory_size(m)
                            .global_get(from)
                            .binop(BinaryOp::I32Sub)
                            .unop(UnaryOp::I64ExtendUI32)
                            .global_get(from)
                            .unop(UnaryOp::I64ExtendUI32)
                            .i32_const(0)
                            .call(infra.hook_grow);
                        g.i32_const(-1).global_set(from);
                    },
                    |_| {},
                );
            out.global_get(failed).if_else(
                None,
                |f| {
                    infra.mirror_sp(f);
                    infra.push_id(f);
                    f.i32_const(n as i32)
                        .global_get(failed)
                        .i32_const(1)
                        .binop(BinaryOp::I32Sub)
                        .unop(UnaryOp::I64ExtendUI32)
                        .i64_const(-1)
                        .i32_const(0)
                        .call(infra.hook_grow);
                    f.i32_const(0).global_set(failed);
                },
                |_| {},
            );
        }
        out.i32_const(0).global_set(attention);
    });
    b.finish(vec![], &mut module.funcs)
}

/// The import emscripten's libc grows the heap through.
pub(crate) const EMSCRIPTEN_RESIZE_HEAP: &str = "emscripten_resize_heap";

/// `fn heapscope:resize_heap(size) -> ok`: calls emscripten's
/// `emscripten_resize_heap` import and reports the growth it made (or the
/// failure) as a `memory.grow` of memory 0, comparing `memory.size` before
/// and after.
pub(crate) fn resize_heap_helper(
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
