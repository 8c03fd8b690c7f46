//! `heapscope instrument`

use anyhow::Context;
use heapscope_instrument::{AllocOverride, Options};
use std::path::PathBuf;

/// Instrument a module: wrap its allocator and memory.grow with heapscope's
/// hooks and add the shadow call stack. A component (WASI 0.2) has every
/// core module inside instrumented, and imports the hooks as the WIT
/// instance `heapscope:hooks/hooks@1.0.0`.
///
/// The output runs under `heapscope run` (which can also instrument in
/// memory, so this step is optional). A table of what was hooked goes to
/// stderr.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  heapscope instrument app.wasm                 # writes app.hs.wasm
  heapscope instrument app.wasm -o app.hs.wasm --alloc-fn malloc=my_alloc --alloc-fn free=my_free
  heapscope instrument stripped.wasm -o out.wasm --alloc-fn malloc=12 --alloc-fn free=15
  heapscope instrument app.component.wasm       # every core module of a component

Exit status:
  0    instrumented
  2    the module is invalid, already instrumented, or has no allocator heapscope can find")]
pub struct Opts {
    /// The module (or component) to instrument.
    input: PathBuf,
    /// Where to write the instrumented module (default: the input's name
    /// with `.hs.wasm`, in the current directory).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Name an allocator function by ROLE=NAME or ROLE=INDEX (roles: malloc,
    /// free, calloc, realloc, aligned, memalign, posix_memalign, rust_alloc,
    /// rust_dealloc, rust_realloc, rust_alloc_zeroed). Repeatable.
    #[arg(long = "alloc-fn", value_name = "ROLE=NAME|INDEX")]
    alloc_fns: Vec<AllocOverride>,
    /// The app's JavaScript glue (wasm-bindgen's `<name>_bg.js`,
    /// emscripten's `<name>.js`): the exports it calls as malloc, realloc
    /// and free are hooked when no name says what they are (stripped and
    /// minified builds), and a renamed `emscripten_resize_heap` import is
    /// hooked as growth. `--alloc-fn` wins over it.
    #[arg(long, value_name = "FILE")]
    glue: Option<PathBuf>,
    /// Also write what was hooked as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    report_json: Option<PathBuf>,
    /// Validate the instrumented module before writing it (a check against
    /// heapscope bugs; wasmtime validates it anyway when it compiles it).
    #[arg(long)]
    validate: bool,
    /// Print nothing on success.
    #[arg(short, long)]
    quiet: bool,
    /// Neither read nor write the cache of instrumented modules (the same
    /// directory as `run`'s compiled-module cache): by default the output
    /// for the same input, options and heapscope build is reused.
    #[arg(long)]
    no_cache: bool,
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        if self.input.is_dir() {
            anyhow::bail!(
                "cannot instrument `{}`: it is a directory, not a WebAssembly module",
                self.input.display()
            );
        }
        let bytes = std::fs::read(&self.input)
            .with_context(|| format!("cannot read `{}`", self.input.display()))?;
        if let Some(component) = component_bytes(&bytes) {
            return self.run_component(&component);
        }
        // Accept the text format too; binaries pass through untouched.
        let wasm = heapscope_instrument::module_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("cannot instrument `{}`: {e}", self.input.display()))?;
        let wasm = &wasm[..];
        let glue = match &self.glue {
            Some(p) => Some(read_glue(p)?),
            None => None,
        };
        let options = Options {
            alloc_fns: self.alloc_fns.clone(),
            glue: glue.clone(),
            validate: self.validate,
            ..Default::default()
        };
        let cache = (!self.no_cache)
            .then(heapscope_collector::Cache::from_env)
            .flatten();
        let key = heapscope_collector::Cache::instrument_key(
            wasm,
            &format!("{:?} {} {:?}", self.alloc_fns, self.validate, glue),
        );
        let cached = cache.as_ref().and_then(|c| c.load_instrumented(&key));
        let out = match cached {
            Some((wasm, report)) => {
                tracing::info!("instrumented module from the cache");
                heapscope_instrument::Instrumented { wasm, report }
            }
            None => {
                let out = heapscope_instrument::instrument(wasm, &options)
                    .with_context(|| format!("failed to instrument `{}`", self.input.display()))?;
                if let Some(c) = &cache {
                    c.store_instrumented(&key, &out.wasm, &out.report);
                }
                out
            }
        };
        let output = self.output_path()?;
        std::fs::write(&output, &out.wasm)
            .with_context(|| format!("cannot write `{}`", output.display()))?;
        if let Some(p) = &self.report_json {
            let json = serde_json::to_string_pretty(&out.report)?;
            std::fs::write(p, json + "\n")
                .with_context(|| format!("cannot write `{}`", p.display()))?;
        }
        if !self.quiet {
            eprint!("{}", report_table(&out.report));
            eprintln!(
                "heapscope: instrumented module written to `{}` ({})",
                output.display(),
                heapscope_viewer::text::bytes_human(out.wasm.len() as u64)
            );
        }
        Ok(0)
    }

    /// Instrument a component: every core module in it (see
    /// `heapscope_instrument::component`).
    fn run_component(&self, bytes: &[u8]) -> anyhow::Result<u8> {
        if !self.alloc_fns.is_empty() || self.glue.is_some() {
            anyhow::bail!(
                "cannot instrument `{}` with --alloc-fn or --glue: it is a component, and those name functions of one core module; heapscope finds each core module's allocator itself",
                self.input.display()
            );
        }
        let options = Options {
            validate: self.validate,
            ..Default::default()
        };
        let out = heapscope_instrument::instrument_component(bytes, &options)
            .with_context(|| format!("failed to instrument `{}`", self.input.display()))?;
        if out.modules.is_empty() {
            anyhow::bail!(
                "cannot instrument `{}`: the component has no core module, so it has no heap to profile",
                self.input.display()
            );
        }
        let table = component_table(&out.modules);
        if !out.modules.iter().any(|m| m.report().is_some()) {
            eprint!("{table}");
            anyhow::bail!(
                "failed to instrument `{}`: no core module of the component could be instrumented (above: which and why)",
                self.input.display()
            );
        }
        let output = self.output_path()?;
        std::fs::write(&output, &out.wasm)
            .with_context(|| format!("cannot write `{}`", output.display()))?;
        if let Some(p) = &self.report_json {
            let json =
                serde_json::to_string_pretty(&serde_json::json!({ "modules": out.modules }))?;
            std::fs::write(p, json + "\n")
                .with_context(|| format!("cannot write `{}`", p.display()))?;
        }
        if !self.quiet {
            eprint!("{table}");
            eprintln!(
                "heapscope: instrumented component written to `{}` ({}); it imports `{}`, which `heapscope run` provides",
                output.display(),
                heapscope_viewer::text::bytes_human(out.wasm.len() as u64),
                heapscope_trace::component_abi::HOOKS_INTERFACE,
            );
        }
        Ok(0)
    }

    /// Where to write the output, checked against the inputs.
    fn output_path(&self) -> anyhow::Result<PathBuf> {
        let output = self.output.clone().unwrap_or_else(|| {
            let stem = self
                .input
                .file_stem()
                .map_or("module".into(), |s| s.to_string_lossy().into_owned());
            PathBuf::from(format!("{stem}.hs.wasm"))
        });
        if output.is_dir() {
            anyhow::bail!(
                "cannot write the instrumented module to `{}`: it is a directory; give a file name",
                output.display()
            );
        }
        if super::run::same_file(&output, &self.input) {
            anyhow::bail!(
                "-o `{}` is the input itself: heapscope would overwrite it; name another file",
                output.display()
            );
        }
        if let Some(g) = self
            .glue
            .as_ref()
            .filter(|g| super::run::same_file(&output, g))
        {
            anyhow::bail!(
                "-o `{}` is the --glue file: heapscope would overwrite it; name another file",
                g.display()
            );
        }
        if let Some(p) = &self.report_json {
            super::run::check_outputs(
                &[("the input", &self.input)],
                &[("-o", &output), ("--report-json", p)],
            )?;
        }
        Ok(output)
    }
}

/// The component in `bytes` (binary, or text that parses to one), or
/// `None` when it is not a component.
fn component_bytes(bytes: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    if heapscope_instrument::is_component(bytes) {
        return Some(std::borrow::Cow::Borrowed(bytes));
    }
    if bytes.starts_with(b"\0asm") {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    if !text.contains("(component") {
        return None;
    }
    wat::parse_str(text)
        .ok()
        .filter(|b| heapscope_instrument::is_component(b))
        .map(std::borrow::Cow::Owned)
}

/// One line per core module of an instrumented component, with the
/// table of what was hooked under each instrumented one.
pub fn component_table(modules: &[heapscope_instrument::component::ComponentModule]) -> String {
    use heapscope_instrument::component::ModuleStatus;
    use heapscope_viewer::text::term_safe;
    let mut s = String::new();
    for m in modules {
        let mut place = m.path.join("/");
        if !place.is_empty() {
            place = format!(" in {}", term_safe(&place));
        }
        let head = format!("module {} `{}`{place}", m.id, term_safe(&m.display_name()));
        match &m.status {
            ModuleStatus::Instrumented { report } => {
                s.push_str(&format!("{head}: instrumented\n"));
                for line in report_table(report).lines() {
                    s.push_str(&format!("  {line}\n"));
                }
            }
            ModuleStatus::NoMemory => s.push_str(&format!(
                "{head}: no linear memory (no heap); runs as it is\n"
            )),
            ModuleStatus::NotInstrumented { reason } => s.push_str(&format!(
                "{head}: not instrumented, runs unseen by heapscope: {}\n",
                term_safe(reason)
            )),
        }
    }
    s
}

/// The glue file at `p`, or an error when it cannot be read or names
/// nothing heapscope recognises.
pub fn read_glue(p: &std::path::Path) -> anyhow::Result<heapscope_instrument::glue::Glue> {
    let g = heapscope_instrument::glue::read_file(p).map_err(anyhow::Error::msg)?;
    if g.is_empty() {
        anyhow::bail!(
            "the JS glue `{}` calls no export as an allocator heapscope recognises (wasm-bindgen's `passStringToWasm0(.., wasm.M, wasm.R)`, emscripten's `_malloc=...`); name the functions with `--alloc-fn ROLE=NAME`",
            p.display()
        );
    }
    Ok(g)
}

/// The human-readable table of what was hooked.
pub fn report_table(r: &heapscope_instrument::Report) -> String {
    use heapscope_viewer::text::term_safe;
    let mut s = String::new();
    if !r.families.is_empty() {
        s.push_str(&format!("allocator: {}\n", r.families.join(", ")));
    }
    let w = r
        .allocators
        .iter()
        .map(|a| term_safe(&a.function).chars().count())
        .max()
        .unwrap_or(8)
        .max(8);
    s.push_str(&format!(
        "{:<20} {:<w$} {:>6}  how found\n",
        "role", "function", "index"
    ));
    for a in &r.allocators {
        s.push_str(&format!(
            "{:<20} {:<w$} {:>6}  {}\n",
            a.role.name(),
            term_safe(&a.function),
            a.index,
            a.found_by
        ));
    }
    s.push_str(&format!(
        "{} memory.grow site(s), {} call site(s) in {} of {} functions keep the shadow stack; names: {}, DWARF: {}\n",
        r.grow_sites,
        r.call_sites,
        r.instrumented_functions,
        r.total_functions,
        if r.has_names { "yes" } else { "no" },
        if r.has_dwarf { "yes" } else { "no" },
    ));
    for note in &r.notes {
        s.push_str(&format!("note: {}\n", term_safe(note)));
    }
    for warn in &r.warnings {
        s.push_str(&format!("warning: {}\n", term_safe(warn)));
    }
    s
}
