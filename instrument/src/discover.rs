//! Finding the allocator functions of a module.

use heapscope_trace::abi::AllocFn;
use std::fmt;
use walrus::{ExportItem, FunctionId, FunctionKind, Module, ValType};

/// How an allocator function was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// Its name in the name section.
    NameSection,
    /// Its demangled name in the name section.
    DemangledName,
    /// The name it is exported under.
    Export,
    /// `--alloc-fn` on the command line.
    User,
    /// Called by one of Rust's `__rust_*` shims, which forwards its
    /// arguments to it; the shim's call says which parameter is the size,
    /// the alignment and the pointer.
    ShimCall,
    /// A free inlined into the code that frees, found in DWARF
    /// (`DW_TAG_inlined_subroutine`) and hooked where that code starts.
    Dwarf,
    /// The export the app's JavaScript glue calls in this role
    /// (`--glue`, or the glue found beside the module).
    Glue,
    /// Called by a wasm-bindgen export found by name or glue, which
    /// forwards its values to it: the module's own allocator.
    ExportCall,
    /// Recognised by the shape of its code (a stripped build).
    CodeShape,
}

impl fmt::Display for FoundBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FoundBy::NameSection => "name section",
            FoundBy::DemangledName => "demangled name",
            FoundBy::Export => "export",
            FoundBy::User => "--alloc-fn",
            FoundBy::ShimCall => "__rust_* shim's call",
            FoundBy::Dwarf => "DWARF: inlined call",
            FoundBy::Glue => "JS glue",
            FoundBy::ExportCall => "wasm-bindgen export's call",
            FoundBy::CodeShape => "shape of its code",
        })
    }
}

/// A user's `--alloc-fn ROLE=NAME|INDEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocOverride {
    /// The role the function plays.
    pub role: AllocFn,
    /// Function name (name section or export) or index.
    pub func: FuncRef,
}

/// A function named by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FuncRef {
    /// By name (name section or export).
    Name(String),
    /// By index in the module's function index space.
    Index(u32),
}

impl std::str::FromStr for AllocOverride {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (role, func) = s
            .split_once('=')
            .ok_or_else(|| format!("expected ROLE=NAME|INDEX, got `{s}`"))?;
        let role = match role {
            "malloc" => AllocFn::Malloc,
            "free" => AllocFn::Free,
            "calloc" => AllocFn::Calloc,
            "realloc" => AllocFn::Realloc,
            "aligned" | "aligned_alloc" => AllocFn::AlignedAlloc,
            "memalign" => AllocFn::Memalign,
            "posix_memalign" => AllocFn::PosixMemalign,
            "rust_alloc" => AllocFn::RustAlloc,
            "rust_alloc_zeroed" => AllocFn::RustAllocZeroed,
            "rust_realloc" => AllocFn::RustRealloc,
            "rust_dealloc" => AllocFn::RustDealloc,
            other => {
                return Err(format!(
                    "unknown allocator role `{other}`; roles are malloc, free, calloc, realloc, aligned, memalign, posix_memalign, rust_alloc, rust_alloc_zeroed, rust_realloc, rust_dealloc"
                ))
            }
        };
        let func = match func.parse::<u32>() {
            Ok(i) => FuncRef::Index(i),
            Err(_) if !func.is_empty() => FuncRef::Name(func.to_string()),
            Err(_) => return Err(format!("`{s}` names no function")),
        };
        Ok(AllocOverride { role, func })
    }
}

/// One allocator function to hook.
#[derive(Debug, Clone)]
pub struct Allocator {
    /// Its role.
    pub role: AllocFn,
    /// The function.
    pub id: FunctionId,
    /// The name it was found by (or its index, for `--alloc-fn INDEX`).
    pub name: String,
    /// How it was found.
    pub found_by: FoundBy,
    /// Where its values are.
    pub shape: Shape,
}

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
        "{}, {}, C++ operator new/delete, AssemblyScript __new/__renew/__alloc/__free (and its runtime's ~lib/rt/tlsf/__alloc...), wasm-bindgen __wbindgen_malloc/__wbindgen_free/__wbindgen_realloc",
        c.join("/"),
        rust.join("/")
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

fn role_for_name(name: &str) -> Option<AllocFn> {
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
        _ => return None,
    })
}

/// The role of `__wrap_X`, the function the linker's `--wrap=X` sends
/// every call of the allocator function X to (`__wrap_malloc`,
/// `__wrap___libc_malloc`, musl's internal name for it).
fn role_for_wrap(name: &str) -> Option<AllocFn> {
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
fn wrapped_names(module: &Module) -> Vec<String> {
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
fn role_for_assemblyscript(name: &str) -> Option<AllocFn> {
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
fn role_for_demangled(name: &str) -> Option<AllocFn> {
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

/// Where a hooked function's values are: parameter indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Returns the new block's pointer; the size is `size` (times `count`).
    Alloc {
        /// Size parameter.
        size: usize,
        /// Element count parameter (calloc).
        count: Option<usize>,
        /// Alignment parameter.
        align: Option<usize>,
    },
    /// Stores the new block's pointer at `out` and returns 0 on success
    /// (posix_memalign).
    OutParam {
        /// Output pointer parameter.
        out: usize,
        /// Size parameter.
        size: usize,
        /// Alignment parameter.
        align: usize,
    },
    /// Frees the block at `ptr`.
    Free {
        /// Pointer parameter.
        ptr: usize,
    },
    /// Resizes the block at `ptr` to `size`, returning the new pointer.
    Realloc {
        /// Old pointer parameter.
        ptr: usize,
        /// New size parameter.
        size: usize,
    },
}

/// The shape of a function playing `role` with this signature, or `None`
/// when the signature does not fit the role. `p` is the pointer type of the
/// memory (i32, or i64 for memory64).
pub fn shape(role: AllocFn, params: &[ValType], results: &[ValType], p: ValType) -> Option<Shape> {
    use AllocFn::*;
    let n = params.len();
    let all_p = |n: usize| params.len() >= n && params[..n].iter().all(|t| *t == p);
    let returns_p = results == [p];
    let alloc = |size, count, align| Some(Shape::Alloc { size, count, align });
    match role {
        Malloc | AsAlloc if params == [p] && returns_p => alloc(0, None, None),
        // operator new(size) and operator new(size, const nothrow_t&)
        CxxNew if all_p(params.len()) && (1..=2).contains(&params.len()) && returns_p => {
            alloc(0, None, None)
        }
        Calloc if params == [p, p] && returns_p => alloc(1, Some(0), None),
        AlignedAlloc | Memalign if params == [p, p] && returns_p => alloc(1, None, Some(0)),
        RustAlloc | RustAllocZeroed if params == [p, p] && returns_p => alloc(0, None, Some(1)),
        CxxNewAligned if all_p(params.len()) && (2..=3).contains(&params.len()) && returns_p => {
            alloc(0, None, Some(1))
        }
        WbgMalloc if params == [p] && returns_p => alloc(0, None, None),
        WbgMalloc if params == [p, p] && returns_p => alloc(0, None, Some(1)),
        AsNew if params.len() == 2 && params[0] == p && params[1] == ValType::I32 && returns_p => {
            alloc(0, None, None)
        }
        PosixMemalign if params == [p, p, p] && results == [ValType::I32] => {
            Some(Shape::OutParam {
                out: 0,
                align: 1,
                size: 2,
            })
        }
        Realloc | AsRenew | AsRealloc if params == [p, p] && returns_p => {
            Some(Shape::Realloc { ptr: 0, size: 1 })
        }
        RustRealloc if params == [p, p, p, p] && returns_p => {
            Some(Shape::Realloc { ptr: 0, size: 3 })
        }
        // LTO dropped a parameter every call passes the same constant (the
        // alignment, or the old size): the pointer is still first, the new
        // size still last.
        RustRealloc if params == [p, p, p] && returns_p => Some(Shape::Realloc { ptr: 0, size: 2 }),
        WbgRealloc if params == [p, p, p, p] && returns_p => {
            Some(Shape::Realloc { ptr: 0, size: 2 })
        }
        // Older wasm-bindgen: (ptr, old_size, new_size), no alignment.
        WbgRealloc if params == [p, p, p] && returns_p => Some(Shape::Realloc { ptr: 0, size: 2 }),
        Free | AsFree if params == [p] && results.is_empty() => Some(Shape::Free { ptr: 0 }),
        // With LTO, the size or alignment may be dropped: the pointer is first.
        RustDealloc if (2..=3).contains(&n) && all_p(n) && results.is_empty() => {
            Some(Shape::Free { ptr: 0 })
        }
        WbgFree | CxxDelete
            if all_p(params.len()) && (1..=3).contains(&params.len()) && results.is_empty() =>
        {
            Some(Shape::Free { ptr: 0 })
        }
        // `GlobalAlloc` methods as found by name, for when no `__rust_*`
        // shim is left to say where their values are (LTO inlined the
        // shims; a shim's call overrides this). LTO drops a parameter every
        // call passes the same constant: `self` (a static's address)
        // first, then a layout field no call varies (the alignment, far
        // more often than the size). A `Layout` arrives as (align, size),
        // rustc's order today, as the shims' calls show where they remain.
        GlobalAlloc | GlobalAllocZeroed if (1..=3).contains(&n) && all_p(n) && returns_p => {
            if n == 1 {
                alloc(0, None, None)
            } else {
                alloc(n - 1, None, Some(n - 2))
            }
        }
        GlobalDealloc if (1..=4).contains(&n) && all_p(n) && results.is_empty() => {
            Some(Shape::Free {
                ptr: usize::from(n == 4),
            })
        }
        GlobalRealloc if (2..=5).contains(&n) && all_p(n) && returns_p => Some(Shape::Realloc {
            ptr: usize::from(n == 5),
            size: n - 1,
        }),
        DlMalloc | DlCalloc if (1..=2).contains(&n) && all_p(n) && returns_p => {
            alloc(n - 1, None, None)
        }
        DlMemalign if (2..=3).contains(&n) && all_p(n) && returns_p => {
            alloc(n - 1, None, Some(n - 2))
        }
        DlFree if (1..=2).contains(&n) && all_p(n) && results.is_empty() => {
            Some(Shape::Free { ptr: n - 1 })
        }
        DlRealloc if (2..=3).contains(&n) && all_p(n) && returns_p => Some(Shape::Realloc {
            ptr: n - 2,
            size: n - 1,
        }),
        _ => None,
    }
}

/// Find the allocator functions of `module`. Imported functions are never
/// hooked (their allocations belong to the host). A function whose
/// signature does not fit its role is passed over with a warning in
/// `skipped`.
///
/// Order of precedence: `--alloc-fn`, then name-section names (exact, then
/// demangled; a role may have several functions, like C++'s `new` and
/// `new[]`), then export names for roles nothing else found (so the
/// `malloc.command_export` wrapper of a C command is not hooked beside
/// `malloc` itself).
pub fn discover(
    module: &Module,
    overrides: &[AllocOverride],
    orig_index: &rustc_hash::FxHashMap<FunctionId, u32>,
    ptr: ValType,
    skipped: &mut Vec<String>,
) -> Result<Vec<Allocator>, String> {
    let push = |found: &mut Vec<Allocator>,
                role: AllocFn,
                id: FunctionId,
                name: String,
                found_by: FoundBy,
                skipped: &mut Vec<String>| {
        try_push(module, ptr, found, (role, id, name, found_by), skipped)
    };
    let mut found = overridden(module, overrides, orig_index, ptr, skipped)?;
    // `--wrap=X` (napi-rs's wasm32-wasi builds link mimalloc so): the
    // linker sent every call of X to `__wrap_X`, the allocator itself; a
    // function still named X is what JS calls (a thunk to `__wrap_X`) or
    // `__real_X`. Each `__wrap_X` is hooked in X's role, and X is not.
    let wrapped = wrapped_names(module);
    let is_wrapped = |name: &str| wrapped.iter().any(|w| w == name);
    for e in module.exports.iter() {
        if let ExportItem::Function(id) = e.item {
            if let Some(role) = role_for_wrap(&e.name).filter(|r| {
                !found
                    .iter()
                    .any(|f| f.role == *r && f.found_by == FoundBy::User)
            }) {
                let name = module.funcs.get(id).name.clone();
                let found_by = if name.as_deref() == Some(e.name.as_str()) {
                    FoundBy::NameSection
                } else {
                    FoundBy::Export
                };
                push(&mut found, role, id, e.name.clone(), found_by, skipped);
            }
        }
    }
    let mut demangled = Vec::new();
    for f in module.funcs.iter() {
        let Some(name) = &f.name else { continue };
        if let Some(role) = role_for_wrap(name) {
            push(
                &mut found,
                role,
                f.id(),
                name.clone(),
                FoundBy::NameSection,
                skipped,
            );
        } else if is_wrapped(name) {
            continue;
        } else if let Some(role) = role_for_name(name).or_else(|| role_for_assemblyscript(name)) {
            push(
                &mut found,
                role,
                f.id(),
                name.clone(),
                FoundBy::NameSection,
                skipped,
            );
        } else if name.starts_with("_R") || name.starts_with("_Z") {
            let d = demangle(name);
            if let Some(role) = role_for_demangled(&d) {
                demangled.push((role, f.id(), d));
            }
        }
    }
    for (role, id, name) in demangled {
        push(&mut found, role, id, name, FoundBy::DemangledName, skipped);
    }
    for e in module.exports.iter() {
        if let ExportItem::Function(id) = e.item {
            if let Some(role) = role_for_name(&e.name) {
                if !found.iter().any(|f| f.role == role) && !is_wrapped(&e.name) {
                    push(
                        &mut found,
                        role,
                        id,
                        e.name.clone(),
                        FoundBy::Export,
                        skipped,
                    );
                }
            }
        }
    }
    // AssemblyScript: with its allocator (TLSF) hooked, `__new` and
    // `__renew` would hide the calls to it they make, with object pointers
    // 16 bytes past the blocks its collector frees.
    if found.iter().any(|a| {
        matches!(a.role, AllocFn::AsAlloc | AllocFn::AsFree) && a.name.starts_with("~lib/rt/")
    }) {
        found.retain(|a| {
            a.found_by == FoundBy::User || !matches!(a.role, AllocFn::AsNew | AllocFn::AsRenew)
        });
    }
    if found
        .iter()
        .any(|a| a.role == AllocFn::AsNew && a.found_by != FoundBy::User)
        && !found.iter().any(|a| a.role == AllocFn::AsFree)
        && module
            .funcs
            .iter()
            .any(|f| f.name.as_deref().is_some_and(|n| n.starts_with("~lib/rt/")))
    {
        skipped.push(
            "AssemblyScript's allocator (`~lib/rt/tlsf/__alloc`, `__free`) is inlined in this build: objects are counted \
             from `__new`, and the frees its garbage collector makes are not seen, so every object looks live; \
             build with `asc --debug` and without `--optimize` to see them"
                .into(),
        );
    }
    derive_from_shims(module, ptr, &mut found, skipped);
    found.sort_by_key(|a| (a.role, orig_index.get(&a.id).copied()));
    Ok(found)
}

/// The allocator families whose functions `module` has, by the names
/// their code gives its functions: what a user knows the allocator as.
pub fn families(module: &Module) -> Vec<String> {
    const MARKS: [(&str, &str); 13] = [
        ("wee_alloc::", "wee_alloc"),
        ("talc::", "talc"),
        ("lol_alloc::", "lol_alloc"),
        ("buddy_system_allocator::", "buddy_system_allocator"),
        ("linked_list_allocator::", "linked_list_allocator"),
        ("dlmalloc::dlmalloc::Dlmalloc", "dlmalloc (Rust)"),
        ("~lib/rt/tlsf/", "TLSF (AssemblyScript)"),
        ("~lib/rt/stub/", "stub (AssemblyScript)"),
        ("emmalloc_", "emmalloc (emscripten)"),
        ("dlmalloc", "dlmalloc (C)"),
        ("mi_malloc", "mimalloc"),
        ("je_malloc", "jemalloc"),
        ("__wbindgen_malloc", "wasm-bindgen's exports"),
    ];
    let mut out: Vec<String> = Vec::new();
    let mut add = |family: &str| {
        if !out.iter().any(|f| f == family) {
            out.push(family.to_string());
        }
    };
    for f in module.funcs.iter() {
        let Some(name) = &f.name else { continue };
        let d = demangle(name);
        let d = d.trim_start_matches('<');
        for (mark, family) in MARKS {
            let hit = match mark {
                // wasi-libc's and emscripten's C allocator: `dlmalloc`,
                // `dlfree`... as whole names.
                "dlmalloc" => d == "dlmalloc" || d == "dlfree",
                _ => {
                    d.starts_with(mark)
                        || d.contains(&format!("<{mark}"))
                        || d.contains(&format!(" {mark}"))
                }
            };
            if hit {
                add(family);
            }
        }
    }
    for e in module.exports.iter() {
        if e.name == "__wbindgen_malloc" {
            add("wasm-bindgen's exports");
        }
    }
    out.sort();
    out
}

/// Local functions not in `hooked` whose (demangled) names or export
/// names look like an allocator's: a last path segment with `alloc`,
/// `free` or `new` in it (`my_pool_alloc`, `<Arena as Allocator>::allocate`,
/// `__new`), at most 8, names in function order, then export names.
pub fn look_alikes(module: &Module, hooked: &[Allocator]) -> Vec<String> {
    let mut out = Vec::new();
    let names = module
        .funcs
        .iter()
        .filter_map(|f| Some((f.id(), demangle(f.name.as_ref()?))));
    let exports = module.exports.iter().filter_map(|e| match e.item {
        ExportItem::Function(id) => Some((id, e.name.clone())),
        _ => None,
    });
    for (id, d) in names.chain(exports) {
        if out.len() == 8 {
            break;
        }
        if !matches!(module.funcs.get(id).kind, FunctionKind::Local(_))
            || hooked.iter().any(|a| a.id == id)
        {
            continue;
        }
        // The standard library's, accessors, the helpers of an allocator
        // already hooked (`~lib/rt/tlsf/allocateBlock`), and X when its
        // `__wrap_X` is hooked (a thunk to it).
        let library = ["alloc::", "core::", "std::", "__rustc::"]
            .iter()
            .any(|p| d.trim_start_matches('<').starts_with(p));
        if library
            || d.contains("#get:")
            || d.contains("#set:")
            || hooked.iter().any(|a| path_root(&a.name) == path_root(&d))
            || hooked
                .iter()
                .any(|a| a.name.strip_prefix("__wrap_") == Some(d.as_str()))
        {
            continue;
        }
        let last = d.rsplit("::").next().unwrap_or(&d).to_ascii_lowercase();
        let last = last.split(['<', '(']).next().unwrap_or("");
        if ["alloc", "free", "new"].iter().any(|w| last.contains(w))
            && !last.contains("no_alloc_shim")
            && !last.contains("heapscope")
            && !out.contains(&d)
        {
            out.push(d);
        }
    }
    out
}

/// The first part of a function's path: `~lib/rt/` for AssemblyScript's
/// runtime, the crate for Rust (`talc` of `<talc::talck::Talck as ...>`),
/// the whole name for C.
fn path_root(name: &str) -> &str {
    if let Some(rest) = name.strip_prefix("~lib/rt/") {
        return &name[..name.len() - rest.len()];
    }
    let name = name.trim_start_matches('<');
    name.split_once("::").map_or(name, |(root, _)| root)
}

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
fn derive_from_shims(
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

/// Add `role` at function `id` to `found` unless it is there already, is
/// imported, or has a signature the role cannot have (said in `skipped`);
/// whether it was added.
pub(crate) fn try_push(
    module: &Module,
    ptr: ValType,
    found: &mut Vec<Allocator>,
    (role, id, name, found_by): (AllocFn, FunctionId, String, FoundBy),
    skipped: &mut Vec<String>,
) -> bool {
    if found.iter().any(|f| f.id == id) {
        return false;
    }
    if !matches!(module.funcs.get(id).kind, FunctionKind::Local(_)) {
        skipped.push(format!(
            "`{name}` is imported; its allocations are the host's"
        ));
        return false;
    }
    let ty = module.types.get(module.funcs.get(id).ty());
    let named_free = |params: &[ValType], results: &[ValType]| {
        // A free the user named takes its pointer first, whatever else
        // (a size, an alignment: talc's `free(ptr, layout)`).
        (role.hook() == heapscope_trace::abi::HOOK_FREE
            && found_by == FoundBy::User
            && !params.is_empty()
            && params.iter().all(|t| *t == ptr)
            && results.is_empty())
        .then_some(Shape::Free { ptr: 0 })
    };
    match shape(role, ty.params(), ty.results(), ptr)
        .or_else(|| named_free(ty.params(), ty.results()))
    {
        Some(shape) => {
            found.push(Allocator {
                role,
                id,
                name,
                found_by,
                shape,
            });
            true
        }
        None => {
            skipped.push(format!(
                "`{name}` looks like {} but its signature {:?} -> {:?} does not fit; not hooked",
                role.name(),
                ty.params(),
                ty.results()
            ));
            false
        }
    }
}

/// The function whose demangled name is `name` (as `heapscope instrument`
/// prints it, `<talc::talck::Talck<R, O> as ...>::alloc`), or whose
/// demangled name without the legacy scheme's hash is.
fn by_demangled_name(module: &Module, name: &str) -> Option<FunctionId> {
    module.funcs.iter().find_map(|f| {
        let raw = f.name.as_deref()?;
        (demangle(raw) == name).then(|| f.id())
    })
}

/// The functions `--alloc-fn` names, each checked against its role.
fn overridden(
    module: &Module,
    overrides: &[AllocOverride],
    orig_index: &rustc_hash::FxHashMap<FunctionId, u32>,
    ptr: ValType,
    skipped: &mut Vec<String>,
) -> Result<Vec<Allocator>, String> {
    let mut found: Vec<Allocator> = Vec::new();
    for o in overrides {
        let id = match &o.func {
            FuncRef::Index(i) => orig_index.iter().find(|(_, v)| *v == i).map(|(k, _)| *k),
            FuncRef::Name(n) => module
                .funcs
                .by_name(n)
                .or_else(|| module.exports.get_func(n).ok())
                .or_else(|| by_demangled_name(module, n)),
        };
        let Some(id) = id else {
            return Err(format!(
                "`--alloc-fn {}={}` names no function of the module",
                o.role.name(),
                match &o.func {
                    FuncRef::Index(i) => i.to_string(),
                    FuncRef::Name(n) => n.clone(),
                }
            ));
        };
        let name = module
            .funcs
            .get(id)
            .name
            .as_deref()
            .map(demangle)
            .unwrap_or_else(|| format!("func[{}]", orig_index[&id]));
        if !try_push(
            module,
            ptr,
            &mut found,
            (o.role, id, name.clone(), FoundBy::User),
            skipped,
        ) {
            return Err(format!(
                "`--alloc-fn {}` cannot hook `{name}`: {}",
                o.role.name(),
                skipped
                    .last()
                    .map(String::as_str)
                    .unwrap_or("it is already hooked in another role")
            ));
        }
    }

    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_overrides() {
        assert_eq!(
            "malloc=my_alloc".parse::<AllocOverride>().unwrap(),
            AllocOverride {
                role: AllocFn::Malloc,
                func: FuncRef::Name("my_alloc".into())
            }
        );
        assert_eq!(
            "free=12".parse::<AllocOverride>().unwrap(),
            AllocOverride {
                role: AllocFn::Free,
                func: FuncRef::Index(12)
            }
        );
        assert!("bogus=1"
            .parse::<AllocOverride>()
            .unwrap_err()
            .starts_with("unknown allocator role `bogus`"));
        assert!("malloc".parse::<AllocOverride>().is_err());
    }

    #[test]
    fn matches_rust_shims_by_demangled_name() {
        let v0 = "_RNvCs691rhTbG0Ee_7___rustc12___rust_alloc";
        assert_eq!(demangle(v0), "__rustc::__rust_alloc");
        assert_eq!(role_for_demangled(&demangle(v0)), Some(AllocFn::RustAlloc));
        assert_eq!(
            role_for_demangled("__rustc::__rust_no_alloc_shim_is_unstable_v2"),
            None
        );
        assert_eq!(role_for_demangled("mycrate::malloc"), None);
    }

    #[test]
    fn matches_allocators_underneath_the_shims() {
        // Seen in an LTO build for wasm32-unknown-unknown.
        let public =
            demangle("_RNvMs0_Csjqx8TIyZbP9_8dlmallocNtB5_8Dlmalloc6mallocCsebHcaeoSrxy_3std");
        let inner = demangle(
            "_RNvMs0_NtCsjqx8TIyZbP9_8dlmalloc8dlmallocINtB5_8DlmallocNtNtB7_3sys6SystemE4freeCsebHcaeoSrxy_3std",
        );
        assert_eq!(
            role_for_demangled(&public),
            None,
            "{public}: the wrapper of the inner layer"
        );
        assert_eq!(role_for_demangled(&inner), Some(AllocFn::DlFree), "{inner}");
        assert_eq!(
            role_for_demangled(
                "<talc::talck::Talck<R, O> as core::alloc::global::GlobalAlloc>::dealloc"
            ),
            Some(AllocFn::GlobalDealloc)
        );
        assert_eq!(
            role_for_demangled("<dlmalloc::dlmalloc::Dlmalloc<A>>::init_top"),
            None
        );
        // `self` constant-propagated away (LTO) or not.
        use ValType::I32;
        assert_eq!(
            shape(AllocFn::DlMalloc, &[I32], &[I32], I32),
            Some(Shape::Alloc {
                size: 0,
                count: None,
                align: None
            })
        );
        assert_eq!(
            shape(AllocFn::DlMalloc, &[I32, I32], &[I32], I32),
            Some(Shape::Alloc {
                size: 1,
                count: None,
                align: None
            })
        );
        assert_eq!(
            shape(AllocFn::DlRealloc, &[I32, I32, I32], &[I32], I32),
            Some(Shape::Realloc { ptr: 1, size: 2 })
        );
        // Without a shim: (align, size), rustc's order, `self` dropped
        // by LTO; one parameter left is the size.
        assert_eq!(
            shape(AllocFn::GlobalAlloc, &[I32, I32], &[I32], I32),
            Some(Shape::Alloc {
                size: 1,
                count: None,
                align: Some(0)
            })
        );
        assert_eq!(
            shape(AllocFn::GlobalAlloc, &[I32, I32, I32], &[I32], I32),
            Some(Shape::Alloc {
                size: 2,
                count: None,
                align: Some(1)
            })
        );
        assert_eq!(
            shape(AllocFn::GlobalAlloc, &[I32], &[I32], I32),
            Some(Shape::Alloc {
                size: 0,
                count: None,
                align: None
            })
        );
        assert_eq!(
            shape(AllocFn::GlobalDealloc, &[I32, I32], &[], I32),
            Some(Shape::Free { ptr: 0 })
        );
        assert_eq!(
            shape(AllocFn::GlobalDealloc, &[I32, I32, I32, I32], &[], I32),
            Some(Shape::Free { ptr: 1 })
        );
    }

    #[test]
    fn matches_cxx_operators_by_demangled_name() {
        assert_eq!(demangle("_Znwm"), "operator new(unsigned long)");
        assert_eq!(
            role_for_demangled(&demangle("_Znwm")),
            Some(AllocFn::CxxNew)
        );
        assert_eq!(
            role_for_demangled(&demangle("_Znam")),
            Some(AllocFn::CxxNew)
        );
        assert_eq!(
            role_for_demangled(&demangle("_ZnwmSt11align_val_t")),
            Some(AllocFn::CxxNewAligned)
        );
        assert_eq!(
            role_for_demangled(&demangle("_ZdlPv")),
            Some(AllocFn::CxxDelete)
        );
        assert_eq!(
            role_for_demangled(&demangle("_ZdaPvm")),
            Some(AllocFn::CxxDelete)
        );
        assert_eq!(role_for_demangled("operator new_handler()"), None);
        assert_eq!(role_for_demangled("operator delete_thing"), None);
    }

    #[test]
    fn shapes_check_signatures() {
        use ValType::{I32, I64};
        assert_eq!(
            shape(AllocFn::Malloc, &[I32], &[I32], I32),
            Some(Shape::Alloc {
                size: 0,
                count: None,
                align: None
            })
        );
        assert_eq!(
            shape(AllocFn::Malloc, &[I64], &[I64], I64),
            Some(Shape::Alloc {
                size: 0,
                count: None,
                align: None
            })
        );
        assert_eq!(
            shape(AllocFn::Malloc, &[I32], &[I32], I64),
            None,
            "memory64 malloc takes i64"
        );
        assert_eq!(
            shape(AllocFn::Free, &[I32], &[I32], I32),
            None,
            "free returns nothing"
        );
        assert_eq!(
            shape(AllocFn::Calloc, &[I32, I32], &[I32], I32),
            Some(Shape::Alloc {
                size: 1,
                count: Some(0),
                align: None
            })
        );
        assert_eq!(
            shape(AllocFn::PosixMemalign, &[I32, I32, I32], &[I32], I32),
            Some(Shape::OutParam {
                out: 0,
                align: 1,
                size: 2
            })
        );
        assert_eq!(
            shape(AllocFn::WbgRealloc, &[I32, I32, I32, I32], &[I32], I32),
            Some(Shape::Realloc { ptr: 0, size: 2 })
        );
        assert_eq!(
            shape(AllocFn::CxxDelete, &[I32, I32], &[], I32),
            Some(Shape::Free { ptr: 0 })
        );
        assert_eq!(
            shape(AllocFn::AsNew, &[I32, I32], &[I32], I32),
            Some(Shape::Alloc {
                size: 0,
                count: None,
                align: None
            })
        );
    }
}
