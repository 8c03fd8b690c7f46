//! Finding the allocator functions of a module.

use heapscope_trace::abi::AllocFn;
use std::fmt;
use walrus::{ExportItem, FunctionId, FunctionKind, Module, ValType};

mod families;
mod names;
mod shape;
mod shims;

pub use families::{families, look_alikes};
pub use names::{demangle, looked_for};
pub(crate) use names::{is_global_alloc, is_rust_shim};
use names::{
    role_for_assemblyscript, role_for_demangled, role_for_name, role_for_wrap, wrapped_names,
    CABI_REALLOC_NAMES,
};
pub use shape::{shape, Shape};
use shims::derive_from_shims;
pub(crate) use shims::FREE_INLINED_WARNING;

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
    // The canonical ABI's allocator, by its export name whatever the name
    // section calls the function.
    for e in module.exports.iter() {
        if let ExportItem::Function(id) = e.item {
            if CABI_REALLOC_NAMES.contains(&e.name.as_str()) {
                push(
                    &mut found,
                    AllocFn::CabiRealloc,
                    id,
                    e.name.clone(),
                    FoundBy::Export,
                    skipped,
                );
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
