//! What heapscope tells a user about allocators it did not hook: the
//! allocator families a module has, and functions that look like one.

use super::*;

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
