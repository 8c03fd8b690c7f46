//! A Rust `#[global_allocator]` of a stripped build, recognised by the
//! calls of its `__rust_realloc` (see `shapes` for the module's other
//! allocators).

use crate::discover::Shape;
use crate::exported::{calls_with_args, follow_forwarders, Arg};
use crate::shapes::{only, Hook};
use heapscope_trace::abi::AllocFn;
use walrus::{FunctionId, FunctionKind, Module, ValType};

/// Any Rust `#[global_allocator]` whose `__rust_realloc` is
/// `GlobalAlloc::realloc`'s default or calls the allocator's own alloc
/// and free (wee_alloc, talc, linked_list_allocator...): the one function
/// `(ptr, old_size, align, new_size) -> ptr` (with LTO, `(ptr, old_size,
/// new_size) -> ptr`) that calls a function returning a pointer with its
/// new size (and alignment, and constants: the allocator's `self`) and a
/// function returning nothing with its pointer. Those two are the
/// allocator's alloc and dealloc, and the arguments say where their
/// values are.
///
/// A `__rust_realloc` that only forwards its parameters to the
/// allocator's own `GlobalAlloc::realloc` (talc's `Talck::realloc(self,
/// ptr, align, old_size, new_size)`, left a function of its own in a WASI
/// std build, where other code calls it directly too) is read through:
/// that function's calls are the ones looked at, their arguments read as
/// `__rust_realloc`'s parameters, and it is hooked too, as
/// `GlobalAlloc::realloc`.
pub(crate) fn rust_realloc(module: &Module) -> Option<Vec<Hook>> {
    use ValType::I32;
    let returns = |c: FunctionId, r: &[ValType]| {
        let t = module.types.get(module.funcs.get(c).ty());
        t.params().iter().all(|p| *p == I32) && t.results() == r
    };
    let found: Vec<Vec<Hook>> = module
        .funcs
        .iter()
        .filter_map(|f| {
            let FunctionKind::Local(l) = &f.kind else {
                return None;
            };
            let ty = module.types.get(f.ty());
            // (ptr, old_size, align, new_size), or with LTO (ptr,
            // old_size, new_size): the alignment every call passes the
            // same dropped.
            let n = ty.params().len();
            if !(3..=4).contains(&n)
                || ty.params().iter().any(|p| *p != I32)
                || ty.results() != [I32]
            {
                return None;
            }
            let (new_size, align) = (n - 1, (n == 4).then_some(2));
            let pos = |args: &[Arg], p: usize| args.iter().position(|a| *a == Arg::Param(p));
            // The function doing the work: this one, or the realloc it
            // forwards to, with where each of its parameters comes from.
            let (body, through) =
                match follow_forwarders(module, f.id(), (0..n).map(Arg::Param).collect()) {
                    (g, args) if g != f.id() => {
                        let FunctionKind::Local(gl) = &module.funcs.get(g).kind else {
                            return None;
                        };
                        // A realloc: the pointer and the new size passed on.
                        if !returns(g, &[I32])
                            || pos(&args, 0).is_none()
                            || pos(&args, new_size).is_none()
                        {
                            return None;
                        }
                        (gl, Some((g, args)))
                    }
                    _ => (l, None),
                };
            let calls: Vec<(FunctionId, Vec<Arg>)> = calls_with_args(module, body)
                .into_iter()
                .filter(|(c, _)| *c != f.id() && through.as_ref().is_none_or(|(g, _)| c != g))
                .map(|(c, args)| match &through {
                    Some((_, outer)) => {
                        let args = args
                            .into_iter()
                            .map(|a| match a {
                                Arg::Param(q) => outer.get(q).copied().unwrap_or(Arg::Other),
                                Arg::Other => Arg::Other,
                            })
                            .collect();
                        (c, args)
                    }
                    None => (c, args),
                })
                .collect();
            let only_layout = |args: &[Arg]| {
                args.iter().all(|a| match a {
                    Arg::Param(p) => *p == new_size || Some(*p) == align,
                    Arg::Other => true,
                })
            };
            // A realloc of the allocator's own called here (the dlmalloc
            // crate's `Dlmalloc::realloc(self, ptr, new_size)`): the alloc
            // beside it is only for the requests that one cannot serve
            // (over-aligned ones), not the allocator's alloc.
            if calls.iter().any(|(c, args)| {
                returns(*c, &[I32]) && pos(args, 0).is_some() && pos(args, new_size).is_some()
            }) {
                return None;
            }
            let alloc = only(calls.iter().filter(|(c, args)| {
                returns(*c, &[I32]) && pos(args, new_size).is_some() && only_layout(args)
            }))?;
            let free =
                only(calls.iter().filter(|(c, args)| {
                    *c != alloc.0 && returns(*c, &[]) && pos(args, 0).is_some()
                }))?;
            let mut hooks = vec![
                (
                    AllocFn::GlobalAlloc,
                    alloc.0,
                    Shape::Alloc {
                        size: pos(&alloc.1, new_size)?,
                        count: None,
                        align: align.and_then(|a| pos(&alloc.1, a)),
                    },
                ),
                (
                    AllocFn::GlobalDealloc,
                    free.0,
                    Shape::Free {
                        ptr: pos(&free.1, 0)?,
                    },
                ),
                (
                    AllocFn::RustRealloc,
                    f.id(),
                    Shape::Realloc {
                        ptr: 0,
                        size: new_size,
                    },
                ),
            ];
            if let Some((g, args)) = through {
                hooks.push((
                    AllocFn::GlobalRealloc,
                    g,
                    Shape::Realloc {
                        ptr: pos(&args, 0)?,
                        size: pos(&args, new_size)?,
                    },
                ));
            }
            Some(hooks)
        })
        .collect();
    match &found[..] {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Whether Rust's standard library is in `module`: its data holds the
/// paths of std's, alloc's or core's sources that their panics' locations
/// name (`library/alloc/src/raw_vec.rs`), in any build that can panic.
pub(crate) fn has_rust_std(module: &Module) -> bool {
    const LIBRARY: &[u8] = b"library/";
    module.data.iter().any(|d| {
        d.value.windows(LIBRARY.len()).enumerate().any(|(i, w)| {
            w == LIBRARY
                && [&b"std/src/"[..], b"alloc/src/", b"core/src/"]
                    .iter()
                    .any(|lib| d.value[i + LIBRARY.len()..].starts_with(lib))
        })
    })
}
