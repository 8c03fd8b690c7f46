//! The compiled-module cache: a repeated run of the same module skips
//! instrumenting it in memory and compiling it, as `wasmtime run` skips
//! compiling with its own cache.
//!
//! An entry is keyed by a SHA-256 of everything that changes what would be
//! compiled or how: the module's bytes, whether the run is plain, the
//! `--alloc-fn` options, heapscope's version and the executable's identity
//! (its size and modification time, so a rebuilt heapscope never reads an
//! older build's entries), and wasmtime's hash of the engine settings that
//! compiled code depends on. It holds the serialised compiled module
//! (`Module::serialize`), a SHA-256 of it and the site table (checked before the module is
//! deserialised: a damaged entry is a miss, never a crash), and what a run
//! needs of the instrumented module besides its code: the site table, the
//! instrumenter's report, the shadow memory's index.
//!
//! Entries live in `$HEAPSCOPE_CACHE_DIR`, else `$XDG_CACHE_HOME/heapscope`,
//! else `~/.cache/heapscope`; written to a temporary file and renamed, so
//! concurrent runs never read half an entry. Past [`MAX_BYTES`] (or
//! `$HEAPSCOPE_CACHE_MAX_MB`), the least recently used entries go.
//!
//! `heapscope instrument` keeps its output in the same directory
//! (`<key>.hsins`: the instrumented module and the instrumenter's report,
//! with a SHA-256 over both), keyed by the input's bytes, the options that
//! change the rewrite, heapscope's version and the executable's identity.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

/// The cache's default size bound.
pub const MAX_BYTES: u64 = 1 << 30;

const MAGIC: &[u8; 8] = b"HSCACHE2";
const INSTRUMENT_MAGIC: &[u8; 8] = b"HSINSTR1";

/// What a run needs of an instrumented module besides its compiled code.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Meta {
    /// The module's site table, encoded (empty when it has none); stored
    /// beside the JSON, not in it.
    #[serde(skip)]
    pub sites: Vec<u8>,
    /// What the instrumenter hooked, when it ran in memory.
    pub report: Option<heapscope_instrument::Report>,
    /// Index of heapscope's shadow memory among the module's memories.
    pub shadow: Option<usize>,
    /// Whether the module that runs is instrumented.
    pub instrumented: bool,
    /// SHA-256 of the site table and the serialised module, hex.
    pub module_sha256: String,
}

/// A cache directory, or none (`--no-cache`, or no home to put it in).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

/// How the run used the cache, for the summary's `host` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheUse {
    /// The compiled module came from the cache.
    Hit,
    /// It was compiled and stored.
    Miss,
    /// No cache (`--no-cache`, or the directory could not be made).
    Off,
}

impl Cache {
    /// The user's cache directory for heapscope, from the environment.
    pub fn from_env() -> Option<Cache> {
        let dir = std::env::var_os("HEAPSCOPE_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .filter(|d| !d.is_empty())
                    .map(|d| PathBuf::from(d).join("heapscope"))
            })
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|d| !d.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache/heapscope"))
            })?;
        let max_bytes = std::env::var("HEAPSCOPE_CACHE_MAX_MB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(MAX_BYTES, |mb| mb.saturating_mul(1 << 20));
        Some(Cache { dir, max_bytes })
    }

    /// A cache in `dir` holding at most `max_bytes`.
    pub fn new(dir: PathBuf, max_bytes: u64) -> Cache {
        Cache { dir, max_bytes }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of `module` compiled for `engine` with these options.
    pub(crate) fn key(
        engine: &Engine,
        module: &[u8],
        plain: bool,
        alloc_fns: &[heapscope_instrument::AllocOverride],
    ) -> String {
        let mut h = Sha256::new();
        h.update(MAGIC);
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(executable_identity().as_bytes());
        let mut settings = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut settings);
        h.update(settings.finish().to_le_bytes());
        h.update([u8::from(plain)]);
        h.update(format!("{alloc_fns:?}").as_bytes());
        h.update((module.len() as u64).to_le_bytes());
        h.update(module);
        hex(&h.finalize())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.hsmod"))
    }

    /// The key of `heapscope instrument`'s output for `input` with the
    /// options that change the rewrite (`options`: their debug text).
    pub fn instrument_key(input: &[u8], options: &str) -> String {
        let mut h = Sha256::new();
        h.update(INSTRUMENT_MAGIC);
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(executable_identity().as_bytes());
        h.update((options.len() as u64).to_le_bytes());
        h.update(options.as_bytes());
        h.update((input.len() as u64).to_le_bytes());
        h.update(input);
        hex(&h.finalize())
    }

    /// The instrumented module and report stored under `key`; `None` when
    /// there is none, or it is damaged (then it is removed).
    pub fn load_instrumented(&self, key: &str) -> Option<(Vec<u8>, heapscope_instrument::Report)> {
        let path = self.dir.join(format!("{key}.hsins"));
        let bytes = std::fs::read(&path).ok()?;
        let parsed = (|| {
            let body = bytes.strip_prefix(INSTRUMENT_MAGIC)?;
            let (body, sum) = body.split_at(body.len().checked_sub(32)?);
            if Sha256::digest(body).as_slice() != sum {
                return None;
            }
            let len = usize::try_from(u64::from_le_bytes(body.get(..8)?.try_into().ok()?)).ok()?;
            let json = body.get(8..8usize.checked_add(len)?)?;
            let report = serde_json::from_slice(json).ok()?;
            Some((body[8 + len..].to_vec(), report))
        })();
        used_or_removed(&path, parsed)
    }

    /// Store an instrumented module and its report under `key`, then trim
    /// the cache. Failures are logged: instrumenting never fails for its
    /// cache.
    pub fn store_instrumented(
        &self,
        key: &str,
        wasm: &[u8],
        report: &heapscope_instrument::Report,
    ) {
        let write = || -> std::io::Result<()> {
            let json = serde_json::to_vec(report).map_err(std::io::Error::other)?;
            let mut body = Vec::with_capacity(8 + json.len() + wasm.len());
            body.extend_from_slice(&(json.len() as u64).to_le_bytes());
            body.extend_from_slice(&json);
            body.extend_from_slice(wasm);
            let sum = Sha256::digest(&body);
            std::fs::create_dir_all(&self.dir)?;
            let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
            let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            f.write_all(INSTRUMENT_MAGIC)?;
            f.write_all(&body)?;
            f.write_all(&sum)?;
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, self.dir.join(format!("{key}.hsins"))).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
        };
        if let Err(e) = write() {
            tracing::info!("not cached in `{}`: {e}", self.dir.display());
        }
        self.trim();
    }

    /// The entry for `key`, compiled for `engine`; `None` when there is
    /// none or it is damaged or does not fit the engine (then it is removed).
    pub(crate) fn load(&self, engine: &Engine, key: &str) -> Option<(Module, Meta)> {
        let path = self.path(key);
        let bytes = std::fs::read(&path).ok()?;
        used_or_removed(&path, parse(engine, &bytes))
    }

    /// Store `module` and `meta` under `key`, then trim the cache to its
    /// bound. Failures are logged: a run never fails for its cache.
    pub(crate) fn store(&self, key: &str, module: &Module, meta: &mut Meta) {
        if let Err(e) = self.try_store(key, module, meta) {
            tracing::info!("not cached in `{}`: {e}", self.dir.display());
        }
        self.trim();
    }

    fn try_store(&self, key: &str, module: &Module, meta: &mut Meta) -> std::io::Result<()> {
        let code = module.serialize().map_err(std::io::Error::other)?;
        meta.module_sha256 = checksum(&meta.sites, &code);
        let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(MAGIC)?;
        f.write_all(&(json.len() as u64).to_le_bytes())?;
        f.write_all(&json)?;
        f.write_all(&(meta.sites.len() as u64).to_le_bytes())?;
        f.write_all(&meta.sites)?;
        f.write_all(&code)?;
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, self.path(key)).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// Remove the least recently used entries until the cache holds at
    /// most its bound.
    fn trim(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| {
                e.path()
                    .extension()
                    .is_some_and(|x| x == "hsmod" || x == "hsins")
            })
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// An entry's module and metadata, after its checksum is checked.
///
/// The one `unsafe` of the collector: wasmtime can only load compiled code
/// it is told to trust, which is what a compiled-module cache is.
#[allow(unsafe_code)]
fn parse(engine: &Engine, bytes: &[u8]) -> Option<(Module, Meta)> {
    // A length-prefixed part of `rest`, and what follows it.
    fn part(rest: &[u8]) -> Option<(&[u8], &[u8])> {
        let len = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let rest = &rest[8..];
        let len = usize::try_from(len).ok().filter(|l| *l <= rest.len())?;
        Some(rest.split_at(len))
    }
    let (json, rest) = part(bytes.strip_prefix(MAGIC)?)?;
    let mut meta: Meta = serde_json::from_slice(json).ok()?;
    let (sites, code) = part(rest)?;
    meta.sites = sites.to_vec();
    if checksum(sites, code) != meta.module_sha256 {
        return None;
    }
    // SAFETY: the bytes are what `Module::serialize` wrote into the user's
    // own cache directory, checked against the checksum stored with them;
    // wasmtime itself refuses code compiled by another version or for
    // other engine settings.
    let module = unsafe { Module::deserialize(engine, code) }.ok()?;
    Some((module, meta))
}

/// An entry read from `path`: a hit is marked recently used (the last to
/// go when the cache is trimmed), a damaged one is removed.
fn used_or_removed<T>(path: &Path, parsed: Option<T>) -> Option<T> {
    match parsed {
        Some(hit) => {
            let _ = std::fs::File::options()
                .append(true)
                .open(path)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            Some(hit)
        }
        None => {
            tracing::info!("removing the damaged cache entry `{}`", path.display());
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

/// This executable's size and modification time: a rebuilt heapscope has
/// a new identity, so it never reads an older build's entries.
fn executable_identity() -> String {
    std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{mtime}", m.len())
        })
        .unwrap_or_default()
}

/// SHA-256 of an entry's site table and compiled code, hex.
fn checksum(sites: &[u8], code: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update((sites.len() as u64).to_le_bytes());
    h.update(sites);
    h.update(code);
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
