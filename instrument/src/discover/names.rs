//! Allocator roles by name: exact names, `__wrap_X`, AssemblyScript's
//! runtime, demangled Rust and C++ names.

use super::*;

/// The names heapscope looks for, for error messages.
pub fn looked_for() -> String {
    let c: Vec<_> = [
        AllocFn::Malloc,
        AllocFn::Free,
        AllocFn::Calloc,
        AllocFn::Realloc,
        AllocFn::AlignedAlloc,
        AllocFn::PosixMemalign,
        AllocFn::Memalign,
    ]
    .iter()
    .map(|r| r.name())
    .collect();
    let rust: Vec<_> = [
        AllocFn::RustAlloc,
        AllocFn::RustDealloc,
        AllocFn::RustRealloc,
        AllocFn::RustAllocZeroed,
    ]
    .iter()
    .map(|r| r.name())
    .collect();
    format!(
        "{}, {}, C++ operator new/delete, AssemblyScript __new/__renew/__alloc/__free (and its runtime's ~lib/rt/tlsf/__alloc...), wasm-bindgen __wbindgen_malloc/__wbindgen_free/__wbindgen_realloc, the canonical ABI's {}",
        c.join("/"),
        rust.join("/"),
        CABI_REALLOC_NAMES.join("/")
    )
}

/// Demangle a Rust (legacy or v0) or C++ symbol; other names come back as
/// they are.
pub fn demangle(name: &str) -> String {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return format!("{d:#}");
    }
    if name.starts_with("_Z") {
        if let Ok(sym) = cpp_demangle::Symbol::new(name) {
            if let Ok(s) = sym.demangle(&Default::default()) {
                return s;
            }
        }
    }
    name.to_string()
}

pub(super) fn role_for_name(name: &str) -> Option<AllocFn> {
    use AllocFn::*;
    Some(match name {
        "malloc" | "emscripten_builtin_malloc" => Malloc,
        "free" | "emscripten_builtin_free" => Free,
        "calloc" | "emscripten_builtin_calloc" => Calloc,
        "realloc" | "emscripten_builtin_realloc" => Realloc,
        "aligned_alloc" => AlignedAlloc,
        "posix_memalign" => PosixMemalign,
        "memalign" | "emscripten_builtin_memalign" => Memalign,
        "__rust_alloc" => RustAlloc,
        "__rust_alloc_zeroed" => RustAllocZeroed,
        "__rust_realloc" => RustRealloc,
        "__rust_dealloc" => RustDealloc,
        "__new" => AsNew,
        "__renew" => AsRenew,
        "__alloc" => AsAlloc,
        "__free" => AsFree,
        "__wbindgen_malloc" => WbgMalloc,
        "__wbindgen_free" => WbgFree,
        "__wbindgen_realloc" => WbgRealloc,
        n if CABI_REALLOC_NAMES.contains(&n) => CabiRealloc,
        _ => return None,
    })
}

/// The names of the canonical ABI's allocator: a component's core module
/// exports `cabi_realloc`. The preview-1 adapter's `cabi_import_realloc`
/// and `cabi_export_realloc` are not among them: they hand out parts of
/// buffers the caller passed in (an `fd_read`'s buffer, the argument
/// strings' storage) or of the adapter's own arena, never a heap block,
/// and hooked they would be blocks inside the program's blocks that are
/// never freed, leaks of the program that are not.
pub(super) const CABI_REALLOC_NAMES: [&str; 1] = ["cabi_realloc"];

/// The role of `__wrap_X`, the function the linker's `--wrap=X` sends
/// every call of the allocator function X to (`__wrap_malloc`,
/// `__wrap___libc_malloc`, musl's internal name for it).
pub(super) fn role_for_wrap(name: &str) -> Option<AllocFn> {
    let x = name.strip_prefix("__wrap_")?;
    let role = role_for_name(x.strip_prefix("__libc_").unwrap_or(x))?;
    matches!(
        role,
        AllocFn::Malloc
            | AllocFn::Free
            | AllocFn::Calloc
            | AllocFn::Realloc
            | AllocFn::AlignedAlloc
            | AllocFn::PosixMemalign
            | AllocFn::Memalign
    )
    .then_some(role)
}

/// The names X of the module's functions `__wrap_X` in an allocator role
/// (by name-section or export name).
pub(super) fn wrapped_names(module: &Module) -> Vec<String> {
    let names = module.funcs.iter().filter_map(|f| f.name.as_deref());
    let exports = module.exports.iter().filter_map(|e| match e.item {
        ExportItem::Function(_) => Some(e.name.as_str()),
        _ => None,
    });
    names
        .chain(exports)
        .filter(|n| role_for_wrap(n).is_some())
        .filter_map(|n| n.strip_prefix("__wrap_"))
        .map(str::to_string)
        .collect()
}

/// The role of an AssemblyScript runtime function, by the name `asc` gives
/// it: `~lib/rt/tlsf/__alloc`, `~lib/rt/tlsf/__free`,
/// `~lib/rt/tlsf/__realloc` (the allocator, TLSF or the stub runtime's
/// bump), `~lib/rt/itcms/__new` and `~lib/rt/itcms/__renew` (the garbage
/// collector's objects).
pub(super) fn role_for_assemblyscript(name: &str) -> Option<AllocFn> {
    let (_runtime, function) = name.strip_prefix("~lib/rt/")?.split_once('/')?;
    Some(match function {
        "__alloc" => AllocFn::AsAlloc,
        "__free" => AllocFn::AsFree,
        "__realloc" => AllocFn::AsRealloc,
        "__new" => AllocFn::AsNew,
        "__renew" => AllocFn::AsRenew,
        _ => return None,
    })
}

/// The role a demangled name plays: the Rust shims under any path
/// (`__rustc::__rust_alloc` under the v0 scheme), and C++'s global
/// `operator new`/`operator delete` in all their forms.
pub(super) fn role_for_demangled(name: &str) -> Option<AllocFn> {
    if let Some(rest) = name.strip_prefix("operator new") {
        let rest = rest.strip_prefix("[]").unwrap_or(rest);
        if rest.starts_with('(') {
            return Some(if rest.contains("align_val_t") {
                AllocFn::CxxNewAligned
            } else {
                AllocFn::CxxNew
            });
        }
        return None;
    }
    if let Some(rest) = name.strip_prefix("operator delete") {
        let rest = rest.strip_prefix("[]").unwrap_or(rest);
        return rest.starts_with('(').then_some(AllocFn::CxxDelete);
    }
    if let Some((path, method)) = name.rsplit_once("::") {
        // Allocators underneath Rust's shims, for when LTO inlined the shims.
        if path.ends_with(" as core::alloc::global::GlobalAlloc>") {
            return match method {
                "alloc" => Some(AllocFn::GlobalAlloc),
                "alloc_zeroed" => Some(AllocFn::GlobalAllocZeroed),
                "dealloc" => Some(AllocFn::GlobalDealloc),
                "realloc" => Some(AllocFn::GlobalRealloc),
                _ => None,
            };
        }
        // talc's arena, which `Talck`'s `GlobalAlloc` methods lock and call:
        // `talc::talc::Talc<O>::malloc(&mut self, Layout)` and
        // `free(&mut self, ptr, Layout)` (legacy), `<talc::talc::Talc<_>>::…`
        // (v0). With LTO they are all that is left of the allocator; their
        // parameters follow the `GlobalAlloc` methods' (`self` first, then
        // the layout, and LTO drops what every call passes the same).
        if path.trim_start_matches('<').starts_with("talc::talc::Talc") {
            return match method {
                "malloc" => Some(AllocFn::GlobalAlloc),
                "free" => Some(AllocFn::GlobalDealloc),
                _ => None,
            };
        }
        // dlmalloc's inner layer, which does the work; its public `Dlmalloc`
        // wrapper calls it (and is often inlined away).
        // `<dlmalloc::dlmalloc::Dlmalloc<A>>::malloc` (v0) or
        // `dlmalloc::dlmalloc::Dlmalloc<A>::malloc` (legacy, the crate's own
        // builds).
        if path
            .trim_start_matches('<')
            .starts_with("dlmalloc::dlmalloc::Dlmalloc")
        {
            return match method {
                "malloc" => Some(AllocFn::DlMalloc),
                "calloc" => Some(AllocFn::DlCalloc),
                "free" => Some(AllocFn::DlFree),
                "realloc" => Some(AllocFn::DlRealloc),
                "memalign" => Some(AllocFn::DlMemalign),
                _ => None,
            };
        }
    }
    let last = name.rsplit("::").next()?;
    role_for_name(last).filter(|r| is_rust_shim(*r))
}

/// Whether `role` is one of rustc's `__rust_*` allocator shims.
pub(crate) fn is_rust_shim(role: AllocFn) -> bool {
    matches!(
        role,
        AllocFn::RustAlloc | AllocFn::RustAllocZeroed | AllocFn::RustDealloc | AllocFn::RustRealloc
    )
}

/// Whether `role` is a method of a `GlobalAlloc` impl.
pub(crate) fn is_global_alloc(role: AllocFn) -> bool {
    matches!(
        role,
        AllocFn::GlobalAlloc
            | AllocFn::GlobalAllocZeroed
            | AllocFn::GlobalDealloc
            | AllocFn::GlobalRealloc
    )
}
