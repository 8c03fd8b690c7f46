//! Allocators recognised by the shape of their code, for stripped builds
//! whose names and exports say nothing.
//!
//! dlmalloc (C: wasi-libc's and emscripten's): its `malloc` is the one
//! function `(size) -> ptr` holding the constant `0x55555558` (how
//! `init_mparams`, inlined into it, makes the heap's magic); its `free`
//! the one `(ptr) -> ()` reading at least four of the static addresses
//! (`_gm_`'s fields) that `malloc` reads; its `realloc` the one
//! `(ptr, size) -> ptr` calling both, its size passed straight to
//! `malloc` (`realloc(NULL, n)`); and `aligned_alloc`/`memalign` the
//! `(align, size) -> ptr` that passes its size straight to `malloc` and
//! calls a second function `(align, size) -> ptr` that calls `malloc` (the
//! inner `internal_memalign`, which `posix_memalign` calls too), hooked
//! with it. `calloc` is not hooked: the `malloc` it calls reports its
//! block, of the same size.
//!
//! Each piece must be the only function that fits, or nothing is hooked.

use crate::discover::{Allocator, FoundBy, Shape};
use heapscope_trace::abi::AllocFn;
use rustc_hash::FxHashSet;
use walrus::ir::{self, Instr, Value};
use walrus::{FunctionId, FunctionKind, LocalFunction, Module, ValType};

/// The constant dlmalloc's `init_mparams` makes the heap's magic with
/// (`(size_t)0x55555555U ^ ...`, then `|= 8`, `&= ~7`: clang folds it).
const DLMALLOC_MAGIC: i32 = 0x5555_5558;

/// Recognise the allocator of a module in which nothing allocating was
/// found by name, export or glue; add what was recognised to `found` and
/// say so in `warnings`.
pub(crate) fn recognise(
    module: &Module,
    ptr: ValType,
    found: &mut Vec<Allocator>,
    warnings: &mut Vec<String>,
) {
    use heapscope_trace::abi::HOOK_FREE;
    // Also under wasm-bindgen's exports (and what they call): the
    // allocator's own functions catch the paths the exports do not lead
    // to (`__rust_alloc_zeroed`, a dealloc inlined into its callers).
    let wasm_bindgen_only = |a: &Allocator| {
        a.found_by == FoundBy::ExportCall
            || matches!(
                a.role,
                AllocFn::WbgMalloc | AllocFn::WbgFree | AllocFn::WbgRealloc
            )
    };
    if ptr != ValType::I32
        || found
            .iter()
            .any(|a| a.role.hook() != HOOK_FREE && !wasm_bindgen_only(a))
    {
        return;
    }
    let dl = [Dlmalloc::C, Dlmalloc::Rust]
        .into_iter()
        .find_map(|k| dlmalloc(module, k).map(|h| (k, h)));
    let mut recognised: Vec<(&str, &str, Vec<Hook>)> = Vec::new();
    // A Rust #[global_allocator], found by the calls of its
    // `__rust_realloc`: alone, or beside libc's dlmalloc (a WASI std build
    // links wasi-libc's malloc in too), then only in a module with Rust's
    // standard library in it, so that a C program's own wrappers are
    // never taken for one, and only as functions other than libc's (std's
    // default on WASI is libc's malloc: its `__rust_realloc` calls
    // `aligned_alloc` and `free`).
    let look_for_rust = match dl {
        None => true,
        // Its `__rdl_realloc` is its realloc.
        Some((Dlmalloc::Rust, _)) => false,
        Some((Dlmalloc::C, _)) => crate::rust_global::has_rust_std(module),
    };
    if let Some((k, hooks)) = dl {
        recognised.push((k.short(), k.family(), hooks));
    }
    let libc: FxHashSet<FunctionId> = recognised
        .iter()
        .flat_map(|(_, _, h)| h.iter().map(|(_, id, _)| *id))
        .collect();
    if let Some(hooks) = look_for_rust
        .then(|| crate::rust_global::rust_realloc(module))
        .flatten()
        .filter(|h| h.iter().all(|(_, id, _)| !libc.contains(id)))
    {
        recognised.push(("the Rust allocator", "a Rust #[global_allocator]", hooks));
    }
    for (short, family, hooks) in recognised {
        let mut roles = Vec::new();
        for (role, id, shape) in hooks {
            if found.iter().any(|a| a.id == id) {
                continue;
            }
            roles.push(role.name());
            found.push(Allocator {
                role,
                id,
                name: module
                    .funcs
                    .get(id)
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{short}'s {}", role.name())),
                found_by: FoundBy::CodeShape,
                shape,
            });
        }
        // Nothing to say when the glue or the names hooked every role.
        if !roles.is_empty() {
            warnings.push(format!(
                "allocator recognised by the shape of its code: {family}: {}",
                roles.join(", ")
            ));
        }
    }
}

pub(crate) type Hook = (AllocFn, FunctionId, Shape);

/// Which dlmalloc.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dlmalloc {
    /// wasi-libc's and emscripten's (C).
    C,
    /// The `dlmalloc` crate, Rust's default allocator on wasm32.
    Rust,
}

impl Dlmalloc {
    fn short(self) -> &'static str {
        match self {
            Dlmalloc::C => "dlmalloc",
            Dlmalloc::Rust => "Rust's dlmalloc",
        }
    }

    fn family(self) -> &'static str {
        match self {
            Dlmalloc::C => "dlmalloc (C)",
            Dlmalloc::Rust => "dlmalloc (Rust)",
        }
    }

    /// Whether `f` (of type `(size) -> ptr`) holds the constants of this
    /// dlmalloc's `malloc`: C's `init_mparams` magic; the crate's
    /// small-request bound (245) and its tree bins' bound (`0xffffff`, or
    /// `0xfffff5` with the request's padding folded in).
    fn is_malloc(self, f: &LocalFunction) -> bool {
        let has = |k: i32| {
            instrs(f)
                .any(|i| matches!(i, Instr::Const(ir::Const { value: Value::I32(v) }) if *v == k))
        };
        match self {
            Dlmalloc::C => has(DLMALLOC_MAGIC),
            Dlmalloc::Rust => has(245) && (has(0xff_fff5) || has(0xff_ffff)),
        }
    }
}

/// dlmalloc, C's or Rust's, as the module docs say. Rust's differs in its
/// `malloc`'s constants, its realloc (`__rdl_realloc(ptr, old, align,
/// new)`, calling malloc and free) and the outer function over its
/// memalign (`__rdl_alloc(size, align)`, its size straight to malloc).
fn dlmalloc(module: &Module, kind: Dlmalloc) -> Option<Vec<Hook>> {
    use ValType::I32;
    let locals: Vec<(FunctionId, &LocalFunction, &[ValType], &[ValType])> = module
        .funcs
        .iter()
        .filter_map(|f| match &f.kind {
            FunctionKind::Local(l) => {
                let ty = module.types.get(f.ty());
                Some((f.id(), l, ty.params(), ty.results()))
            }
            _ => None,
        })
        .collect();
    let of_type = |params: &'static [ValType], results: &'static [ValType]| {
        locals
            .iter()
            .filter(move |(_, _, p, r)| *p == params && *r == results)
            .map(|(id, l, _, _)| (*id, *l))
    };
    let malloc = only(of_type(&[I32], &[I32]).filter(|(_, l)| kind.is_malloc(l)))?;
    let state = static_loads(malloc.1);
    let free = only(
        of_type(&[I32], &[]).filter(|(_, l)| static_loads(l).intersection(&state).count() >= 4),
    )?;
    let calls = |l: &LocalFunction| -> FxHashSet<FunctionId> {
        instrs(l)
            .filter_map(|i| match i {
                Instr::Call(ir::Call { func }) | Instr::ReturnCall(ir::ReturnCall { func }) => {
                    Some(*func)
                }
                _ => None,
            })
            .collect()
    };
    let calls_both = |l: &LocalFunction| {
        let c = calls(l);
        c.contains(&malloc.0) && c.contains(&free.0)
    };
    let two = || of_type(&[I32, I32], &[I32]);
    let realloc = match kind {
        // `realloc(NULL, n)` is `malloc(n)`: its size goes straight to
        // malloc (a realloc inlined into a wrapper that offsets the
        // pointer, SQLite's `sqlite3MemRealloc`, does not).
        Dlmalloc::C => only(two().filter(|(_, l)| calls_both(l) && forwards_param(l, 1, malloc.0)))
            .map(|(id, _)| (id, Shape::Realloc { ptr: 0, size: 1 })),
        Dlmalloc::Rust => {
            only(of_type(&[I32, I32, I32, I32], &[I32]).filter(|(_, l)| calls_both(l)))
                .map(|(id, _)| (id, Shape::Realloc { ptr: 0, size: 3 }))
        }
    };
    let mut hooks: Vec<Hook> = vec![
        (
            AllocFn::Malloc,
            malloc.0,
            Shape::Alloc {
                size: 0,
                count: None,
                align: None,
            },
        ),
        (AllocFn::Free, free.0, Shape::Free { ptr: 0 }),
    ];
    if let Some((r, shape)) = realloc {
        hooks.push((AllocFn::Realloc, r, shape));
    }
    // The outer function over memalign (C's aligned_alloc(align, size),
    // Rust's __rdl_alloc(size, align)): its size straight to malloc, and
    // an inner memalign(align, size) that calls malloc.
    let size_param = match kind {
        Dlmalloc::C => 1,
        Dlmalloc::Rust => 0,
    };
    let calls_malloc: FxHashSet<FunctionId> = two()
        .filter(|(_, l)| calls(l).contains(&malloc.0))
        .map(|(id, _)| id)
        .collect();
    let outer: Vec<(FunctionId, FunctionId)> = two()
        .filter(|(id, l)| {
            Some(*id) != realloc.map(|r| r.0) && forwards_param(l, size_param, malloc.0)
        })
        .filter_map(|(id, l)| {
            let inner: Vec<FunctionId> = calls(l)
                .into_iter()
                .filter(|c| *c != id && calls_malloc.contains(c))
                .collect();
            (inner.len() == 1).then(|| (id, inner[0]))
        })
        .collect();
    // Rust's `__rdl_alloc_zeroed(size, align)` has the same shape (calloc
    // inlined: malloc, then a `memory.fill` when the chunk is not known
    // to be zeroed) over the same memalign: told apart by that fill, each
    // hooked in its own role. Unhooked, the memalign inside either reports
    // its padded block from the inner malloc, at an address below the
    // aligned one it hands out, whose free is then of a block never seen.
    let zeroed = |id: FunctionId| match &module.funcs.get(id).kind {
        FunctionKind::Local(l) => instrs(l).any(|i| matches!(i, Instr::MemoryFill(_))),
        _ => false,
    };
    let outer: Vec<(AllocFn, FunctionId, FunctionId)> = match (kind, &outer[..]) {
        (_, [(outer, inner)]) => vec![(
            match kind {
                Dlmalloc::C => AllocFn::AlignedAlloc,
                Dlmalloc::Rust => AllocFn::GlobalAlloc,
            },
            *outer,
            *inner,
        )],
        (Dlmalloc::Rust, [(a, inner), (b, other)])
            if inner == other && zeroed(*a) != zeroed(*b) =>
        {
            let (plain, filled) = if zeroed(*a) { (*b, *a) } else { (*a, *b) };
            vec![
                (AllocFn::GlobalAlloc, plain, *inner),
                (AllocFn::GlobalAllocZeroed, filled, *inner),
            ]
        }
        _ => Vec::new(),
    };
    if let Some(&(_, _, inner)) = outer.first() {
        let shape = Shape::Alloc {
            size: size_param,
            count: None,
            align: Some(1 - size_param),
        };
        for &(role, f, _) in &outer {
            hooks.push((role, f, shape));
        }
        let memalign = Shape::Alloc {
            size: 1,
            count: None,
            align: Some(0),
        };
        hooks.push((AllocFn::Memalign, inner, memalign));
    }
    Some(hooks)
}

/// The one item of `it`, or `None` for none or several.
pub(crate) fn only<T>(mut it: impl Iterator<Item = T>) -> Option<T> {
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

/// The instruction sequences of `f` (its body and every block in it).
fn seqs(f: &LocalFunction) -> Vec<&[(Instr, ir::InstrLocId)]> {
    let mut ids = vec![f.entry_block()];
    let mut i = 0;
    while i < ids.len() && ids.len() < 1_000_000 {
        for (instr, _) in &f.block(ids[i]).instrs {
            match instr {
                Instr::Block(ir::Block { seq }) | Instr::Loop(ir::Loop { seq }) => ids.push(*seq),
                Instr::IfElse(ir::IfElse {
                    consequent,
                    alternative,
                }) => ids.extend([*consequent, *alternative]),
                _ => {}
            }
        }
        i += 1;
    }
    ids.into_iter().map(|s| &f.block(s).instrs[..]).collect()
}

/// Every instruction of `f`, in all its blocks.
fn instrs(f: &LocalFunction) -> impl Iterator<Item = &Instr> {
    seqs(f).into_iter().flat_map(|s| s.iter().map(|(i, _)| i))
}

/// Pairs of instructions next to each other in one sequence of `f`.
fn pairs(f: &LocalFunction) -> impl Iterator<Item = (&Instr, &Instr)> {
    seqs(f)
        .into_iter()
        .flat_map(|s| s.windows(2).map(|w| (&w[0].0, &w[1].0)))
}

/// The static addresses `f` loads from: `i32.const K` then a load at
/// offset O, K + O.
fn static_loads(f: &LocalFunction) -> FxHashSet<u64> {
    pairs(f)
        .filter_map(|w| match w {
            (
                Instr::Const(ir::Const {
                    value: Value::I32(k),
                }),
                Instr::Load(l),
            ) => Some(u64::from(*k as u32) + l.arg.offset),
            _ => None,
        })
        .collect()
}

/// Whether `f` calls `callee` with its parameter `param` as the only
/// argument, pushed just before the call.
fn forwards_param(f: &LocalFunction, param: usize, callee: FunctionId) -> bool {
    let Some(local) = f.args.get(param) else {
        return false;
    };
    pairs(f).any(|w| {
        matches!(w,
            (Instr::LocalGet(ir::LocalGet { local: l }), Instr::Call(ir::Call { func }))
                if l == local && *func == callee)
    })
}
