//! Actor (component) config files: one JSON file says how a host runs an
//! actor, so one command runs it the same way under heapscope.
//!
//! ```json
//! {
//!   "component": "SessionCache",
//!   "module": "build/session_cache.wasm",
//!   "function": "process",
//!   "config": { "greeting": "hi" },
//!   "metadata": { "memory_limit_mb": 16 }
//! }
//! ```
//!
//! `component` and `metadata.memory_limit_mb` are Reflow's; `module` (the
//! plugin, relative to the config file), `function` (default `process`) and
//! `config` (the Extism config the plugin reads) are heapscope's additions.
//! As in Reflow, the memory limit defaults to 16 MiB and is capped at
//! 100 MiB; a limit given on the command line overrides both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The memory limit of an actor whose metadata names none: 16 MiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 16 << 20;
/// The largest memory limit metadata may ask for: 100 MiB.
pub const MAX_MEMORY_LIMIT: u64 = 100 << 20;

/// An actor as its host would run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorConfig {
    /// The component's name.
    pub component: String,
    /// The plugin, resolved against the config file's directory.
    pub module: PathBuf,
    /// The function called per message.
    pub function: String,
    /// The plugin's Extism config.
    pub config: BTreeMap<String, String>,
    /// The memory limit the host would apply, in bytes.
    pub memory_limit: u64,
    /// What was adjusted on the way (a limit over the cap), for the user.
    pub warnings: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    component: String,
    module: PathBuf,
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    metadata: serde_json::Map<String, serde_json::Value>,
}

impl ActorConfig {
    /// Read the config file at `path`.
    pub fn load(path: &Path) -> Result<ActorConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read actor config `{}`: {e}", path.display()))?;
        Self::parse(&text, path.parent().unwrap_or(Path::new("")))
            .map_err(|e| format!("actor config `{}`: {e}", path.display()))
    }

    /// Parse a config whose relative paths are relative to `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<ActorConfig, String> {
        let f: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut warnings = Vec::new();
        let memory_limit = match f.metadata.get("memory_limit_mb") {
            None => DEFAULT_MEMORY_LIMIT,
            Some(v) => {
                let mb = v.as_u64().filter(|&mb| mb > 0).ok_or_else(|| {
                    format!(
                        "metadata.memory_limit_mb must be a whole number of MB above 0, not {v}"
                    )
                })?;
                let bytes = mb.saturating_mul(1 << 20);
                if bytes > MAX_MEMORY_LIMIT {
                    warnings.push(format!(
                        "metadata.memory_limit_mb {mb} is over the 100 MB maximum; using 100 MB (pass --memory-limit to override)"
                    ));
                    MAX_MEMORY_LIMIT
                } else {
                    bytes
                }
            }
        };
        let config = f
            .config
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect();
        Ok(ActorConfig {
            component: f.component,
            module: dir.join(f.module),
            function: f.function.unwrap_or_else(|| "process".into()),
            config,
            memory_limit,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_to_16_mib_and_cap_at_100() {
        let c =
            ActorConfig::parse(r#"{"component":"A","module":"a.wasm"}"#, Path::new("d")).unwrap();
        assert_eq!(c.memory_limit, 16 << 20);
        assert_eq!(c.module, PathBuf::from("d/a.wasm"));
        assert_eq!(c.function, "process");
        let c = ActorConfig::parse(
            r#"{"component":"A","module":"a.wasm","metadata":{"memory_limit_mb":64},"config":{"n":3,"s":"x"}}"#,
            Path::new(""),
        )
        .unwrap();
        assert_eq!(c.memory_limit, 64 << 20);
        assert_eq!(c.config["n"], "3");
        assert_eq!(c.config["s"], "x");
        let c = ActorConfig::parse(
            r#"{"component":"A","module":"a.wasm","metadata":{"memory_limit_mb":500}}"#,
            Path::new(""),
        )
        .unwrap();
        assert_eq!(c.memory_limit, 100 << 20);
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let e = ActorConfig::parse(r#"{"component":"A"}"#, Path::new("")).unwrap_err();
        assert!(e.contains("missing field `module`"), "{e}");
        let e = ActorConfig::parse(
            r#"{"component":"A","module":"a","metadata":{"memory_limit_mb":"lots"}}"#,
            Path::new(""),
        )
        .unwrap_err();
        assert!(e.contains("whole number"), "{e}");
        let e = ActorConfig::parse(r#"{"component":"A","module":"a","modul":1}"#, Path::new(""))
            .unwrap_err();
        assert!(e.contains("unknown field `modul`"), "{e}");
    }
}
