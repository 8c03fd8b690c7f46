//! The compiled-module cache: a repeated run of the same module skips
//! instrumenting it in memory and compiling it, as `wasmtime run` skips
//! compiling with its own cache.
//!
//! An entry is keyed by a hash of everything that changes what would be
//! compiled or how: the module's bytes (through their own hash), whether
//! the run is plain, the `--alloc-fn` options, what the app's JS glue says
//! (`--glue`: the roles read from it, the renamed resize import, its file's
//! name), heapscope's version and the executable's identity (its size and
//! modification time, so a rebuilt heapscope never reads an older build's
//! entries), and wasmtime's hash of
//! the engine settings that compiled code depends on. It holds the
//! serialised compiled module (`Module::serialize`) and what a run needs of
//! the instrumented module besides its code: the site table, the
//! instrumenter's report, the shadow memory's index.
//!
//! # What an entry is checked against before its code is loaded
//!
//! An entry is one file, `<key>.hsmod`:
//!
//! ```text
//! magic    8 bytes, "HSCACHE4"
//! header   u64 LE length, then JSON: {"key", "module_hash", "meta"}
//! sites    u64 LE length, then the encoded site table
//! code map u64 LE length, then the encoded code map (heapscope.code_map)
//! code     u64 LE length, then what Module::serialize wrote
//! check    32 bytes: the content hash of everything above
//! ```
//!
//! The header binds the entry to the key it was stored under and to the
//! hash of the module it was made from, inside the checked part. An entry
//! is used only when its check matches, its header parses, and its key and
//! module hash are the ones the run computed; wasmtime then checks its own
//! version and engine settings as it deserialises the code. Anything else —
//! an entry cut short, a byte changed anywhere, another module's entry
//! copied under this key — is a miss whose reason is logged (`-v`); the
//! entry is removed and stored again from a fresh compile.
//!
//! # Where entries live
//!
//! In `$HEAPSCOPE_CACHE_DIR`, else `$XDG_CACHE_HOME/heapscope`, else
//! `~/.cache/heapscope`. heapscope creates that folder with mode 0700
//! (whatever the umask) and writes each entry 0600, to a temporary file
//! renamed into place, so concurrent runs never read half an entry. A
//! folder that is writable by its group or by everyone, or owned by
//! another user, or below a folder another user could change (owned by
//! neither this user nor root, or writable by others and not sticky), is
//! not used: a warning names it and the run goes on without the cache (a
//! cache never fails a run). The folder is used by its real path, so a
//! symbolic link changed after the check changes nothing. Past [`MAX_BYTES`] (or
//! `$HEAPSCOPE_CACHE_MAX_MB`), the least recently used entries go.
//!
//! `heapscope instrument` keeps its output in the same folder, under the
//! same rules (`<key>.hsins`: magic "HSINSTR2", a header binding the key
//! and the input's hash with the instrumenter's report as its `meta`, the
//! instrumented module, the check), keyed by the input's bytes, the
//! options that change the rewrite, heapscope's version and the
//! executable's identity. A run whose module another host compiles
//! (`run --node`, `run --session`) keeps the module it instrumented in
//! memory there too, under options of its own (no DWARF copy, the
//! `--alloc-fn` options, what the glue says), so its next run skips
//! instrumenting.
//!
//! Beside a compiled module's entry, `<key>.hssym` keeps the call sites
//! runs of it symbolised from its DWARF, `<key>.hsvar` its static
//! variables (the heap graph's named roots) and `<key>.hstyp` the types
//! its call sites allocate, as far as runs looked them up (each sealed and
//! bound to the key and module hash as an entry is; see [`Beside`] and
//! [`Cache::load_beside`]): a later run parses the DWARF only for what no
//! run computed before.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

/// The cache's default size bound.
pub const MAX_BYTES: u64 = 1 << 30;

const MAGIC: &[u8; 8] = b"HSCACHE4";
const INSTRUMENT_MAGIC: &[u8; 8] = b"HSINSTR2";

/// What a run computes from a module alone and keeps beside its compiled
/// entry (`<key>.<extension>`), each sealed and bound to the key and the
/// module's hash as an entry is ([`Cache::load_beside`]). A damaged or
/// foreign one is removed and computed again, never used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beside {
    /// The call sites runs symbolised (`.hssym`, [`crate::symbolize`]).
    Sites,
    /// The static variables and named data segments that name the heap
    /// graph's roots (`.hsvar`, [`crate::variables::static_variables`]).
    Variables,
    /// The types allocated at the call sites runs looked up (`.hstyp`,
    /// [`crate::sitetypes`]).
    SiteTypes,
}

impl Beside {
    const ALL: [Beside; 3] = [Beside::Sites, Beside::Variables, Beside::SiteTypes];

    fn extension(self) -> &'static str {
        match self {
            Beside::Sites => "hssym",
            Beside::Variables => "hsvar",
            Beside::SiteTypes => "hstyp",
        }
    }

    fn magic(self) -> &'static [u8; 8] {
        match self {
            Beside::Sites => b"HSSITES1",
            Beside::Variables => b"HSVARS01",
            Beside::SiteTypes => b"HSTYPES1",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Beside::Sites => "symbolised sites",
            Beside::Variables => "static variables",
            Beside::SiteTypes => "site types",
        }
    }
}

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
    /// The instrumented module's code map (`heapscope.code_map`), encoded;
    /// empty when it has none. Stored as a part of its own beside the JSON
    /// (a large module's map as JSON numbers cost every cached run).
    #[serde(skip)]
    pub code_map: Vec<u8>,
}

/// The name of an entry and what it must have been made from: an entry
/// found under `name` is used only when its checked header holds both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryKey {
    /// The hash of everything the entry depends on, hex: the file's name.
    name: String,
    /// The hash of the module (or `instrument`'s input), hex.
    module_hash: String,
}

/// An entry's header: the key it was stored under and the module it was
/// made from, then what the run needs (`meta`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Header<M> {
    key: String,
    module_hash: String,
    meta: M,
}

/// A cache folder heapscope may use: created by it, or its user's own and
/// writable by no one else.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

/// Why a cache folder is not used.
#[derive(Debug, thiserror::Error)]
pub enum DirRefused {
    /// The folder (or a folder above it) could not be created.
    #[error("cannot create it: {0}")]
    Create(#[source] std::io::Error),
    /// Its metadata could not be read.
    #[error("cannot read its metadata: {0}")]
    Metadata(#[source] std::io::Error),
    /// The path names something other than a folder.
    #[error("it is not a folder")]
    NotAFolder,
    /// Its group or everyone may write in it, so could plant native code
    /// that heapscope would run.
    #[error(
        "it is writable by its group or by everyone (mode {mode:03o}); `chmod 700` it, or point HEAPSCOPE_CACHE_DIR at a folder of your own"
    )]
    Writable {
        /// Its permission bits.
        mode: u32,
    },
    /// Another user owns it.
    #[error(
        "it is owned by uid {owner}, not by this user (uid {euid}); point HEAPSCOPE_CACHE_DIR at a folder of your own"
    )]
    ForeignOwner {
        /// The folder's owner.
        owner: u32,
        /// This process's effective user.
        euid: u32,
    },
    /// A folder above it may be changed by another user, who could then
    /// put a folder of their own in its place.
    #[error(
        "the folder `{}` above it {why}; point HEAPSCOPE_CACHE_DIR at a folder of your own",
        .path.display()
    )]
    UnsafeAncestor {
        /// The folder above.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// How the run used the cache, for the summary's `host` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheUse {
    /// The compiled module came from the cache.
    Hit,
    /// It was compiled and stored.
    Miss,
    /// No cache (`--no-cache`, or the directory could not be made or was
    /// refused).
    Off,
}

impl Cache {
    /// The user's cache folder for heapscope, from the environment,
    /// created if missing; `None` when there is no home to put it in, it
    /// cannot be created (logged) or it is refused (a warning naming it).
    pub fn from_env() -> Option<Cache> {
        let dir = std::env::var_os("HEAPSCOPE_CACHE_DIR")
            .filter(|d| !d.is_empty())
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
        match Cache::open(dir.clone(), max_bytes) {
            Ok(cache) => Some(cache),
            Err(e @ DirRefused::Create(_)) => {
                tracing::info!("no cache: the folder `{}`: {e}", dir.display());
                None
            }
            Err(e) => {
                tracing::warn!(
                    "the cache folder `{}` is not used: {e}; running without the cache",
                    dir.display()
                );
                None
            }
        }
    }

    /// A cache in `dir` holding at most `max_bytes`: the folder is created
    /// with mode 0700 when missing, and refused when it is not a folder, is
    /// writable by its group or everyone, or is owned by another user, or
    /// when a folder above it could be changed by another user.
    pub fn open(dir: PathBuf, max_bytes: u64) -> Result<Cache, DirRefused> {
        create_private_dir(&dir)?;
        // Its real path from here on: a symbolic link on the way that is
        // changed later changes nothing.
        let dir = std::fs::canonicalize(&dir).map_err(DirRefused::Metadata)?;
        check_private_dir(&dir)?;
        Ok(Cache { dir, max_bytes })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of `module` compiled for `engine` with these options.
    ///
    /// `glue` is what the instrumenter was given of the app's JS glue: the
    /// roles it read (export names and the role each is called in), the
    /// renamed `emscripten_resize_heap` import and the file's name (which
    /// the report's warnings quote). Those decide which functions are
    /// hooked, so an entry is never used for another set of hooks; a glue
    /// edited in ways that change none of them keeps its entry.
    pub(crate) fn key(
        engine: &Engine,
        module: &[u8],
        plain: bool,
        alloc_fns: &[heapscope_instrument::AllocOverride],
        glue: Option<&heapscope_instrument::glue::Glue>,
        track_writes: bool,
    ) -> EntryKey {
        let mut settings = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut settings);
        let (alloc_fns, glue) = (format!("{alloc_fns:?}"), format!("{glue:?}"));
        let (identity, settings, plain) = (
            executable_identity(),
            settings.finish().to_le_bytes(),
            [u8::from(plain)],
        );
        let mut parts: Vec<&[u8]> = vec![
            env!("CARGO_PKG_VERSION").as_bytes(),
            identity.as_bytes(),
            &settings,
            &plain,
            alloc_fns.as_bytes(),
            glue.as_bytes(),
        ];
        // The module with its writes tracked (for snapshots) is another
        // module; the key of one without is as it was.
        if track_writes {
            parts.push(b"track_writes");
        }
        entry_key(MAGIC, &parts, module)
    }

    /// The key of `heapscope instrument`'s output for `input` with the
    /// options that change the rewrite (`options`: their debug text).
    pub fn instrument_key(input: &[u8], options: &str) -> EntryKey {
        entry_key(
            INSTRUMENT_MAGIC,
            &[
                env!("CARGO_PKG_VERSION").as_bytes(),
                executable_identity().as_bytes(),
                options.as_bytes(),
            ],
            input,
        )
    }

    fn path(&self, key: &EntryKey, extension: &str) -> PathBuf {
        self.dir.join(format!("{}.{extension}", key.name))
    }

    /// The instrumented module and report stored under `key`; `None` when
    /// there is none, or it is damaged or made from another input (then it
    /// is removed).
    pub fn load_instrumented(
        &self,
        key: &EntryKey,
    ) -> Option<(Vec<u8>, heapscope_instrument::Report)> {
        let path = self.path(key, "hsins");
        let bytes = self.read_entry(&path)?;
        let parsed = (|| {
            let [header, wasm] = unseal(INSTRUMENT_MAGIC, &bytes)?;
            let report = check_header(header, key)?;
            Ok((wasm.to_vec(), report))
        })();
        used_or_removed(&path, parsed)
    }

    /// Store an instrumented module and its report under `key`, then trim
    /// the cache. Failures are logged: instrumenting never fails for its
    /// cache.
    pub fn store_instrumented(
        &self,
        key: &EntryKey,
        wasm: &[u8],
        report: &heapscope_instrument::Report,
    ) {
        let write = || -> std::io::Result<()> {
            let header = header(key, report)?;
            let entry = seal(INSTRUMENT_MAGIC, &[&header, wasm]);
            self.write_entry(&self.path(key, "hsins"), &entry)
        };
        if let Err(e) = write() {
            tracing::info!("not cached in `{}`: {e}", self.dir.display());
        }
        self.trim();
    }

    /// A component as `heapscope run` instrumented it (its core modules in
    /// component mode), kept under `key` ([`Cache::instrument_key`] of the
    /// component as given): its bytes and its core modules' report. `None`
    /// when there is none, or it is damaged or made from another input
    /// (then it is removed).
    pub(crate) fn load_instrumented_component(
        &self,
        key: &EntryKey,
    ) -> Option<(
        Vec<u8>,
        Vec<heapscope_instrument::component::ComponentModule>,
    )> {
        let path = self.path(key, "hsins");
        let bytes = self.read_entry(&path)?;
        let parsed = (|| {
            let [header, wasm] = unseal(INSTRUMENT_MAGIC, &bytes)?;
            let modules = check_header(header, key)?;
            Ok((wasm.to_vec(), modules))
        })();
        used_or_removed(&path, parsed)
    }

    /// Keep an instrumented component under `key`, then trim the cache.
    /// Failures are logged: a run never fails for its cache.
    pub(crate) fn store_instrumented_component(
        &self,
        key: &EntryKey,
        wasm: &[u8],
        modules: &[heapscope_instrument::component::ComponentModule],
    ) {
        let write = || -> std::io::Result<()> {
            let header = header(key, &modules)?;
            let entry = seal(INSTRUMENT_MAGIC, &[&header, wasm]);
            self.write_entry(&self.path(key, "hsins"), &entry)
        };
        if let Err(e) = write() {
            tracing::info!("not cached in `{}`: {e}", self.dir.display());
        }
        self.trim();
    }

    /// What is kept beside the entry for `key` as `what` (see [`Beside`]):
    /// magic, a header binding the key and the module's hash, the body,
    /// the check. What an earlier run computed from the module alone, so a
    /// run of the same module does not compute it again. `None` when there
    /// is none, or it is damaged or made from another module (then it is
    /// removed, and said at -v: the run computes it again).
    pub(crate) fn load_beside(&self, key: &EntryKey, what: Beside) -> Option<Vec<u8>> {
        let path = self.path(key, what.extension());
        if !path.exists() {
            return None;
        }
        let bytes = self.read_entry(&path)?;
        let parsed = (|| {
            let [header, body] = unseal(what.magic(), &bytes)?;
            check_header::<()>(header, key)?;
            Ok(body.to_vec())
        })();
        used_or_removed(&path, parsed)
    }

    /// Keep `body` beside the entry for `key` as `what` (see
    /// [`Cache::load_beside`]). Failures are logged: a run never fails for
    /// its cache.
    pub(crate) fn store_beside(&self, key: &EntryKey, what: Beside, body: &[u8]) {
        let write = || -> std::io::Result<()> {
            let header = header(key, &())?;
            let entry = seal(what.magic(), &[&header, body]);
            self.write_entry(&self.path(key, what.extension()), &entry)
        };
        if let Err(e) = write() {
            tracing::info!(
                "{} not cached in `{}`: {e}",
                what.description(),
                self.dir.display()
            );
        }
    }

    /// The entry for `key`, compiled for `engine`; `None` when there is
    /// none, or it is damaged, made from another module or with other
    /// options, or does not fit the engine (then it is removed).
    pub(crate) fn load(&self, engine: &Engine, key: &EntryKey) -> Option<(Module, Meta)> {
        let path = self.path(key, "hsmod");
        let bytes = self.read_entry(&path)?;
        used_or_removed(&path, parse(engine, &bytes, key))
    }

    /// Store `module` and `meta` under `key`, then trim the cache to its
    /// bound. Failures are logged: a run never fails for its cache.
    pub(crate) fn store(&self, key: &EntryKey, module: &Module, meta: &Meta) {
        let write = || -> std::io::Result<()> {
            let code = module.serialize().map_err(std::io::Error::other)?;
            let header = header(key, meta)?;
            let entry = seal(MAGIC, &[&header, &meta.sites, &meta.code_map, &code]);
            self.write_entry(&self.path(key, "hsmod"), &entry)
        };
        if let Err(e) = write() {
            tracing::info!("not cached in `{}`: {e}", self.dir.display());
        }
        self.trim();
    }

    /// The bytes of the entry at `path`; `None` when there is none. At most
    /// the cache's bound is read: a larger file is no entry it could keep.
    fn read_entry(&self, path: &Path) -> Option<Vec<u8>> {
        let file = std::fs::File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > self.max_bytes {
            used_or_removed::<()>(path, Err("not a file the cache could keep".into()));
            return None;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).ok()?);
        file.take(self.max_bytes).read_to_end(&mut bytes).ok()?;
        Some(bytes)
    }

    /// Write `bytes` to `path` as its owner's alone (0600): to a temporary
    /// file in the cache, synced, then renamed into place.
    fn write_entry(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".")
            .suffix(".tmp")
            .tempfile_in(&self.dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map(drop).map_err(|e| e.error)
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
                e.path().extension().is_some_and(|x| {
                    x == "hsmod" || x == "hsins" || Beside::ALL.iter().any(|b| x == b.extension())
                })
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

/// Create `dir` when missing, with the folders above it that are missing
/// too (as `mkdir -p -m 700`): each gets mode 0700 at most, and `dir`
/// itself exactly 0700 whatever the umask.
fn create_private_dir(dir: &Path) -> Result<(), DirRefused> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        builder
            .recursive(true)
            .create(parent)
            .map_err(DirRefused::Create)?;
        builder.recursive(false);
    }
    match builder.create(dir) {
        Ok(()) => {}
        // Another run made it at the same time, or something else stands
        // there: it is checked like any other folder, never changed.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(DirRefused::Create(e)),
    }
    // The umask may have taken bits from 0700; set them all, on the folder
    // this call made (opened without following a link, so a link put in
    // its place in between is never followed).
    #[cfg(unix)]
    {
        use rustix::fs::{Mode, OFlags};
        if let Ok(fd) = rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700));
        }
    }
    Ok(())
}

/// Check that `dir` (a real path) is a folder only this user may write in:
/// its owner is the process's effective user and neither its group nor
/// others may write in it; and that no one else may replace it: each folder
/// above is this user's or root's, and writable by others only when sticky
/// (as `/tmp`), as OpenSSH's `StrictModes` checks a home folder.
fn check_private_dir(dir: &Path) -> Result<(), DirRefused> {
    let meta = std::fs::metadata(dir).map_err(DirRefused::Metadata)?;
    if !meta.is_dir() {
        return Err(DirRefused::NotAFolder);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let euid = rustix::process::geteuid().as_raw();
        if meta.uid() != euid {
            return Err(DirRefused::ForeignOwner {
                owner: meta.uid(),
                euid,
            });
        }
        if meta.mode() & 0o022 != 0 {
            return Err(DirRefused::Writable {
                mode: meta.mode() & 0o7777,
            });
        }
        for above in dir.ancestors().skip(1) {
            let meta = std::fs::metadata(above).map_err(DirRefused::Metadata)?;
            let (owner, mode) = (meta.uid(), meta.mode() & 0o7777);
            let why = if owner != euid && owner != 0 {
                format!("is owned by uid {owner}, neither this user (uid {euid}) nor root")
            } else if mode & 0o022 != 0 && mode & 0o1000 == 0 {
                format!("is writable by its group or by everyone and not sticky (mode {mode:03o})")
            } else {
                continue;
            };
            return Err(DirRefused::UnsafeAncestor {
                path: above.to_path_buf(),
                why,
            });
        }
    }
    Ok(())
}

/// An entry's module and metadata, after its check, key and module hash
/// are verified.
///
/// The one `unsafe` of the collector: wasmtime can only load compiled code
/// it is told to trust, which is what a compiled-module cache is.
#[allow(unsafe_code)]
fn parse(engine: &Engine, bytes: &[u8], key: &EntryKey) -> Result<(Module, Meta), String> {
    let [header, sites, code_map, code] = unseal(MAGIC, bytes)?;
    let mut meta: Meta = check_header(header, key)?;
    meta.sites = sites.to_vec();
    meta.code_map = code_map.to_vec();
    // SAFETY: the bytes are what `Module::serialize` wrote into a folder
    // only this user may write in (checked when the cache was opened),
    // checked against the hash stored with them, and made from this very
    // module with these options and engine settings (the header's key and
    // module hash, inside the checked part); wasmtime itself refuses code
    // compiled by another version or for other engine settings.
    let module = unsafe { Module::deserialize(engine, code) }
        .map_err(|e| format!("wasmtime refuses its code: {e}"))?;
    Ok((module, meta))
}

/// The JSON header binding `meta` to `key`.
fn header<M: serde::Serialize>(key: &EntryKey, meta: &M) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec(&Header {
        key: key.name.clone(),
        module_hash: key.module_hash.clone(),
        meta,
    })
    .map_err(std::io::Error::other)
}

/// The `meta` of a header, when the header is for `key`.
fn check_header<M: serde::de::DeserializeOwned>(json: &[u8], key: &EntryKey) -> Result<M, String> {
    let header: Header<M> =
        serde_json::from_slice(json).map_err(|e| format!("its header does not parse: {e}"))?;
    if header.module_hash != key.module_hash {
        return Err(format!(
            "it was made from another module (hash {}, this one's is {})",
            short(&header.module_hash),
            short(&key.module_hash)
        ));
    }
    if header.key != key.name {
        return Err(format!(
            "it was stored under another key ({}): other options, engine settings or heapscope build",
            short(&header.key)
        ));
    }
    Ok(header.meta)
}

/// The first 12 characters of a hash, for messages (the whole of a
/// shorter string).
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// An entry's bytes: `magic`, each part with its length before it (u64 LE),
/// then the content hash of all that.
fn seal(magic: &[u8; 8], parts: &[&[u8]]) -> Vec<u8> {
    let len = 8 + parts.iter().map(|p| 8 + p.len()).sum::<usize>() + HASH_LEN;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(magic);
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
    }
    let check = content_hash(&out);
    out.extend_from_slice(&check);
    out
}

/// The `N` parts of an entry [`seal`] wrote, after its magic and its hash
/// are checked; the reason it is no such entry otherwise.
fn unseal<'a, const N: usize>(magic: &[u8; 8], bytes: &'a [u8]) -> Result<[&'a [u8]; N], String> {
    let Some(body) = bytes.strip_prefix(magic) else {
        return Err("it is not an entry of this heapscope's format".into());
    };
    let Some(checked_len) = bytes.len().checked_sub(HASH_LEN).filter(|l| *l >= 8) else {
        return Err("it is cut short".into());
    };
    let (checked, check) = bytes.split_at(checked_len);
    if content_hash(checked) != check {
        return Err("it is damaged: its check does not match its bytes".into());
    }
    let mut rest = &body[..checked_len - magic.len()];
    let mut parts = [&[][..]; N];
    for part in &mut parts {
        let len = rest
            .get(..8)
            .map(|l| u64::from_le_bytes(l.try_into().expect("8 bytes")))
            .and_then(|l| usize::try_from(l).ok())
            .filter(|l| *l <= rest.len() - 8)
            .ok_or("it is cut short")?;
        (*part, rest) = rest[8..].split_at(len);
    }
    if !rest.is_empty() {
        return Err("it has bytes after its last part".into());
    }
    Ok(parts)
}

/// An entry read from `path`: a hit is marked recently used (the last to
/// go when the cache is trimmed); one that is not used is removed, and
/// why is logged.
fn used_or_removed<T>(path: &Path, parsed: Result<T, String>) -> Option<T> {
    match parsed {
        Ok(hit) => {
            let _ = std::fs::File::options()
                .append(true)
                .open(path)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            Some(hit)
        }
        Err(why) => {
            tracing::info!(
                "cache entry `{}` not used: {why}; removing it",
                path.display()
            );
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

/// The key of an entry made from `module` and depending on `fields`:
/// the hash of `magic`, each field with its length, and the module's hash.
fn entry_key(magic: &[u8; 8], fields: &[&[u8]], module: &[u8]) -> EntryKey {
    let module_hash = content_hash(module);
    let mut text = magic.to_vec();
    for field in fields.iter().copied().chain([&module_hash[..]]) {
        text.extend_from_slice(&(field.len() as u64).to_le_bytes());
        text.extend_from_slice(field);
    }
    EntryKey {
        name: hex(&content_hash(&text)),
        module_hash: hex(&module_hash),
    }
}

/// The length of [`content_hash`]'s result.
const HASH_LEN: usize = 32;

/// The hash that names modules and entries and checks entries' bytes:
/// SHA-256. The one place to change it (with the magics, so entries of
/// the old hash are misses).
fn content_hash(bytes: &[u8]) -> [u8; HASH_LEN] {
    Sha256::digest(bytes).into()
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The magic of a compiled component's entry (`<key>.hsmod`, as a
/// module's, so the bound and the trim count it): the header, then what
/// `Component::serialize` wrote.
const COMPONENT_MAGIC: &[u8; 8] = b"HSCOMPO1";

/// What a compiled component's entry records besides its code: whether it
/// carries heapscope's hooks.
#[derive(serde::Serialize, serde::Deserialize)]
struct ComponentMeta {
    component: bool,
    instrumented: bool,
}

impl Cache {
    /// The key of a component (`wasm`, what runs) compiled for `engine`:
    /// "component" and whether it is instrumented are among its fields, so
    /// a module's entry is never taken for it.
    pub(crate) fn component_key(engine: &Engine, wasm: &[u8], instrumented: bool) -> EntryKey {
        let mut settings = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut settings);
        let settings = settings.finish().to_le_bytes();
        entry_key(
            COMPONENT_MAGIC,
            &[
                env!("CARGO_PKG_VERSION").as_bytes(),
                executable_identity().as_bytes(),
                &settings,
                b"component",
                &[u8::from(instrumented)],
            ],
            wasm,
        )
    }

    /// The compiled component stored under `key`, when there is one this
    /// run may use; a damaged or foreign entry is removed.
    pub(crate) fn load_component(
        &self,
        engine: &Engine,
        key: &EntryKey,
    ) -> Option<wasmtime::component::Component> {
        let path = self.path(key, "hsmod");
        let bytes = self.read_entry(&path)?;
        used_or_removed(&path, parse_component(engine, &bytes, key))
    }

    /// Store the compiled `component` under `key`, then trim the cache.
    /// Failures are logged: a run never fails for its cache.
    pub(crate) fn store_component(
        &self,
        key: &EntryKey,
        component: &wasmtime::component::Component,
    ) {
        let write = || -> std::io::Result<()> {
            let code = component.serialize().map_err(std::io::Error::other)?;
            let meta = ComponentMeta {
                component: true,
                instrumented: false,
            };
            let header = header(key, &meta)?;
            let entry = seal(COMPONENT_MAGIC, &[&header, &code]);
            self.write_entry(&self.path(key, "hsmod"), &entry)
        };
        if let Err(e) = write() {
            tracing::info!("not cached in `{}`: {e}", self.dir.display());
        }
        self.trim();
    }
}

/// A compiled component's entry, after its check, key and module hash are
/// verified (see [`parse`], whose `unsafe` this shares the reasons of).
#[allow(unsafe_code)]
fn parse_component(
    engine: &Engine,
    bytes: &[u8],
    key: &EntryKey,
) -> Result<wasmtime::component::Component, String> {
    let [header, code] = unseal(COMPONENT_MAGIC, bytes)?;
    let meta: ComponentMeta = check_header(header, key)?;
    if !meta.component {
        return Err("it is not a component's entry".into());
    }
    // SAFETY: as for `parse`: the bytes are what `Component::serialize`
    // wrote into a folder only this user may write in, checked against the
    // hash stored with them and made from this very component with these
    // engine settings (the header's key and module hash); wasmtime itself
    // refuses code compiled by another version or for other settings.
    unsafe { wasmtime::component::Component::deserialize(engine, code) }
        .map_err(|e| format!("wasmtime refuses its code: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, module: &str) -> EntryKey {
        EntryKey {
            name: name.into(),
            module_hash: module.into(),
        }
    }

    #[test]
    fn a_sealed_entry_unseals_to_its_parts() {
        let entry = seal(MAGIC, &[b"head", b"", b"code"]);
        assert_eq!(
            unseal::<3>(MAGIC, &entry).unwrap(),
            [&b"head"[..], b"", b"code"]
        );
        // Another kind of entry, or a count of parts it was not written with.
        assert_eq!(
            unseal::<3>(INSTRUMENT_MAGIC, &entry).unwrap_err(),
            "it is not an entry of this heapscope's format"
        );
        assert_eq!(
            unseal::<2>(MAGIC, &entry).unwrap_err(),
            "it has bytes after its last part"
        );
        assert_eq!(unseal::<4>(MAGIC, &entry).unwrap_err(), "it is cut short");
    }

    #[test]
    fn every_byte_of_an_entry_is_checked_and_every_cut_is_refused() {
        let entry = seal(MAGIC, &[b"{\"key\":1}", b"sites", b"code"]);
        for at in 0..entry.len() {
            let mut bad = entry.clone();
            bad[at] ^= 0x40;
            assert!(unseal::<3>(MAGIC, &bad).is_err(), "byte {at}");
        }
        for len in 0..entry.len() {
            assert!(unseal::<3>(MAGIC, &entry[..len]).is_err(), "cut at {len}");
        }
    }

    #[test]
    fn a_header_is_for_one_key_and_one_module() {
        let json = header(&key("k1", "m1"), &7u32).unwrap();
        assert_eq!(check_header::<u32>(&json, &key("k1", "m1")), Ok(7));
        assert_eq!(
            check_header::<u32>(&json, &key("k1", "m2")).unwrap_err(),
            "it was made from another module (hash m1, this one's is m2)"
        );
        assert_eq!(
            check_header::<u32>(&json, &key("k2", "m1")).unwrap_err(),
            "it was stored under another key (k1): other options, engine settings or heapscope build"
        );
        assert!(check_header::<u32>(b"{", &key("k1", "m1"))
            .unwrap_err()
            .starts_with("its header does not parse: "));
    }

    #[test]
    fn the_key_changes_with_each_field_and_the_module() {
        let base = entry_key(MAGIC, &[b"a", b"b"], b"module");
        assert_eq!(base, entry_key(MAGIC, &[b"a", b"b"], b"module"));
        assert_eq!(base.module_hash, hex(&content_hash(b"module")));
        // Fields are length-prefixed: moving a byte across a boundary is
        // another key.
        assert_ne!(base.name, entry_key(MAGIC, &[b"ab", b""], b"module").name);
        assert_ne!(base.name, entry_key(MAGIC, &[b"a", b"b"], b"modulf").name);
        assert_ne!(
            base.name,
            entry_key(INSTRUMENT_MAGIC, &[b"a", b"b"], b"module").name
        );
    }
}
