//! What an instrumented module gets besides its changed functions: the
//! shadow memory and its globals, the hook imports, the exports the leak
//! scan reads, and the helper functions the rewritten code calls
//! (`heapscope:record`, which appends an event record at the offsets of
//! [`abi::EventRecord`]; `heapscope:grow:N`; `heapscope:resize_heap`).

use heapscope_trace::abi;
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
    events: GlobalId,
    cap: GlobalId,
}

impl Infra {
    /// Add the shadow memory, its globals, the hook imports and the record
    /// helper to `module`.
    pub fn add(module: &mut Module) -> Infra {
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
        let hook_alloc = import_hook(module, abi::HOOK_ALLOC);
        let hook_free = import_hook(module, abi::HOOK_FREE);
        let hook_realloc = import_hook(module, abi::HOOK_REALLOC);
        let hook_grow = import_hook(module, abi::HOOK_GROW);
        let hook_flush = import_hook(module, abi::HOOK_FLUSH);
        let (record, events, cap) = record_helper(
            module,
            shadow,
            [hook_alloc, hook_free, hook_realloc],
            hook_flush,
        );
        Infra {
            sp,
            nest,
            shadow,
            hook_grow,
            record,
            events,
            cap,
        }
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
pub(crate) fn track_stack_low(module: &mut Module, sp: GlobalId) {
    use walrus::ir::{Binop, GlobalGet, GlobalSet, Instr, InstrSeq, Select, VisitorMut};
    let global = module.globals.get(sp);
    let (ty, init) = match (&global.kind, global.ty) {
        (walrus::GlobalKind::Local(init), ty @ (ValType::I32 | ValType::I64)) => (ty, init.clone()),
        _ => return,
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
}

/// Import hook `name` with the parameters [`abi::hook_params`] gives.
fn import_hook(module: &mut Module, name: &str) -> FunctionId {
    let params: Vec<ValType> = abi::hook_params(name)
        .expect("a hook of the ABI")
        .iter()
        .map(|p| match p {
            abi::HookParam::I32 => ValType::I32,
            abi::HookParam::I64 => ValType::I64,
        })
        .collect();
    let ty = standalone_type(module, &params);
    let (f, _) = module.add_import_func(abi::IMPORT_MODULE, name, ty);
    module.funcs.get_mut(f).name = Some(format!("{}:{name}", abi::IMPORT_MODULE));
    f
}

/// A function type `params -> ()` of its own: the module's identical type
/// when that one stands alone, else a new one. An import must match the
/// host's type exactly, and a `(func)` inside a rec group with other types
/// is a different type from a lone `(func)` (GC's iso-recursive types), so
/// reusing it made the instrumented module fail to instantiate.
fn standalone_type(module: &mut Module, params: &[ValType]) -> walrus::TypeId {
    let ty = module.types.add(params, &[]);
    let alone = module
        .types
        .rec_group_for_type(ty)
        .is_none_or(|g| g.types.len() == 1);
    if alone {
        return ty;
    }
    let func = walrus::CompositeType::Function(walrus::FunctionType::new(
        params.to_vec().into_boxed_slice(),
        Box::new([]),
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
    events: GlobalId,
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
        b.global_get(self.events);
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
/// goes to the synchronous hook of its tag instead.
fn record_helper(
    module: &mut Module,
    shadow: MemoryId,
    hooks: [FunctionId; 3],
    hook_flush: FunctionId,
) -> (FunctionId, GlobalId, GlobalId) {
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
    // A start function runs while the module is instantiated, before the
    // host can read the buffer: a trap there would lose its events. So a
    // module with one hands every event to the host as it happens until
    // the host raises the capacity, once instantiated.
    let cap = exported(
        "heapscope:events_cap",
        abi::EVENTS_CAP_EXPORT,
        abi::initial_events_cap(module.start.is_some()),
    );
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
                    f.call(hook_flush);
                    r.full(f);
                    f.br_if(sync_id);
                },
                |_| {},
            );
            append_record(to_sync, &r);
            to_sync.br(out_id);
        });
        synchronous_hook(out, &r, hooks);
    });
    (f.finish(args, &mut module.funcs), events, cap)
}

/// Write the record at the buffer's write position (the header at the
/// offsets of [`abi::EventRecord`], then the stack), and publish it.
fn append_record(w: &mut InstrSeqBuilder, r: &Record) {
    let word = |align: u32, offset: u64| MemArg { align, offset };
    let (shadow, p, i, sp) = (r.shadow, r.p, r.i, r.sp);
    w.global_get(r.events).local_set(p);
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
    w.local_get(p)
        .i32_const(abi::EVENT_HEADER as i32)
        .binop(BinaryOp::I32Add)
        .local_get(sp)
        .binop(BinaryOp::I32Add)
        .global_set(r.events);
}

/// Bytes the record helper copies of a stack per turn of its loop (four
/// `v128` loads and stores); a record needs this much room past its stack.
const COPY_CHUNK: u32 = 64;

/// Call the synchronous hook of the record's tag with its arguments.
fn synchronous_hook(
    out: &mut InstrSeqBuilder,
    r: &Record,
    [hook_alloc, hook_free, hook_realloc]: [FunctionId; 3],
) {
    let tag = r.tag;
    let kind = |s: &mut InstrSeqBuilder| {
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

/// `fn heapscope:grow:N(delta) -> old`: `memory.grow` plus its hook.
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
