//! Write tracking for snapshots (`Options::track_writes`): every write the
//! module makes to memory 0 marks the 4 KiB pages it lands in, in a memory
//! of heapscope's own ([`EXPORT`]), so that a snapshot rescans only the
//! blocks on pages written since the previous one.
//!
//! The page map is one byte per 4 KiB page of memory 0 (2^20 bytes cover a
//! 32-bit memory), then one flag byte at [`FLAG`]: set before a call to an
//! import that may write memory 0 itself (a WASI call that fills a buffer
//! or a result, anything heapscope does not know), meaning "anything may
//! have changed". The host reads and clears both at each snapshot.
//!
//! What marks:
//! - every store to memory 0 (all widths, atomic stores, read-modify-write
//!   and compare-exchange, `v128.store`, `v128.storeN_lane`): the page of
//!   its effective address (`addr + offset`). A write of up to 16 bytes may
//!   run into the next page; the host treats a page as written when the
//!   page of any of the 15 bytes before it was marked.
//! - `memory.fill`, `memory.copy` into memory 0 and `memory.init` of memory
//!   0: every page of `[dst, dst + n]`, with one `memory.fill` of the map.
//! - a call to an import that is not known to leave memory 0 alone (the
//!   flag); an indirect call too when such an import is in a table. A WASI
//!   call whose one write is a result of at most 16 bytes at its last
//!   parameter (`fd_write`'s count, `clock_time_get`'s time) marks that
//!   page instead.
//!
//! Not tracked (the host falls back to reading everything): a 64-bit or a
//! shared memory 0. Writes the host makes outside the module's imports
//! (none in heapscope's runs) are not seen.

use rustc_hash::FxHashSet;
use walrus::ir::{
    BinaryOp, Binop, Const, Instr, InstrSeq, LoadSimdKind, LocalGet, LocalSet, LocalTee, MemArg,
    MemoryFill, Store, StoreKind, Value, VisitorMut,
};
use walrus::{FunctionId, LocalId, MemoryId, Module, ValType};

/// Export name of the page map memory.
pub const EXPORT: &str = "heapscope:dirty";
/// A page of the map is `1 << PAGE_SHIFT` bytes of memory 0.
pub const PAGE_SHIFT: u32 = 12;
/// Where the "anything may have changed" flag is in the map's memory.
pub const FLAG: u32 = 1 << 20;
/// The most bytes one store writes (`v128.store`): the host treats a page
/// as written when a mark is on it or on the page of any of the
/// `MAX_STORE - 1` bytes before it.
pub const MAX_STORE: u64 = 16;

/// Imports of WASI that never write the module's memory.
const WASI_NO_WRITE: &[&str] = &[
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "fd_close",
    "fd_datasync",
    "fd_sync",
    "fd_advise",
    "fd_allocate",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_renumber",
    "path_create_directory",
    "path_filestat_set_times",
    "path_link",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "sock_shutdown",
];

/// Imports of WASI whose only write to the module's memory is a result of
/// at most [`MAX_STORE`] bytes at the address of their last parameter
/// (`fd_write`'s count of bytes written, `clock_time_get`'s time, ...):
/// the call marks that address's page instead of setting the flag.
const WASI_WRITE_LAST: &[&str] = &[
    "fd_write",
    "fd_pwrite",
    "clock_time_get",
    "clock_res_get",
    "fd_seek",
    "fd_tell",
];

/// Whether an import `module`.`name` may write memory 0 (heapscope's host
/// defines it): heapscope's own hooks and the Extism kernel (which passes
/// values, never writes the plugin's memory) do not, nor the WASI calls in
/// [`WASI_NO_WRITE`]; anything else may.
fn may_write(module: &str, name: &str) -> bool {
    match module {
        heapscope_trace::abi::IMPORT_MODULE | "extism:host/env" => false,
        "wasi_snapshot_preview1" | "wasi_unstable" => !WASI_NO_WRITE.contains(&name),
        _ => true,
    }
}

/// Whether import `module`.`name` writes only a small result at its last
/// parameter ([`WASI_WRITE_LAST`]).
fn writes_last(module: &str, name: &str) -> bool {
    matches!(module, "wasi_snapshot_preview1" | "wasi_unstable") && WASI_WRITE_LAST.contains(&name)
}

/// Whether `wasm` imports `heapscope.snapshot` (asks for snapshots
/// itself): runs of it track writes.
pub fn imports_snapshot(wasm: &[u8]) -> bool {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::ImportSection(s)) => {
                return s.into_imports().flatten().any(|i| {
                    i.module == heapscope_trace::abi::IMPORT_MODULE && i.name == "snapshot"
                });
            }
            Ok(wasmparser::Payload::CodeSectionStart { .. }) | Err(_) => return false,
            Ok(_) => {}
        }
    }
    false
}

/// Add write tracking to `module` (after every other rewrite, so that
/// nothing it adds is left out). `false` when memory 0 is 64-bit or shared
/// (nothing is added: the host reads every block at every snapshot).
pub(crate) fn track_writes(module: &mut Module, mem0: MemoryId) -> bool {
    let m = module.memories.get(mem0);
    if m.memory64 || m.shared {
        return false;
    }
    let map = module.memories.add_local(false, false, 17, Some(17), None);
    module.memories.get_mut(map).name = Some(EXPORT.into());
    module.exports.add(EXPORT, map);
    let writers: FxHashSet<FunctionId> = module
        .imports
        .iter()
        .filter_map(|i| match i.kind {
            walrus::ImportKind::Function(f) if may_write(&i.module, &i.name) => Some(f),
            _ => None,
        })
        .collect();
    // Of those, the ones whose write is a small result at their last
    // parameter, an `i32` address (memory 0 is 32-bit here).
    let last_arg: FxHashSet<FunctionId> = module
        .imports
        .iter()
        .filter_map(|i| match i.kind {
            walrus::ImportKind::Function(f)
                if writes_last(&i.module, &i.name)
                    && module.types.get(module.funcs.get(f).ty()).params().last()
                        == Some(&ValType::I32) =>
            {
                Some(f)
            }
            _ => None,
        })
        .collect();
    let mut tables_hold_writer = module.elements.iter().any(|e| match &e.items {
        walrus::ElementItems::Functions(fs) => fs.iter().any(|f| writers.contains(f)),
        walrus::ElementItems::Expressions(_, es) => es
            .iter()
            .any(|e| matches!(e, walrus::ConstExpr::RefFunc(f) if writers.contains(f))),
    });
    // `ref.func` of a writer in code: it may end up in a table.
    struct RefFuncs<'a>(&'a FxHashSet<FunctionId>, bool);
    impl<'i> walrus::ir::Visitor<'i> for RefFuncs<'_> {
        fn visit_ref_func(&mut self, r: &walrus::ir::RefFunc) {
            self.1 |= self.0.contains(&r.func);
        }
    }
    for (_, f) in module.funcs.iter_local() {
        let mut v = RefFuncs(&writers, false);
        walrus::ir::dfs_in_order(&mut v, f, f.entry_block());
        tables_hold_writer |= v.1;
    }
    let memory64 = |m: MemoryId| module.memories.get(m).memory64;
    let is64: FxHashSet<MemoryId> = module
        .memories
        .iter()
        .map(|m| m.id())
        .filter(|&m| memory64(m))
        .collect();
    let mut rewrite = Rewrite {
        mem0,
        map,
        writers,
        last_arg,
        tables_hold_writer,
        is64,
        temps: Vec::new(),
    };
    // One set of scratch locals for every function (walrus declares in
    // each function the ones it uses): the sequences added never nest.
    for ty in [
        ValType::I32,
        ValType::I64,
        ValType::F32,
        ValType::F64,
        ValType::V128,
    ] {
        for slot in 0..3 {
            rewrite.temps.push(((ty, slot), module.locals.add(ty)));
        }
    }
    for (_, f) in module.funcs.iter_local_mut() {
        let entry = f.entry_block();
        walrus::ir::dfs_pre_order_mut(&mut rewrite, f, entry);
    }
    true
}

struct Rewrite {
    mem0: MemoryId,
    map: MemoryId,
    writers: FxHashSet<FunctionId>,
    /// Writers whose one write is a small result at their last parameter.
    last_arg: FxHashSet<FunctionId>,
    tables_hold_writer: bool,
    is64: FxHashSet<MemoryId>,
    temps: Vec<((ValType, u32), LocalId)>,
}

/// What an instruction writes to memory 0.
enum Write {
    /// A store: the value types above the address (top last) and the
    /// static offset.
    At(Vec<ValType>, u64),
    /// `memory.fill`/`copy`/`init`: the type of the operand between the
    /// destination and the length.
    Range(ValType),
    /// A call that may let the host write.
    Host,
    /// A call whose host writes at most [`MAX_STORE`] bytes at the address
    /// of its last parameter, on top of the stack.
    LastArg,
}

impl Rewrite {
    fn temp(&self, ty: ValType, slot: u32) -> LocalId {
        self.temps
            .iter()
            .find(|(k, _)| *k == (ty, slot))
            .map(|(_, l)| *l)
            .expect("a scratch local of every value type")
    }

    fn write_of(&self, instr: &Instr) -> Option<Write> {
        let mem0 = self.mem0;
        Some(match instr {
            Instr::Store(s) if s.memory == mem0 => {
                let ty = match s.kind {
                    StoreKind::I32 { .. } | StoreKind::I32_8 { .. } | StoreKind::I32_16 { .. } => {
                        ValType::I32
                    }
                    StoreKind::I64 { .. }
                    | StoreKind::I64_8 { .. }
                    | StoreKind::I64_16 { .. }
                    | StoreKind::I64_32 { .. } => ValType::I64,
                    StoreKind::F32 => ValType::F32,
                    StoreKind::F64 => ValType::F64,
                    StoreKind::V128 => ValType::V128,
                };
                Write::At(vec![ty], s.arg.offset)
            }
            Instr::AtomicRmw(a) if a.memory == mem0 => {
                Write::At(vec![width_type(a.width)], a.arg.offset)
            }
            Instr::Cmpxchg(c) if c.memory == mem0 => {
                let ty = width_type(c.width);
                Write::At(vec![ty, ty], c.arg.offset)
            }
            Instr::LoadSimd(l)
                if l.memory == mem0
                    && matches!(
                        l.kind,
                        LoadSimdKind::V128Store8Lane(_)
                            | LoadSimdKind::V128Store16Lane(_)
                            | LoadSimdKind::V128Store32Lane(_)
                            | LoadSimdKind::V128Store64Lane(_)
                    ) =>
            {
                Write::At(vec![ValType::V128], l.arg.offset)
            }
            Instr::MemoryFill(f) if f.memory == mem0 => Write::Range(ValType::I32),
            Instr::MemoryInit(i) if i.memory == mem0 => Write::Range(ValType::I32),
            Instr::MemoryCopy(c) if c.dst == mem0 => Write::Range(if self.is64.contains(&c.src) {
                ValType::I64
            } else {
                ValType::I32
            }),
            Instr::Call(c) if self.last_arg.contains(&c.func) => Write::LastArg,
            Instr::ReturnCall(c) if self.last_arg.contains(&c.func) => Write::LastArg,
            Instr::Call(c) if self.writers.contains(&c.func) => Write::Host,
            Instr::ReturnCall(c) if self.writers.contains(&c.func) => Write::Host,
            Instr::CallIndirect(_)
            | Instr::ReturnCallIndirect(_)
            | Instr::CallRef(_)
            | Instr::ReturnCallRef(_)
                if self.tables_hold_writer =>
            {
                Write::Host
            }
            _ => return None,
        })
    }

    /// The instructions that mark what `write` writes, to insert just
    /// before it (the operands are left as they were).
    fn mark(&self, write: &Write) -> Vec<Instr> {
        let i32c = |v: i32| {
            Instr::Const(Const {
                value: Value::I32(v),
            })
        };
        let get = |l| Instr::LocalGet(LocalGet { local: l });
        let set = |l| Instr::LocalSet(LocalSet { local: l });
        let tee = |l| Instr::LocalTee(LocalTee { local: l });
        let op = |op| Instr::Binop(Binop { op });
        let byte = Instr::Store(Store {
            memory: self.map,
            kind: StoreKind::I32_8 { atomic: false },
            arg: MemArg {
                align: 1,
                offset: 0,
            },
        });
        let addr = self.temp(ValType::I32, 0);
        let mut out = Vec::new();
        match write {
            Write::Host => {
                out.extend([i32c(FLAG as i32), i32c(1), byte]);
            }
            Write::LastArg => {
                out.extend([
                    tee(addr),
                    get(addr),
                    i32c(PAGE_SHIFT as i32),
                    op(BinaryOp::I32ShrU),
                    i32c(1),
                    byte,
                ]);
            }
            Write::At(values, offset) => {
                // Values off the stack (top first), the address kept.
                let mut saved = Vec::new();
                for (k, &ty) in values.iter().enumerate().rev() {
                    let l = self.temp(ty, k as u32 + 1);
                    out.push(set(l));
                    saved.push(l);
                }
                out.push(tee(addr));
                if *offset != 0 {
                    // The effective address modulo 2^32: one past it
                    // traps the store anyway, after a harmless mark.
                    out.extend([i32c(*offset as u32 as i32), op(BinaryOp::I32Add)]);
                }
                out.extend([
                    i32c(PAGE_SHIFT as i32),
                    op(BinaryOp::I32ShrU),
                    i32c(1),
                    byte,
                    get(addr),
                ]);
                out.extend(saved.into_iter().rev().map(get));
            }
            Write::Range(middle) => {
                let n = self.temp(ValType::I32, 1);
                let mid = self.temp(*middle, 2);
                out.extend([set(n), set(mid), tee(addr)]);
                // fill(map, dst >> 12, 1, ((dst + n) >> 12) - (dst >> 12) + 1):
                // a range past 2^32 makes the count huge and traps, as
                // the write itself would.
                out.extend([
                    i32c(PAGE_SHIFT as i32),
                    op(BinaryOp::I32ShrU),
                    i32c(1),
                    get(addr),
                    get(n),
                    op(BinaryOp::I32Add),
                    i32c(PAGE_SHIFT as i32),
                    op(BinaryOp::I32ShrU),
                    get(addr),
                    i32c(PAGE_SHIFT as i32),
                    op(BinaryOp::I32ShrU),
                    op(BinaryOp::I32Sub),
                    i32c(1),
                    op(BinaryOp::I32Add),
                    Instr::MemoryFill(MemoryFill { memory: self.map }),
                    get(addr),
                    get(mid),
                    get(n),
                ]);
            }
        }
        out
    }
}

fn width_type(w: walrus::ir::AtomicWidth) -> ValType {
    use walrus::ir::AtomicWidth::*;
    match w {
        I32 | I32_8 | I32_16 => ValType::I32,
        I64 | I64_8 | I64_16 | I64_32 => ValType::I64,
    }
}

impl VisitorMut for Rewrite {
    fn start_instr_seq_mut(&mut self, seq: &mut InstrSeq) {
        if !seq.instrs.iter().any(|(i, _)| self.write_of(i).is_some()) {
            return;
        }
        let old = std::mem::take(&mut seq.instrs);
        seq.instrs.reserve(old.len() * 2);
        for (instr, loc) in old {
            if let Some(w) = self.write_of(&instr) {
                for i in self.mark(&w) {
                    seq.instrs.push((i, loc));
                }
            }
            seq.instrs.push((instr, loc));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The marks a tracked module makes, run in wasmtime: a store (at an
    /// offset, across a page's end), a `memory.fill` over pages, an atomic
    /// read-modify-write, a `v128` store; a call to an import that may
    /// write sets the flag, one to a WASI call that does not write leaves
    /// it; the module computes what it computed before.
    #[test]
    fn a_tracked_module_marks_the_pages_it_writes() {
        let wat = r#"(module
            (import "env" "poke" (func $poke))
            (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
            (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
            (memory 4 4 shared)
            (func (export "store") (param i32 i32) (i32.store offset=4096 (local.get 0) (local.get 1)))
            (func (export "store64") (param i32) (i64.store (local.get 0) (i64.const -1)))
            (func (export "fill") (param i32 i32) (memory.fill (local.get 0) (i32.const 7) (local.get 1)))
            (func (export "rmw") (param i32) (result i32) (i32.atomic.rmw.add (local.get 0) (i32.const 5)))
            (func (export "v128") (param i32) (v128.store (local.get 0) (v128.const i64x2 1 2)))
            (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
            (func (export "host") (call $poke))
            (func (export "yield") (drop (call $yield)))
            (func (export "write") (param i32) (drop (call $write (i32.const 1) (i32.const 0) (i32.const 0) (local.get 0)))))"#;
        // Shared memory is not tracked; the same module with an unshared one is.
        let shared = walrus::Module::from_buffer(&wat::parse_str(wat).unwrap()).unwrap();
        let mut m = shared;
        let mem0 = m.memories.iter().next().unwrap().id();
        assert!(!track_writes(&mut m, mem0));
        let wat = wat.replace("(memory 4 4 shared)", "(memory 4 4)");
        let mut m = walrus::Module::from_buffer(&wat::parse_str(&wat).unwrap()).unwrap();
        let mem0 = m.memories.iter().next().unwrap().id();
        assert!(track_writes(&mut m, mem0));
        let wasm = m.emit_wasm();
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&wasm)
            .unwrap();
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &wasm).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let mut linker = wasmtime::Linker::new(&engine);
        linker.func_wrap("env", "poke", || {}).unwrap();
        linker
            .func_wrap("wasi_snapshot_preview1", "sched_yield", || 0i32)
            .unwrap();
        linker
            .func_wrap(
                "wasi_snapshot_preview1",
                "fd_write",
                |_: i32, _: i32, _: i32, nw: i32| nw,
            )
            .unwrap();
        let i = linker.instantiate(&mut store, &module).unwrap();
        let map = i.get_memory(&mut store, EXPORT).unwrap();
        let take = |store: &mut wasmtime::Store<()>| -> (Vec<usize>, bool) {
            let bytes = map.data_mut(&mut *store);
            let pages = (0..64).filter(|&p| bytes[p] != 0).collect();
            let flag = bytes[FLAG as usize] != 0;
            bytes.fill(0);
            (pages, flag)
        };
        let call = |store: &mut wasmtime::Store<()>, name: &str, args: &[i32]| {
            let f = i.get_func(&mut *store, name).unwrap();
            let args: Vec<wasmtime::Val> = args.iter().map(|&a| a.into()).collect();
            let mut out = vec![wasmtime::Val::I32(0); f.ty(&*store).results().len()];
            f.call(&mut *store, &args, &mut out).unwrap();
            out.first().and_then(|v| v.i32())
        };
        call(&mut store, "store", &[100, 42]);
        assert_eq!(take(&mut store), (vec![1], false));
        assert_eq!(call(&mut store, "load", &[4196]), Some(42));
        // A word across a page's end marks the page it starts in (the
        // host looks 15 bytes back).
        call(&mut store, "store64", &[3 * 4096 - 4]);
        assert_eq!(take(&mut store), (vec![2], false));
        call(&mut store, "fill", &[4000, 9000]);
        assert_eq!(take(&mut store), (vec![0, 1, 2, 3], false));
        call(&mut store, "fill", &[8192, 0]);
        assert_eq!(take(&mut store), (vec![2], false));
        assert_eq!(call(&mut store, "rmw", &[20000]), Some(0));
        assert_eq!(take(&mut store), (vec![4], false));
        call(&mut store, "v128", &[40000]);
        assert_eq!(take(&mut store), (vec![9], false));
        call(&mut store, "host", &[]);
        assert_eq!(take(&mut store), (vec![], true));
        call(&mut store, "yield", &[]);
        assert_eq!(take(&mut store), (vec![], false));
        // fd_write writes only its count, at its last parameter.
        call(&mut store, "write", &[5 * 4096 + 8]);
        assert_eq!(take(&mut store), (vec![5], false));
        // A write out of bounds still traps.
        let f = i.get_func(&mut store, "store").unwrap();
        assert!(f
            .call(&mut store, &[(1 << 20).into(), 1.into()], &mut [])
            .is_err());
    }

    #[test]
    fn which_imports_may_write() {
        assert!(!may_write("heapscope", "snapshot"));
        assert!(!may_write("extism:host/env", "store_u64"));
        assert!(!may_write("wasi_snapshot_preview1", "proc_exit"));
        assert!(may_write("wasi_snapshot_preview1", "fd_read"));
        assert!(may_write("wasi_snapshot_preview1", "fd_write"));
        assert!(may_write("env", "anything"));
    }
}
