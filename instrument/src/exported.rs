//! The module's own allocator underneath wasm-bindgen's exports.
//!
//! `__wbindgen_malloc`, `__wbindgen_realloc` and `__wbindgen_free` (or the
//! `__wbindgen_export_N` the glue calls in those roles) are thin wrappers
//! over the module's allocator: they check the layout and call it. Hooking
//! only the exports sees what the JS glue allocates, not what the module's
//! own code does; and where the exported free *is* the module's dealloc
//! (the linker merged the two), every free of a block the module allocated
//! looks like the free of a block never allocated. So in a module where
//! nothing else was found, the functions the exports call are hooked too:
//! the call says which parameter is the size, the alignment and the
//! pointer, and a function that only forwards its parameters to another
//! (`__rust_alloc` calling the allocator) is followed to that one. The
//! exports stay hooked: only the outermost allocator call reports.

use crate::discover::{Allocator, FoundBy, Shape};
use heapscope_trace::abi::AllocFn;
use walrus::ir::{self, Instr};
use walrus::{FunctionId, FunctionKind, LocalFunction, Module, ValType};

/// Where an argument of a call comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arg {
    /// The caller's parameter.
    Param(usize),
    /// Anything else (a constant, an expression).
    Other,
}

/// Hook the functions wasm-bindgen's exports in `found` call, when
/// nothing but those exports was found.
pub(crate) fn derive_from_exports(module: &Module, ptr: ValType, found: &mut Vec<Allocator>) {
    let wbg = |r: AllocFn| {
        matches!(
            r,
            AllocFn::WbgMalloc | AllocFn::WbgFree | AllocFn::WbgRealloc
        )
    };
    if found.is_empty() || !found.iter().all(|a| wbg(a.role)) {
        return;
    }
    let exports: Vec<Allocator> = found.clone();
    for export in exports {
        let FunctionKind::Local(body) = &module.funcs.get(export.id).kind else {
            continue;
        };
        let n = body.args.len();
        // The export's parameters: (size[, align]); (ptr, old, new[, align]);
        // (ptr[, size[, align]]).
        let (ptr_param, size_param, align_param) = match export.role {
            AllocFn::WbgMalloc => (None, Some(0), (n == 2).then_some(1)),
            AllocFn::WbgRealloc => (Some(0), Some(2), (n == 4).then_some(3)),
            _ => (Some(0), None, None),
        };
        for (callee, args) in calls_with_args(module, body) {
            if callee == export.id {
                continue;
            }
            let (callee, args) = follow_forwarders(module, callee, args);
            let ty = module.types.get(module.funcs.get(callee).ty());
            if !ty.params().iter().all(|t| *t == ptr) || computes_only(module, callee) {
                continue;
            }
            let pos =
                |p: Option<usize>| p.and_then(|p| args.iter().position(|a| *a == Arg::Param(p)));
            let returns_ptr = ty.results() == [ptr];
            let derived = match export.role {
                AllocFn::WbgMalloc if returns_ptr => pos(size_param).map(|size| {
                    (
                        AllocFn::GlobalAlloc,
                        Shape::Alloc {
                            size,
                            count: None,
                            align: pos(align_param),
                        },
                    )
                }),
                AllocFn::WbgRealloc if returns_ptr => pos(ptr_param)
                    .zip(pos(size_param))
                    .map(|(ptr, size)| (AllocFn::GlobalRealloc, Shape::Realloc { ptr, size })),
                AllocFn::WbgFree if ty.results().is_empty() => {
                    pos(ptr_param).map(|ptr| (AllocFn::GlobalDealloc, Shape::Free { ptr }))
                }
                _ => None,
            };
            let Some((role, shape)) = derived else {
                continue;
            };
            if found.iter().any(|a| a.id == callee) {
                continue;
            }
            let name = module
                .funcs
                .get(callee)
                .name
                .as_deref()
                .map(crate::discover::demangle)
                .unwrap_or_else(|| format!("the function `{}` calls", export.name));
            found.push(Allocator {
                role,
                id: callee,
                name,
                found_by: FoundBy::ExportCall,
                shape,
            });
        }
    }
}

/// Whether `f` only computes from its parameters: no memory, global,
/// table or call. Such a function allocates nothing: the check that
/// `__wbindgen_malloc` calls with the same `(size, align)` before the
/// allocator (`Layout::is_size_align_valid`, returning 1 for a valid
/// layout) is one, and hooked it would report an allocation at address 1.
fn computes_only(module: &Module, f: FunctionId) -> bool {
    let FunctionKind::Local(body) = &module.funcs.get(f).kind else {
        return false;
    };
    let mut stack = vec![body.entry_block()];
    while let Some(id) = stack.pop() {
        for (instr, _) in &body.block(id).instrs {
            match instr {
                Instr::Block(ir::Block { seq }) | Instr::Loop(ir::Loop { seq }) => stack.push(*seq),
                Instr::IfElse(ir::IfElse {
                    consequent,
                    alternative,
                }) => stack.extend([*consequent, *alternative]),
                Instr::Const(_)
                | Instr::LocalGet(_)
                | Instr::LocalSet(_)
                | Instr::LocalTee(_)
                | Instr::Binop(_)
                | Instr::Unop(_)
                | Instr::Select(_)
                | Instr::Br(_)
                | Instr::BrIf(_)
                | Instr::BrTable(_)
                | Instr::Return(_)
                | Instr::Drop(_)
                | Instr::Unreachable(_) => {}
                _ => return false,
            }
        }
    }
    true
}

/// A function whose body is only its parameters (or constants) pushed and
/// one call: the function it calls, with the arguments mapped through
/// (at most 4 such steps).
pub(crate) fn follow_forwarders(
    module: &Module,
    mut f: FunctionId,
    mut args: Vec<Arg>,
) -> (FunctionId, Vec<Arg>) {
    for _ in 0..4 {
        let FunctionKind::Local(body) = &module.funcs.get(f).kind else {
            break;
        };
        let instrs = &body.block(body.entry_block()).instrs;
        let Some((Instr::Call(ir::Call { func }), _)) = instrs.last() else {
            break;
        };
        if *func == f || instrs.len() > 9 {
            break;
        }
        let Some(inner) = arguments(
            body,
            &instrs[..instrs.len() - 1],
            instrs.len() - 1,
            arity(module, *func),
        ) else {
            break;
        };
        // Only the arguments: nothing else runs before the call.
        if count_instrs(&inner) != instrs.len() - 1 {
            break;
        }
        let mapped = inner
            .iter()
            .map(|(a, _)| match a {
                Arg::Param(p) => args.get(*p).copied().unwrap_or(Arg::Other),
                Arg::Other => Arg::Other,
            })
            .collect();
        args = mapped;
        f = *func;
    }
    (f, args)
}

fn count_instrs(args: &[(Arg, usize)]) -> usize {
    args.iter().map(|(_, n)| n).sum()
}

fn arity(module: &Module, f: FunctionId) -> usize {
    module.types.get(module.funcs.get(f).ty()).params().len()
}

/// Every direct call (`call`, `return_call`) in `f`, in any block: `visit`
/// gets the instructions of the call's block, the call's index in them and
/// the callee.
pub(crate) fn for_each_direct_call(
    f: &LocalFunction,
    mut visit: impl FnMut(&[(Instr, ir::InstrLocId)], usize, FunctionId),
) {
    let mut stack = vec![f.entry_block()];
    while let Some(id) = stack.pop() {
        let instrs = &f.block(id).instrs;
        for (i, (instr, _)) in instrs.iter().enumerate() {
            match instr {
                Instr::Block(ir::Block { seq }) | Instr::Loop(ir::Loop { seq }) => stack.push(*seq),
                Instr::IfElse(ir::IfElse {
                    consequent,
                    alternative,
                }) => stack.extend([*consequent, *alternative]),
                Instr::Call(ir::Call { func }) | Instr::ReturnCall(ir::ReturnCall { func }) => {
                    visit(instrs, i, *func)
                }
                _ => {}
            }
        }
    }
}

/// The direct calls in `f` (any block) with where each argument comes from.
pub(crate) fn calls_with_args(module: &Module, f: &LocalFunction) -> Vec<(FunctionId, Vec<Arg>)> {
    let mut out = Vec::new();
    for_each_direct_call(f, |instrs, i, callee| {
        if !matches!(module.funcs.get(callee).kind, FunctionKind::Local(_)) {
            return;
        }
        if let Some(args) = arguments(f, &instrs[..i], i, arity(module, callee)) {
            out.push((callee, args.into_iter().map(|(a, _)| a).collect()));
        }
    });
    out
}

/// The `n` values on the stack at the end of `instrs[..end]`, read
/// backwards through instructions whose operands are known (constants,
/// locals, globals, unary and binary operators, loads), each with how many
/// instructions produce it; `None` at anything else.
fn arguments(
    f: &LocalFunction,
    instrs: &[(Instr, ir::InstrLocId)],
    end: usize,
    n: usize,
) -> Option<Vec<(Arg, usize)>> {
    let mut out = Vec::with_capacity(n);
    let mut j = end;
    for _ in 0..n {
        let start = producer(instrs, j, 0)?;
        let arg = match &instrs[j - 1].0 {
            Instr::LocalGet(ir::LocalGet { local }) if start == j - 1 => f
                .args
                .iter()
                .position(|p| p == local)
                .map_or(Arg::Other, Arg::Param),
            _ => Arg::Other,
        };
        out.push((arg, j - start));
        j = start;
    }
    out.reverse();
    Some(out)
}

/// Where the instructions that push the value on top at `end` start.
fn producer(instrs: &[(Instr, ir::InstrLocId)], end: usize, depth: usize) -> Option<usize> {
    if end == 0 || depth > 16 {
        return None;
    }
    let operands = match &instrs[end - 1].0 {
        Instr::LocalGet(_) | Instr::Const(_) | Instr::GlobalGet(_) => 0,
        Instr::LocalTee(_) | Instr::Unop(_) | Instr::Load(_) => 1,
        Instr::Binop(_) => 2,
        _ => return None,
    };
    let mut j = end - 1;
    for _ in 0..operands {
        j = producer(instrs, j, depth + 1)?;
    }
    Some(j)
}
