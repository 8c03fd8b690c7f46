//! Leak suppressions, in a subset of Valgrind's suppression file format:
//!
//! ```text
//! {
//!    rule name
//!    Memcheck:Leak
//!    match-leak-kinds: definite,possible     (optional)
//!    fun:malloc                              (the allocating function)
//!    fun:make_*                              (its caller; `*` and `?` glob)
//!    ...                                     (any number of frames)
//!    fun:main
//! }
//! ```
//!
//! Frame lines match a stack from the allocating function outwards; a rule
//! matches when all its lines match a prefix of the stack. `obj:` and `src:`
//! lines match any one frame. Lines starting with `#` are comments.

/// One suppression rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its name.
    pub name: String,
    /// Frame patterns, innermost first.
    pub frames: Vec<Pattern>,
    /// Leak kinds it applies to (empty: all).
    pub kinds: Vec<heapscope_trace::format::LeakKind>,
}

/// One frame line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// `fun:GLOB`
    Fun(String),
    /// `obj:...`/`src:...`: any one frame.
    Any,
    /// `...`: any number of frames.
    Ellipsis,
}

/// The rules heapscope applies unless `--no-default-suppressions`: what
/// wasi-libc allocates once and never frees.
pub const DEFAULTS: &str = "\
{
   wasi-libc: argv and its strings, allocated once by __main_void
   Memcheck:Leak
   fun:*
   fun:__main_void
}
{
   wasi-libc: the environment table
   Memcheck:Leak
   fun:*
   ...
   fun:__wasilibc_initialize_environ*
}
{
   wasi-libc: the preopened directory table
   Memcheck:Leak
   fun:*
   ...
   fun:__wasilibc_populate_preopens
}
";

/// Why [`load`] could not load a suppression file.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Read(std::io::Error),
    /// The file is not in the format.
    Parse(String),
}

/// The built-in rules (when `defaults`), then those of each file in
/// order; an error names the file.
pub fn load(
    defaults: bool,
    files: &[std::path::PathBuf],
) -> Result<Vec<Rule>, (std::path::PathBuf, LoadError)> {
    let mut rules = if defaults {
        parse(DEFAULTS).expect("the built-in suppressions parse")
    } else {
        Vec::new()
    };
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| (f.clone(), LoadError::Read(e)))?;
        rules.extend(parse(&text).map_err(|e| (f.clone(), LoadError::Parse(e)))?);
    }
    Ok(rules)
}

/// Parse suppression rules; errors name the line.
pub fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    let mut cur: Option<Rule> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = n + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match (&mut cur, line) {
            (None, "{") => {
                cur = Some(Rule {
                    name: String::new(),
                    frames: Vec::new(),
                    kinds: Vec::new(),
                })
            }
            (None, _) => {
                return Err(format!(
                    "line {at}: expected `{{` to start a rule, found `{line}`"
                ))
            }
            (Some(r), "}") => {
                if r.name.is_empty() {
                    return Err(format!("line {at}: the rule has no name"));
                }
                rules.push(cur.take().expect("in a rule"));
            }
            (Some(r), _) if r.name.is_empty() => r.name = line.to_string(),
            (Some(_), l)
                if l.contains(':') && l.split(':').next().is_some_and(|t| t == "Memcheck") => {}
            (Some(r), l) if l.starts_with("match-leak-kinds:") => {
                use heapscope_trace::format::LeakKind::*;
                for k in l["match-leak-kinds:".len()..].split(',').map(str::trim) {
                    match k {
                        "definite" => r.kinds.push(Definite),
                        "possible" => r.kinds.push(Possible),
                        "reachable" => r.kinds.push(Reachable),
                        "all" => r.kinds.extend([Definite, Indirect, Possible, Reachable]),
                        "indirect" => r.kinds.push(Indirect),
                        other => return Err(format!("line {at}: unknown leak kind `{other}`")),
                    }
                }
            }
            (Some(r), "...") => r.frames.push(Pattern::Ellipsis),
            (Some(r), l) if l.starts_with("fun:") => {
                r.frames.push(Pattern::Fun(l[4..].to_string()))
            }
            (Some(r), l) if l.starts_with("obj:") || l.starts_with("src:") => {
                r.frames.push(Pattern::Any)
            }
            (Some(_), l) => {
                return Err(format!(
                    "line {at}: expected `fun:`, `obj:`, `...` or `}}`, found `{l}`"
                ))
            }
        }
    }
    if cur.is_some() {
        return Err("the last rule has no closing `}`".into());
    }
    Ok(rules)
}

/// `*` and `?` glob match (`?` is one character).
///
/// The exit scan matches every rule against the frames of every distinct
/// stack of the blocks live at the end (thousands, tens of frames each,
/// a rule with `...` against each frame in turn), so ASCII names and
/// patterns, nearly all of them, are matched as bytes without copying.
pub fn glob(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        return glob_units(pattern.as_bytes(), text.as_bytes());
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    glob_units(&p, &t)
}

/// Whether `character` is the `*` or `?` wildcard.
trait Wild: Copy + PartialEq {
    fn is(self, wildcard: char) -> bool;
}

impl Wild for u8 {
    fn is(self, wildcard: char) -> bool {
        char::from(self) == wildcard
    }
}

impl Wild for char {
    fn is(self, wildcard: char) -> bool {
        self == wildcard
    }
}

/// The glob match over characters (or ASCII bytes).
fn glob_units<C: Wild>(p: &[C], t: &[C]) -> bool {
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi].is('?') || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi].is('*') {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c.is('*'))
}

fn matches(pats: &[Pattern], frames: &[&str]) -> bool {
    match pats.split_first() {
        None => true,
        Some((Pattern::Ellipsis, rest)) => (0..=frames.len()).any(|k| matches(rest, &frames[k..])),
        Some((p, rest)) => match frames.split_first() {
            None => false,
            Some((f, more)) => {
                let ok = match p {
                    Pattern::Fun(g) => glob(g, f),
                    _ => true,
                };
                ok && matches(rest, more)
            }
        },
    }
}

impl Rule {
    /// Whether the rule matches a block of `kind` allocated with `frames`
    /// (innermost first: the allocating function, then its callers).
    pub fn matches(&self, kind: heapscope_trace::format::LeakKind, frames: &[&str]) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind)) && matches(&self.frames, frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapscope_trace::format::LeakKind;

    #[test]
    fn defaults_parse_and_match_only_libc_owned_blocks() {
        let rules = parse(DEFAULTS).unwrap();
        assert_eq!(rules.len(), 3);
        let argv = ["malloc", "__main_void", "__original_main", "_start"];
        let user = ["malloc", "make_name", "main", "__main_void", "_start"];
        assert!(rules[0].matches(LeakKind::Definite, &argv));
        assert!(!rules.iter().any(|r| r.matches(LeakKind::Definite, &user)));
    }

    #[test]
    fn globs_ellipses_and_kinds() {
        assert!(glob("make_*", "make_name"));
        assert!(glob("*::insert", "leaky::Cache::insert"));
        assert!(!glob("make_?", "make_name"));
        // `?` is one character, also when it is not one byte.
        assert!(glob("caf?", "café"));
        assert!(glob("*é*", "café au lait"));
        assert!(!glob("caf??", "café"));
        let r = &parse("{\n r\n Memcheck:Leak\n match-leak-kinds: reachable\n fun:malloc\n ...\n fun:main\n}\n").unwrap()[0];
        assert!(r.matches(LeakKind::Reachable, &["malloc", "a", "b", "main"]));
        assert!(!r.matches(LeakKind::Definite, &["malloc", "a", "b", "main"]));
        assert!(!r.matches(LeakKind::Reachable, &["calloc", "main"]));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("fun:x").unwrap_err(),
            "line 1: expected `{` to start a rule, found `fun:x`"
        );
        assert_eq!(
            parse("{\n name\n bogus\n}").unwrap_err(),
            "line 3: expected `fun:`, `obj:`, `...` or `}`, found `bogus`"
        );
        assert_eq!(
            parse("{\n name\n").unwrap_err(),
            "the last rule has no closing `}`"
        );
    }
}
