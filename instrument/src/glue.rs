//! Reading allocator roles from an app's own JavaScript glue.
//!
//! Stripped and minified builds name their allocator exports after
//! nothing: wasm-bindgen's `__wbindgen_export_0`, emscripten's `Ia`. The
//! glue that calls them says what they are:
//!
//! - wasm-bindgen: `passStringToWasm0(arg, wasm.M, wasm.R)` (malloc,
//!   realloc), `passArray8ToWasm0(arg, wasm.M)` (malloc), and the frees
//!   `wasm.F(r0, r1 * 4, 4)` / `wasm.F(ptr, len * 1)`;
//! - emscripten: `_malloc=c.Ia`, `_malloc = wasmExports["Xa"]`,
//!   `_malloc = Module["_malloc"] = wasmExports["Xa"]`, the same for
//!   `_free`, `_calloc`, `_realloc` and `_emscripten_builtin_memalign`; and
//!   the import that grows the heap (`emscripten_resize_heap`, renamed to a
//!   letter): the key of the imports object whose function calls
//!   `memory.grow` with a size rounded to 65,536-byte pages.
//!
//! The glue is untrusted input: it is read as text, never run; every scan
//! is linear and bounded ([`MAX_GLUE_BYTES`], [`MAX_MATCHES`]), and a glue
//! that matches nothing gives nothing.

use heapscope_trace::abi::AllocFn;
use std::path::{Path, PathBuf};

/// The largest glue file read (bigger ones are refused, said by the caller).
pub const MAX_GLUE_BYTES: u64 = 32 << 20;
/// At most this many occurrences of a pattern are looked at per file.
const MAX_MATCHES: usize = 20_000;
/// At most this many JavaScript files beside a module are read when
/// looking for its glue.
pub const MAX_GLUE_CANDIDATES: usize = 64;

/// What a glue file says about a module's exports and imports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Glue {
    /// The file it was read from, as the user named it (for messages).
    pub file: String,
    /// Export names and the roles the glue calls them in.
    pub roles: Vec<(AllocFn, String)>,
    /// The name of the import whose function is emscripten's
    /// `emscripten_resize_heap` under another name.
    pub resize_heap: Option<String>,
}

impl Glue {
    /// Whether the glue said nothing heapscope can use.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.resize_heap.is_none()
    }

    /// Whether the glue says what the export names do not: an export
    /// named other than its role (`__wbindgen_export_0`, `Ia`), or a
    /// renamed `emscripten_resize_heap`.
    pub fn tells_more_than_names(&self) -> bool {
        self.resize_heap.is_some() || self.roles.iter().any(|(r, n)| n != r.name())
    }

    /// One line saying which roles came from which file:
    /// `` roles from the JS glue `sql-wasm.js`: malloc=Ia, free=Ja ``.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .roles
            .iter()
            .map(|(r, n)| format!("{}={n}", r.name()))
            .collect();
        if let Some(r) = &self.resize_heap {
            parts.push(format!("emscripten_resize_heap=import `{r}`"));
        }
        format!(
            "roles from the JS glue `{}`: {}",
            self.file,
            parts.join(", ")
        )
    }
}

/// Read what `js` (a glue file's text, named `file` in messages) says.
pub fn read(file: &str, js: &str) -> Glue {
    let mut roles = wasm_bindgen_roles(js);
    for (role, name) in emscripten_roles(js) {
        if !roles.iter().any(|(r, n)| *r == role || *n == name) {
            roles.push((role, name));
        }
    }
    Glue {
        file: file.to_string(),
        roles,
        resize_heap: emscripten_resize_heap(js),
    }
}

/// Read the glue file at `path` (at most [`MAX_GLUE_BYTES`]).
pub fn read_file(path: &Path) -> Result<Glue, String> {
    use std::io::Read;
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("`{}` is not a regular file", path.display()));
    }
    if meta.len() > MAX_GLUE_BYTES {
        return Err(format!(
            "`{}` is {} bytes, more than the {} a glue file may have",
            path.display(),
            meta.len(),
            MAX_GLUE_BYTES
        ));
    }
    let mut bytes = Vec::new();
    f.take(MAX_GLUE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    Ok(read(
        &path.display().to_string(),
        &String::from_utf8_lossy(&bytes),
    ))
}

/// The glue of the module at `module` whose exports are `exports`: of the
/// JavaScript files in its folder (`.js`, `.mjs`, `.cjs`; at most
/// [`MAX_GLUE_CANDIDATES`], each at most [`MAX_GLUE_BYTES`]), the one whose
/// roles name most of the module's exports; on a tie, the one named after
/// the module (`<name>.js`, `<name>_bg.js`, `<name without _bg>.js`).
pub fn find_beside(module: &Path, exports: &[String]) -> Option<Glue> {
    let dir = match module.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = module.file_stem()?.to_string_lossy().into_owned();
    let stem_plain = stem.strip_suffix("_bg").unwrap_or(&stem).to_string();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "js" || x == "mjs" || x == "cjs")
        })
        .take(4 * MAX_GLUE_CANDIDATES)
        .collect();
    files.sort();
    let named = |p: &Path| {
        let s = p.file_stem().map(|s| s.to_string_lossy().into_owned());
        s.is_some_and(|s| s == stem || s == stem_plain || s == format!("{stem_plain}_bg"))
    };
    // Files named after the module first, so they are read whatever the cap.
    files.sort_by_key(|p| !named(p));
    let mut best: Option<(usize, bool, Glue)> = None;
    for p in files.into_iter().take(MAX_GLUE_CANDIDATES) {
        let Ok(g) = read_file(&p) else { continue };
        let hits = g
            .roles
            .iter()
            .filter(|(_, n)| exports.iter().any(|e| e == n))
            .count();
        if hits == 0 {
            continue;
        }
        let is_named = named(&p);
        if best
            .as_ref()
            .is_none_or(|(h, n, _)| (hits, is_named) > (*h, *n))
        {
            best = Some((hits, is_named, g));
        }
    }
    best.map(|(_, _, g)| g)
}

/// At most this many directory entries are looked at when looking for a
/// glue that embeds its module ([`find_embedding`]).
pub const MAX_EMBEDDING_ENTRIES: usize = 50_000;
/// At most this many bytes of JavaScript are read looking for it.
const MAX_EMBEDDING_BYTES: u64 = 1 << 30;

/// The glue that carries `module` (its bytes) inside itself, base64 (a
/// `data:` URL: yoga-layout's, emscripten's `SINGLE_FILE`): the module
/// file heapscope is given is then a copy taken out of it, and the glue is
/// not beside it. Looked for where Node would load it from for the app
/// `script`: the script's folder and every `node_modules` folder of it and
/// its parents (each at most 12 levels deep, links not followed; at most
/// [`MAX_EMBEDDING_ENTRIES`] entries and 1 GiB of `.js`, `.mjs` and `.cjs`
/// files in all). Of the files holding the module's whole base64 text,
/// the first (by path) whose roles name one of `exports`.
pub fn find_embedding(module: &[u8], script: &Path, exports: &[String]) -> Option<Glue> {
    if module.is_empty() {
        return None;
    }
    let needle = base64(module);
    let dir = match script.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let mut roots = vec![(dir.clone(), 0usize)];
    for a in dir.ancestors() {
        let nm = a.join("node_modules");
        if std::fs::symlink_metadata(&nm).is_ok_and(|m| m.is_dir()) {
            roots.push((nm, 12));
        }
    }
    let (mut entries, mut bytes) = (0usize, 0u64);
    for (root, depth) in roots {
        let mut files = Vec::new();
        walk(&root, depth, &mut entries, &mut files);
        files.sort();
        for p in files {
            let Ok(meta) = std::fs::metadata(&p) else {
                continue;
            };
            if meta.len() < needle.len() as u64 || meta.len() > MAX_GLUE_BYTES {
                continue;
            }
            bytes += meta.len();
            if bytes > MAX_EMBEDDING_BYTES {
                return None;
            }
            let Ok(text) = std::fs::read(&p) else {
                continue;
            };
            let text = String::from_utf8_lossy(&text);
            if !text.contains(&needle) {
                continue;
            }
            let g = read(&p.display().to_string(), &text);
            if g.roles.iter().any(|(_, n)| exports.contains(n)) {
                return Some(g);
            }
        }
    }
    None
}

/// The `.js`, `.mjs` and `.cjs` files under `dir`, `depth` levels down
/// (0: its own), links not followed, counting entries against the cap.
fn walk(dir: &Path, depth: usize, entries: &mut usize, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        *entries += 1;
        if *entries > MAX_EMBEDDING_ENTRIES {
            return;
        }
        let Ok(t) = e.file_type() else { continue };
        let p = e.path();
        if t.is_dir() {
            if depth > 0 {
                walk(&p, depth - 1, entries, out);
            }
        } else if t.is_file()
            && p.extension()
                .is_some_and(|x| x == "js" || x == "mjs" || x == "cjs")
        {
            out.push(p);
        }
    }
}

/// `bytes` in standard base64 with padding, as a `data:` URL carries them.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The names of `wasm`'s function exports (none when it does not parse).
pub fn function_exports(wasm: &[u8]) -> Vec<String> {
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::ExportSection(s)) => {
                return s
                    .into_iter()
                    .flatten()
                    .filter(|e| e.kind == wasmparser::ExternalKind::Func)
                    .map(|e| e.name.to_string())
                    .collect();
            }
            Ok(wasmparser::Payload::CodeSectionStart { .. }) | Err(_) => return Vec::new(),
            Ok(_) => {}
        }
    }
    Vec::new()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// The identifier starting at `i`, and where it ends.
fn ident_at(s: &[u8], i: usize) -> Option<(&str, usize)> {
    let mut j = i;
    while j < s.len() && is_ident(s[j]) && j - i < 256 {
        j += 1;
    }
    (j > i && !s[i].is_ascii_digit()).then(|| (std::str::from_utf8(&s[i..j]).unwrap_or(""), j))
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The arguments of the call whose `(` is at `open`, split at top-level
/// commas and trimmed; `None` past 400 bytes or an unbalanced bracket.
fn call_args(s: &[u8], open: usize) -> Option<Vec<&str>> {
    let mut depth = 0usize;
    let mut start = open + 1;
    let mut out = Vec::new();
    for (k, &b) in s.iter().enumerate().skip(open).take(400) {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    out.push(std::str::from_utf8(&s[start..k]).ok()?.trim());
                    return Some(out);
                }
            }
            b',' if depth == 1 => {
                out.push(std::str::from_utf8(&s[start..k]).ok()?.trim());
                start = k + 1;
            }
            b'"' | b'\'' | b'`' => return None,
            _ => {}
        }
    }
    None
}

/// `wasm.NAME` as an argument: NAME.
fn wasm_member(arg: &str) -> Option<&str> {
    let name = arg.strip_prefix("wasm.")?;
    (!name.is_empty() && name.bytes().all(is_ident)).then_some(name)
}

/// The occurrences of `pat` in `s`, at most [`MAX_MATCHES`].
fn occurrences<'a>(s: &'a str, pat: &'a str) -> impl Iterator<Item = usize> + 'a {
    s.match_indices(pat).map(|(i, _)| i).take(MAX_MATCHES)
}

/// Roles of wasm-bindgen's exports, by how its glue calls them: each
/// name's most frequent role wins; a name seen in two roles as often in
/// each is dropped.
fn wasm_bindgen_roles(js: &str) -> Vec<(AllocFn, String)> {
    let s = js.as_bytes();
    let mut votes: Vec<(AllocFn, String, usize)> = Vec::new();
    let mut vote = |role: AllocFn, name: &str| match votes
        .iter_mut()
        .find(|(r, n, _)| *r == role && n == name)
    {
        Some(v) => v.2 += 1,
        None => votes.push((role, name.to_string(), 1)),
    };
    for at in occurrences(js, "ToWasm0(") {
        let open = at + "ToWasm0".len();
        let mut b = at;
        while b > 0 && is_ident(s[b - 1]) && at - b < 64 {
            b -= 1;
        }
        let callee = &js[b..at];
        if !callee.starts_with("pass") || js[..b].trim_end().ends_with("function") {
            continue;
        }
        let Some(args) = call_args(s, open) else {
            continue;
        };
        if let Some(m) = args.get(1).and_then(|a| wasm_member(a)) {
            vote(AllocFn::WbgMalloc, m);
        }
        if callee == "passString" {
            if let Some(r) = args.get(2).and_then(|a| wasm_member(a)) {
                vote(AllocFn::WbgRealloc, r);
            }
        }
    }
    // Frees: `wasm.F(ptr, len * K, K)` or `wasm.F(ptr, len * K)`, the
    // size a length times an element size, the alignment that size.
    for at in occurrences(js, "wasm.") {
        if at > 0 && is_ident(s[at - 1]) {
            continue;
        }
        let Some((name, end)) = ident_at(s, at + 5) else {
            continue;
        };
        if s.get(end) != Some(&b'(') {
            continue;
        }
        let Some(args) = call_args(s, end) else {
            continue;
        };
        let plain = |a: &str| !a.is_empty() && a.bytes().all(is_ident);
        let elem = |a: &str| {
            let (len, k) = a.split_once('*')?;
            let k: u32 = k.trim().parse().ok()?;
            (plain(len.trim()) && [1, 2, 4, 8, 16].contains(&k)).then_some(k)
        };
        let is_free = match args.as_slice() {
            [p, l] => plain(p) && elem(l).is_some(),
            [p, l, k] => {
                plain(p)
                    && match (elem(l), k.parse::<u32>()) {
                        (Some(e), Ok(k)) => e == k,
                        (None, Ok(k)) => plain(l) && [1, 2, 4, 8, 16].contains(&k),
                        _ => false,
                    }
            }
            _ => false,
        };
        if is_free {
            vote(AllocFn::WbgFree, name);
        }
    }
    let mut out: Vec<(AllocFn, String)> = Vec::new();
    for role in [AllocFn::WbgMalloc, AllocFn::WbgRealloc, AllocFn::WbgFree] {
        let best = votes
            .iter()
            .filter(|(r, _, _)| *r == role)
            .max_by_key(|(_, _, c)| *c);
        let Some((_, name, count)) = best else {
            continue;
        };
        // A name called in another role at least as often is ambiguous.
        let contested = votes
            .iter()
            .any(|(r, n, c)| *r != role && n == name && *c >= *count);
        if !contested && !out.iter().any(|(_, n)| n == name) {
            out.push((role, name.clone()));
        }
    }
    out
}

/// Emscripten's exported C allocator functions, by the JS names its glue
/// assigns them to.
const EMSCRIPTEN_NAMES: [(&str, AllocFn); 8] = [
    ("_malloc", AllocFn::Malloc),
    ("_free", AllocFn::Free),
    ("_calloc", AllocFn::Calloc),
    ("_realloc", AllocFn::Realloc),
    ("_emscripten_builtin_memalign", AllocFn::Memalign),
    ("_memalign", AllocFn::Memalign),
    ("_emscripten_builtin_malloc", AllocFn::Malloc),
    ("_emscripten_builtin_free", AllocFn::Free),
];

/// `_malloc=c.Ia`, `_malloc = wasmExports["Xa"]`,
/// `_malloc = Module["_malloc"] = wasmExports["Xa"]`: the export name at
/// the end of the assignment chain. A name seen with two different exports
/// is dropped.
fn emscripten_roles(js: &str) -> Vec<(AllocFn, String)> {
    let s = js.as_bytes();
    let mut out: Vec<(AllocFn, String)> = Vec::new();
    let mut contested: Vec<AllocFn> = Vec::new();
    for (js_name, role) in EMSCRIPTEN_NAMES {
        if out.iter().any(|(r, _)| *r == role) {
            continue;
        }
        let mut seen: Option<String> = None;
        for at in occurrences(js, js_name) {
            let end = at + js_name.len();
            if s.get(end).is_some_and(|b| is_ident(*b)) {
                continue;
            }
            // `_malloc` itself, `x._malloc`, or `x["_malloc"]`.
            let after = match (at.checked_sub(1).map(|i| s[i]), s.get(end)) {
                (Some(b'"' | b'\''), Some(b'"' | b'\'')) => {
                    if s.get(end + 1) != Some(&b']') {
                        continue;
                    }
                    end + 2
                }
                (Some(p), _) if is_ident(p) => continue,
                _ => end,
            };
            let Some(export) = assigned_export(s, after) else {
                continue;
            };
            match &seen {
                Some(e) if *e != export => {
                    contested.push(role);
                    break;
                }
                _ => seen = Some(export),
            }
        }
        if let Some(e) = seen.filter(|_| !contested.contains(&role)) {
            out.push((role, e));
        }
    }
    out
}

/// After an assignment target ending at `i`: `= a.B` or `= a["B"]`, with
/// any number of further targets in between; B.
fn assigned_export(s: &[u8], mut i: usize) -> Option<String> {
    for _ in 0..4 {
        i = skip_ws(s, i);
        if s.get(i) != Some(&b'=') || matches!(s.get(i + 1), Some(b'=' | b'>')) {
            return None;
        }
        i = skip_ws(s, i + 1);
        let (_, mut j) = ident_at(s, i)?;
        // `a.B`, `a["B"]`, or a chain of them (`Module["asm"]["t"]`): the
        // last member.
        let mut member = None;
        for _ in 0..4 {
            let (m, end) = match member_at(s, j) {
                Some(x) => x,
                None => break,
            };
            member = Some(m);
            j = end;
        }
        let member = member?;
        let k = skip_ws(s, j);
        if s.get(k) == Some(&b'=') && !matches!(s.get(k + 1), Some(b'=' | b'>')) {
            // Another target: `Module["_malloc"] = ...`.
            i = k;
            continue;
        }
        return Some(member);
    }
    None
}

/// `.B` or `["B"]` (`['B']`) at `j`: B, and where it ends.
fn member_at(s: &[u8], j: usize) -> Option<(String, usize)> {
    match s.get(j) {
        Some(b'.') => {
            let (m, e) = ident_at(s, j + 1)?;
            Some((m.to_string(), e))
        }
        Some(b'[') => {
            let q = *s.get(j + 1)?;
            if q != b'"' && q != b'\'' {
                return None;
            }
            let start = j + 2;
            let len = s.get(start..)?.iter().take(256).position(|b| *b == q)?;
            let m = std::str::from_utf8(&s[start..start + len]).ok()?;
            if s.get(start + len + 1) != Some(&b']') || !m.bytes().all(is_ident) {
                return None;
            }
            Some((m.to_string(), start + len + 2))
        }
        _ => None,
    }
}

/// The key of the imports object whose function is emscripten's
/// `emscripten_resize_heap`: a function that grows a memory (`.grow(`) by
/// a size rounded to 65,536-byte pages, given inline (`l:a=>{...}`) or by
/// a name the object maps (`l:_emscripten_resize_heap`, `l:Pb`).
fn emscripten_resize_heap(js: &str) -> Option<String> {
    let s = js.as_bytes();
    for at in occurrences(js, ".grow(").take(64) {
        let from = back(js, at, 600);
        let window = &js[from..at];
        if !window.contains("65536") {
            continue;
        }
        // The function's start: the last `=>` or `function` before it.
        let arrow = window.rfind("=>");
        let func = window.rfind("function");
        let start = from + arrow.max(func)?;
        // Back over the parameters to what names the function.
        let head = &js[back(js, start, 80)..start];
        let head = head.trim_end();
        let head = match head.strip_suffix(')') {
            Some(h) => &h[..h.rfind('(')?],
            None => {
                head.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            }
        };
        let head = head.trim_end();
        let head = head.strip_suffix("function").unwrap_or(head).trim_end();
        let head = head.strip_suffix("async").unwrap_or(head).trim_end();
        if let Some(h) = head.strip_suffix(':') {
            // Inline in the imports object: the key.
            let key = last_ident(h)?;
            return Some(key.to_string());
        }
        if let Some(h) = head.strip_suffix('=') {
            // A named function: the key the imports object maps it to.
            let name = last_ident(h)?;
            return import_key_of(s, name);
        }
    }
    None
}

/// `i - n` or the char boundary just after it (so a slice from it never
/// cuts a character).
fn back(js: &str, i: usize, n: usize) -> usize {
    let mut b = i.saturating_sub(n);
    while b < i && !js.is_char_boundary(b) {
        b += 1;
    }
    b
}

fn last_ident(h: &str) -> Option<&str> {
    let h = h.trim_end();
    let b = h.as_bytes();
    let mut i = b.len();
    while i > 0 && is_ident(b[i - 1]) {
        i -= 1;
    }
    (i < b.len()).then(|| &h[i..])
}

/// `KEY:NAME` followed by `,` or `}`: KEY (or `NAME` itself in shorthand
/// `{NAME,` when the function keeps its import's name).
fn import_key_of(s: &[u8], name: &str) -> Option<String> {
    let js = std::str::from_utf8(s).ok()?;
    for at in occurrences(js, name) {
        let end = at + name.len();
        if at == 0 || !matches!(s[at - 1], b':') || !matches!(s.get(end), Some(b',' | b'}')) {
            continue;
        }
        let key = last_ident(&js[back(js, at - 1, 128)..at - 1])?;
        return Some(key.trim_start_matches('_').to_string()).filter(|k| !k.is_empty());
    }
    (name == "_emscripten_resize_heap").then(|| "emscripten_resize_heap".to_string())
}

/// Hook the exports `glue` names in roles nothing else found (`--alloc-fn`
/// and names win), each checked against its role's signature; say in
/// `warnings` which roles came from which file, and what the glue named
/// that the module does not export.
pub(crate) fn add_roles(
    module: &walrus::Module,
    glue: &Glue,
    ptr: walrus::ValType,
    found: &mut Vec<crate::discover::Allocator>,
    warnings: &mut Vec<String>,
) {
    use crate::discover::{try_push, FoundBy};
    let mut used: Vec<String> = Vec::new();
    for (role, export) in &glue.roles {
        if found.iter().any(|a| a.role == *role) {
            continue;
        }
        let Ok(id) = module.exports.get_func(export) else {
            warnings.push(format!(
                "the JS glue `{}` calls `{export}` as {} but the module exports no function of that name; not hooked",
                glue.file,
                role.name()
            ));
            continue;
        };
        let name = module
            .funcs
            .get(id)
            .name
            .clone()
            .unwrap_or_else(|| export.clone());
        if try_push(
            module,
            ptr,
            found,
            (*role, id, name, FoundBy::Glue),
            warnings,
        ) {
            used.push(format!("{}={export}", role.name()));
        }
    }
    if let Some(r) = &glue.resize_heap {
        used.push(format!("emscripten_resize_heap=import `{r}`"));
    }
    if !used.is_empty() {
        warnings.push(format!(
            "roles from the JS glue `{}`: {}",
            glue.file,
            used.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wasm_bindgen_roles_from_calls() {
        let js = r#"
function passStringToWasm0(arg, malloc, realloc) { let ptr = malloc(len, 1) >>> 0; }
function passArray8ToWasm0(arg, malloc) { }
const ptr0 = passStringToWasm0(text, wasm.__wbindgen_export_0, wasm.__wbindgen_export_1);
const ptr1 = passArray8ToWasm0(bytes, wasm.__wbindgen_export_0);
wasm.__wbindgen_export_2(r0, r1 * 4, 4);
wasm.__wbindgen_export_2(r0, r1 * 1, 1);
wasm.tiktoken_decode(retptr, this.__wbg_ptr, ptr0, len0);
wasm.__wbindgen_export_3(addHeapObject(e));
"#;
        let g = read("g.js", js);
        assert_eq!(
            g.roles,
            [
                (AllocFn::WbgMalloc, "__wbindgen_export_0".to_string()),
                (AllocFn::WbgRealloc, "__wbindgen_export_1".to_string()),
                (AllocFn::WbgFree, "__wbindgen_export_2".to_string()),
            ]
        );
        assert_eq!(g.resize_heap, None);
    }

    #[test]
    fn reads_emscripten_roles_from_assignments() {
        let g = read(
            "a.js",
            "k._sqlite3_open=c.Ha;da=k._malloc=c.Ia;ea=k._free=c.Ja;",
        );
        assert_eq!(
            g.roles,
            [
                (AllocFn::Malloc, "Ia".to_string()),
                (AllocFn::Free, "Ja".to_string())
            ]
        );
        let g = read(
            "b.js",
            r#"_malloc = Module["_malloc"] = wasmExports["Xa"]; _free = wasmExports['Ya'];"#,
        );
        assert_eq!(
            g.roles,
            [
                (AllocFn::Malloc, "Xa".to_string()),
                (AllocFn::Free, "Ya".to_string())
            ]
        );
        // Older emscripten: the export read through `Module["asm"]`.
        let g = read(
            "old.js",
            r#"var _malloc=Module["_malloc"]=function(){return(_malloc=Module["_malloc"]=Module["asm"]["t"]).apply(null,arguments)};"#,
        );
        assert_eq!(g.roles, [(AllocFn::Malloc, "t".to_string())]);
        // Two exports for one name: neither.
        let g = read("c.js", "_malloc=c.Ia;_malloc=c.Ib;_malloc==x;_malloc=>1");
        assert!(g.roles.is_empty());
    }

    #[test]
    fn finds_the_renamed_resize_heap_import() {
        let inline = "ed={d:()=>Date.now(),l:a=>{var b=E.length;a>>>=0;if(a>2147483648)return!1;c=(Math.min(2147483648,Math.ceil(Math.max(a,c)/65536)*65536)-Ga.buffer.byteLength+65535)/65536|0;try{Ga.grow(c);}catch(g){}},G:1}";
        assert_eq!(read("a.js", inline).resize_heap.as_deref(), Some("l"));
        let named = "var Pb=requestedSize=>{var x=(size-b.byteLength+65535)/65536|0;wasmMemory.grow(x)};var wasmImports={a:Qb,h:Pb,c:Rc};";
        assert_eq!(read("b.js", named).resize_heap.as_deref(), Some("h"));
    }

    #[test]
    fn hostile_glue_gives_nothing_and_never_panics() {
        for js in [
            "",
            "wasm.",
            "wasm.x(",
            "passStringToWasm0(",
            "_malloc=",
            "_malloc=a[\"",
            "_malloc=a[\"\u{e9}\"]",
            ".grow(",
            "=>.grow(65536",
            ":=>.grow(65536",
            "x=(((((.grow(65536",
            "\u{1F600}_malloc=a.\u{1F600}",
        ] {
            let g = read("h.js", js);
            assert!(g.roles.is_empty(), "{js}: {g:?}");
        }
        // Large input is scanned in linear time.
        let big = "wasm.f(a, b * 4, 4);".repeat(200_000);
        let g = read("big.js", &big);
        assert_eq!(g.roles, [(AllocFn::WbgFree, "f".to_string())]);
    }

    #[test]
    fn base64_is_a_data_urls() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(b"\0asm\x01\0\0\0"), "AGFzbQEAAAA=");
    }

    /// A module inlined as base64 in a glue under the app's node_modules
    /// (yoga-layout's way) is found from the app script, and only one
    /// holding the whole module and naming its exports.
    #[test]
    fn finds_the_glue_that_embeds_the_module_under_node_modules() {
        let root = std::env::temp_dir().join(format!("hs-embed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let pkg = root.join("node_modules/pkg/dist/binaries");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::create_dir_all(root.join("apps")).unwrap();
        let module = b"\0asm\x01\0\0\0 some module bytes".to_vec();
        let data = base64(&module);
        let glue = format!(
            "var H=\"data:application/octet-stream;base64,{data}\";var Ib=h._malloc=function(){{return(Ib=h._malloc=h.asm.I).apply(null,arguments)}},S=h._free=function(){{return(S=h._free=h.asm.K).apply(null,arguments)}};"
        );
        // A file with only part of the module, and one with no roles.
        std::fs::write(
            pkg.join("a-part.js"),
            format!("\"{}\"; h._malloc=h.asm.I", &data[..8]),
        )
        .unwrap();
        std::fs::write(pkg.join("b-noroles.js"), format!("\"{data}\"")).unwrap();
        std::fs::write(pkg.join("c-glue.mjs"), glue).unwrap();
        let script = root.join("apps/app.mjs");
        std::fs::write(&script, "import 'pkg';").unwrap();
        let exports = ["I".to_string(), "K".to_string()];
        let g = find_embedding(&module, &script, &exports).expect("found");
        assert!(g.file.ends_with("c-glue.mjs"), "{}", g.file);
        assert_eq!(
            g.roles,
            [
                (AllocFn::Malloc, "I".to_string()),
                (AllocFn::Free, "K".to_string())
            ]
        );
        assert!(find_embedding(b"other bytes", &script, &exports).is_none());
        assert!(find_embedding(&module, &script, &["X".to_string()]).is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
