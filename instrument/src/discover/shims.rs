//! The allocator underneath Rust's `__rust_*` shims, read from the
//! shims' own calls.

use super::*;

/// The allocator underneath Rust's `__rust_alloc`, `__rust_alloc_zeroed`,
/// `__rust_dealloc` and `__rust_realloc` shims, read from the shims' own
/// calls. rustc inlines a shim into the code of the crate that declares the
/// `#[global_allocator]`, which then calls the allocator directly: hooking
/// only the shim misses those calls. And a `Layout` passed by value reaches
/// `GlobalAlloc::alloc` as two values in an order rustc chooses (the
/// alignment first, in today's rustc), which no name tells: the shim's call
/// does, since the shim's own parameters are fixed (`size, align`;
/// `ptr, size, align`; `ptr, old_size, align, new_size`).
///
/// A call counts when each of its arguments is a shim parameter or a
/// constant, pushed just before it; the callee is hooked with the
/// parameters it gets (or, when found by name, given them), unless the user
/// named it. A `__rust_dealloc` with no such call has the allocator's free
/// inlined into it, and likely into other callers too: said in `skipped`.
pub(super) fn derive_from_shims(
    module: &Module,
    ptr: ValType,
    found: &mut Vec<Allocator>,
    skipped: &mut Vec<String>,
) {
    let shims: Vec<(AllocFn, FunctionId, String)> = found
        .iter()
        .filter(|a| is_rust_shim(a.role))
        .map(|a| (a.role, a.id, a.name.clone()))
        .collect();
    let mut alloc_forwards = false;
    let mut dealloc_inlined = None;
    for (role, shim, shim_name) in shims {
        let FunctionKind::Local(body) = &module.funcs.get(shim).kind else {
            continue;
        };
        let mut forwarded = false;
        for (callee, args) in forwarding_calls(module, body) {
            if callee == shim {
                continue;
            }
            let pos = |param: usize| args.iter().position(|a| *a == Some(param));
            let ty = module.types.get(module.funcs.get(callee).ty());
            let (params, results) = (ty.params(), ty.results());
            if !params.iter().all(|t| *t == ptr) {
                continue;
            }
            let derived = match role {
                AllocFn::RustAlloc | AllocFn::RustAllocZeroed if results == [ptr] => {
                    pos(0).map(|size| {
                        let role = if role == AllocFn::RustAlloc {
                            AllocFn::GlobalAlloc
                        } else {
                            AllocFn::GlobalAllocZeroed
                        };
                        (
                            role,
                            Shape::Alloc {
                                size,
                                count: None,
                                align: pos(1),
                            },
                        )
                    })
                }
                AllocFn::RustDealloc if results.is_empty() => {
                    pos(0).map(|ptr| (AllocFn::GlobalDealloc, Shape::Free { ptr }))
                }
                AllocFn::RustRealloc if results == [ptr] => pos(0)
                    .zip(pos(3))
                    .map(|(ptr, size)| (AllocFn::GlobalRealloc, Shape::Realloc { ptr, size })),
                _ => None,
            };
            let Some((new_role, shape)) = derived else {
                continue;
            };
            forwarded = true;
            if role != AllocFn::RustDealloc {
                alloc_forwards = true;
            }
            match found.iter_mut().find(|a| a.id == callee) {
                Some(a) if a.found_by == FoundBy::User => {}
                // Found by name: the shim's call says where its values are.
                // Its role stays unless the hook it makes differs.
                Some(a) => {
                    if a.role.hook() != new_role.hook() {
                        a.role = new_role;
                    }
                    a.shape = shape;
                }
                None => {
                    if !matches!(module.funcs.get(callee).kind, FunctionKind::Local(_)) {
                        continue;
                    }
                    let name = module
                        .funcs
                        .get(callee)
                        .name
                        .as_deref()
                        .map(demangle)
                        .unwrap_or_else(|| format!("the function `{shim_name}` calls"));
                    found.push(Allocator {
                        role: new_role,
                        id: callee,
                        name,
                        found_by: FoundBy::ShimCall,
                        shape,
                    });
                }
            }
        }
        if role == AllocFn::RustDealloc && !forwarded {
            dealloc_inlined = Some(shim_name);
        }
    }
    if let (true, Some(shim)) = (alloc_forwards, dealloc_inlined) {
        skipped.push(format!(
            "{FREE_INLINED_WARNING} `{shim}` (it calls no function that frees): \
             frees in code that inlined it too are not seen, only inferred when an address is allocated again; \
             with full debug info (Rust: `[profile.release] debug = true`) heapscope hooks them where they were inlined"
        ));
    }
}

/// How the warning that the allocator's free is inlined into
/// `__rust_dealloc` starts (it is withdrawn when DWARF lets those frees be
/// hooked where they were inlined).
pub(crate) const FREE_INLINED_WARNING: &str = "the allocator's free is inlined into";

/// The direct calls in `f` whose every argument is pushed just before the
/// call by `local.get` of one of `f`'s parameters (`Some(index)`) or by a
/// constant (`None`).
fn forwarding_calls(
    module: &Module,
    f: &walrus::LocalFunction,
) -> Vec<(FunctionId, Vec<Option<usize>>)> {
    use walrus::ir::{self, Instr};
    let mut out = Vec::new();
    crate::exported::for_each_direct_call(f, |instrs, i, callee| {
        let n = module
            .types
            .get(module.funcs.get(callee).ty())
            .params()
            .len();
        if n == 0 || n > i {
            return;
        }
        let args: Option<Vec<Option<usize>>> = instrs[i - n..i]
            .iter()
            .map(|(a, _)| match a {
                Instr::LocalGet(ir::LocalGet { local }) => {
                    f.args.iter().position(|p| p == local).map(Some)
                }
                Instr::Const(_) => Some(None),
                _ => None,
            })
            .collect();
        if let Some(args) = args {
            out.push((callee, args));
        }
    });
    out
}
