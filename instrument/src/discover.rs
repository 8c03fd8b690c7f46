//! Finding the allocator functions of a module.

use heapscope_trace::abi::AllocFn;
use std::fmt;
use walrus::{ExportItem, FunctionId, FunctionKind, Module, ValType};

/// How an allocator function was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
}

impl fmt::Display for FoundBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FoundBy::NameSection => "name section",
            FoundBy::DemangledName => "demangled name",
            FoundBy::Export => "export",
            FoundBy::User => "--alloc-fn",
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
    format!("{}, {}", c.join("/"), rust.join("/"))
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
    Some(match name {
        "malloc" => AllocFn::Malloc,
        "free" => AllocFn::Free,
        "calloc" => AllocFn::Calloc,
        "realloc" => AllocFn::Realloc,
        "aligned_alloc" => AllocFn::AlignedAlloc,
        "posix_memalign" => AllocFn::PosixMemalign,
        "memalign" => AllocFn::Memalign,
        "__rust_alloc" => AllocFn::RustAlloc,
        "__rust_alloc_zeroed" => AllocFn::RustAllocZeroed,
        "__rust_realloc" => AllocFn::RustRealloc,
        "__rust_dealloc" => AllocFn::RustDealloc,
        _ => return None,
    })
}

/// The role a demangled Rust path names: its last segment must be one of
/// the `__rust_*` shims (`__rustc::__rust_alloc` under the v0 scheme).
fn role_for_demangled(name: &str) -> Option<AllocFn> {
    let last = name.rsplit("::").next()?;
    match role_for_name(last)? {
        r @ (AllocFn::RustAlloc
        | AllocFn::RustAllocZeroed
        | AllocFn::RustRealloc
        | AllocFn::RustDealloc) => Some(r),
        _ => None,
    }
}

/// The parameter and result types a role's function must have, for a
/// memory whose pointers are `p` (i32 or i64). `int` is C's int (i32).
pub fn expected_signature(role: AllocFn, p: ValType) -> (Vec<ValType>, Vec<ValType>) {
    use AllocFn::*;
    let i = ValType::I32;
    match role {
        Malloc => (vec![p], vec![p]),
        Calloc => (vec![p, p], vec![p]),
        Realloc => (vec![p, p], vec![p]),
        Free => (vec![p], vec![]),
        AlignedAlloc | Memalign => (vec![p, p], vec![p]),
        PosixMemalign => (vec![p, p, p], vec![i]),
        RustAlloc | RustAllocZeroed => (vec![p, p], vec![p]),
        RustRealloc => (vec![p, p, p, p], vec![p]),
        RustDealloc => (vec![p, p, p], vec![]),
        Unknown => (vec![], vec![]),
    }
}

fn signature_ok(module: &Module, id: FunctionId, role: AllocFn, ptr: ValType) -> bool {
    let ty = module.types.get(module.funcs.get(id).ty());
    let (params, results) = expected_signature(role, ptr);
    ty.params() == params.as_slice() && ty.results() == results.as_slice()
}

/// Find the allocator functions of `module`. Imported functions are never
/// hooked (their allocations belong to the host). A function whose
/// signature does not fit its role is passed over with a warning in
/// `skipped`.
pub fn discover(
    module: &Module,
    overrides: &[AllocOverride],
    orig_index: &rustc_hash::FxHashMap<FunctionId, u32>,
    ptr: ValType,
    skipped: &mut Vec<String>,
) -> Result<Vec<Allocator>, String> {
    let mut found: Vec<Allocator> = Vec::new();
    let push = |found: &mut Vec<Allocator>, a: Allocator, skipped: &mut Vec<String>| {
        if found.iter().any(|f| f.role == a.role || f.id == a.id) {
            return;
        }
        if !matches!(module.funcs.get(a.id).kind, FunctionKind::Local(_)) {
            skipped.push(format!(
                "`{}` is imported; its allocations are the host's",
                a.name
            ));
            return;
        }
        if !signature_ok(module, a.id, a.role, ptr) {
            skipped.push(format!(
                "`{}` does not have the signature of {} ({:?}); not hooked",
                a.name,
                a.role.name(),
                expected_signature(a.role, ptr)
            ));
            return;
        }
        found.push(a);
    };

    for o in overrides {
        let id = match &o.func {
            FuncRef::Index(i) => orig_index.iter().find(|(_, v)| *v == i).map(|(k, _)| *k),
            FuncRef::Name(n) => module
                .funcs
                .by_name(n)
                .or_else(|| module.exports.get_func(n).ok()),
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
            .clone()
            .unwrap_or_else(|| format!("func[{}]", orig_index[&id]));
        let before = found.len();
        push(
            &mut found,
            Allocator {
                role: o.role,
                id,
                name: name.clone(),
                found_by: FoundBy::User,
            },
            skipped,
        );
        if found.len() == before {
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

    // Name section: exact C names, then demangled Rust shims.
    let mut by_demangled = Vec::new();
    for f in module.funcs.iter() {
        let Some(name) = &f.name else { continue };
        if let Some(role) = role_for_name(name) {
            push(
                &mut found,
                Allocator {
                    role,
                    id: f.id(),
                    name: name.clone(),
                    found_by: FoundBy::NameSection,
                },
                skipped,
            );
        } else if name.starts_with("_R") || name.starts_with("_ZN") {
            let d = demangle(name);
            if let Some(role) = role_for_demangled(&d) {
                by_demangled.push(Allocator {
                    role,
                    id: f.id(),
                    name: d,
                    found_by: FoundBy::DemangledName,
                });
            }
        }
    }
    for a in by_demangled {
        push(&mut found, a, skipped);
    }
    // Exports, for roles the name section did not give.
    for e in module.exports.iter() {
        if let ExportItem::Function(id) = e.item {
            if let Some(role) = role_for_name(&e.name) {
                push(
                    &mut found,
                    Allocator {
                        role,
                        id,
                        name: e.name.clone(),
                        found_by: FoundBy::Export,
                    },
                    skipped,
                );
            }
        }
    }
    found.sort_by_key(|a| a.role);
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
}
