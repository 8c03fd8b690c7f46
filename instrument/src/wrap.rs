//! Wrapping an allocator function: its body moves to a new function, and
//! a wrapper in its place calls it and reports the event through
//! `heapscope:record` when it is the outermost allocator call: after the
//! call for an allocation (it needs the result), before it for a free.

use crate::discover::{Allocator, Shape};
use crate::infra::{get_u64, Infra};
use heapscope_trace::abi;
use walrus::ir::{BinaryOp, InstrSeqType, LoadKind, MemArg, UnaryOp};
use walrus::{FunctionBuilder, FunctionId, FunctionKind, LocalId, MemoryId, Module, ValType};

/// Make `a.id` a wrapper that calls the original body (moved to a new
/// function) and reports to its hook when it is the outermost allocator
/// call. Returns the function that now holds the original body.
pub(crate) fn wrap(
    module: &mut Module,
    infra: &Infra,
    a: &Allocator,
    mem0: MemoryId,
    p: ValType,
) -> FunctionId {
    let ty = module.funcs.get(a.id).ty();
    let params = module.types.get(ty).params().to_vec();
    let results = module.types.get(ty).results().to_vec();

    // Move the original body into a new function.
    let mut stub = FunctionBuilder::new(&mut module.types, &params, &results);
    stub.func_body().unreachable();
    let stub_args = params.iter().map(|t| module.locals.add(*t)).collect();
    let original = stub.finish(stub_args, &mut module.funcs);
    swap_bodies(module, a.id, original);
    module.funcs.get_mut(original).name = Some(format!(
        "{}{}",
        a.name,
        heapscope_trace::abi::ORIGINAL_SUFFIX
    ));

    let kind = abi::pack_kind(a.role, 0);
    let mut b = FunctionBuilder::new(&mut module.types, &params, &results);
    let args: Vec<LocalId> = params.iter().map(|t| module.locals.add(*t)).collect();
    let ret = results.first().map(|t| module.locals.add(*t));
    // The stack of the call into the allocator: `sp` as the caller set it,
    // before the original body's own calls move it.
    let sp0 = module.locals.add(ValType::I32);
    let report_locals = Infra::report_locals(module, sp0);
    let mut body = b.func_body();
    body.global_get(infra.sp).local_set(sp0);
    let tag = match a.shape {
        Shape::Alloc { .. } | Shape::OutParam { .. } => abi::EVENT_ALLOC,
        Shape::Realloc { .. } => abi::EVENT_REALLOC,
        Shape::Free { .. } => abi::EVENT_FREE,
    };
    // A free is reported before the allocator runs: when it is given a
    // pointer that is not a block and traps, the report of the bad free
    // is in the trace, with its stack, before the trap.
    let before = matches!(a.shape, Shape::Free { .. });
    let report = |seq: &mut walrus::InstrSeqBuilder| {
        seq.global_get(infra.nest).unop(UnaryOp::I32Eqz);
        seq.if_else(
            None,
            |then| {
                push_args(then, a, &args, ret, mem0, p);
                infra.report(then, abi::EventRecord::word(tag, kind), &report_locals);
            },
            |_| {},
        );
    };
    if before {
        report(&mut body);
    }
    // A reallocation is reported after it (it needs the result); its
    // pointer is checked before, so that a bad one is reported even when
    // the allocator traps on it.
    if let Shape::Realloc { ptr, .. } = a.shape {
        body.global_get(infra.nest).unop(UnaryOp::I32Eqz);
        get_u64(&mut body, args[ptr], p);
        body.i64_const(0)
            .binop(BinaryOp::I64Ne)
            .binop(BinaryOp::I32And);
        body.if_else(
            None,
            |then| {
                get_u64(then, args[ptr], p);
                then.i64_const(0).i64_const(0);
                infra.report(
                    then,
                    abi::EventRecord::word(abi::EVENT_REALLOC_CHECK, kind),
                    &report_locals,
                );
            },
            |_| {},
        );
    }
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
    if !before {
        report(&mut body);
    }
    if let Some(r) = ret {
        body.local_get(r);
    }
    let wrapper = b.finish(args, &mut module.funcs);
    swap_bodies(module, a.id, wrapper);
    module.funcs.delete(wrapper);
    original
}

/// Push the event's `a`, `b` and `c` (see [`abi::EventRecord`]) for an
/// allocator of `a.shape`: pointers and sizes as `u64`, `posix_memalign`'s
/// block read from its out parameter when it succeeded.
fn push_args(
    then: &mut walrus::InstrSeqBuilder,
    a: &Allocator,
    args: &[LocalId],
    ret: Option<LocalId>,
    mem0: MemoryId,
    p: ValType,
) {
    let ptr_load = if p == ValType::I64 {
        LoadKind::I64 { atomic: false }
    } else {
        LoadKind::I32 { atomic: false }
    };
    let ptr_align = if p == ValType::I64 { 8 } else { 4 };
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
