//! Instrumenting a WebAssembly component (WASI 0.2): every core module
//! inside it, nested components too, re-encoded into a component that
//! imports heapscope's hooks as a WIT instance.
//!
//! The hook ABI of a core module inside a component is
//! [`heapscope_trace::component_abi`]. This module does the component side:
//!
//! 1. **Walk** the component (`wasmparser`): number its core modules
//!    depth-first (the *module id*), find where each is instantiated and
//!    with which arguments, and their names (the component's name section,
//!    else the module's own).
//! 2. **Instrument** each instantiated core module in component mode. A
//!    module without linear memory (wit-component's `shim` and `fixup`)
//!    passes through as it is; any other failure leaves that module as it
//!    is and says why in the report.
//! 3. **Re-encode** (`wasm_encoder`'s component re-encoder). Each component
//!    scope that instantiates an instrumented module gets a prefix before
//!    its first section: the import of the instance
//!    [`cabi::HOOKS_INTERFACE`], a provider module per instrumented module
//!    (the memories the instrumented module imports from
//!    [`cabi::MEMORY_MODULE`], with their limits), one provider instance per
//!    instantiation, the `canon lower`s of the hooks (scalar hooks without
//!    options, `register` with the provider's shadow memory, `memory:N` with
//!    memory N), and each `instantiate` of an instrumented module gets two
//!    more arguments: `heapscope` (a core instance of the lowered hooks, made
//!    from exports right before it) and `heapscope:memory` (its provider).
//!    `memory:N` for a memory the module *imports* (the preview-1 adapter
//!    imports the main module's memory) is lowered right before the
//!    instantiation too, with the memory aliased from the instance the
//!    original argument names. A nested component that holds an
//!    instrumented module imports the hooks instance itself; its parent
//!    passes its own with `(with "heapscope:hooks/hooks@1.0.0" ...)`.
//!
//! Everything added to a component-level index space sits in the prefix,
//! so those indices shift by a constant per scope; the core func, core
//! memory and core instance spaces also get items right before an
//! instantiation, and their indices shift by the number of items inserted
//! at or before them. Nothing shifts inside type scopes, and an outer alias
//! shifts by the scope it resolves to.

use crate::{InstrumentError, Instrumented, Options, Report};
use heapscope_trace::abi;
use heapscope_trace::component_abi as cabi;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use wasm_encoder::reencode::{component_utils, Reencode, ReencodeComponent};
use wasmparser::{Encoding, Parser, Payload};

/// An instrumented component and what was done to each of its core modules.
#[derive(Debug, Clone)]
pub struct InstrumentedComponent {
    /// The component's bytes.
    pub wasm: Vec<u8>,
    /// Every core module of the component, by module id (its depth-first
    /// index in the component).
    pub modules: Vec<ComponentModule>,
}

/// One core module of a component.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ComponentModule {
    /// The module id: the module's depth-first index among the component's
    /// core modules (nested components' modules included), the id its
    /// instances register with.
    pub id: u32,
    /// Its name: the component's name section's name for it, else its own
    /// name section's module name.
    pub name: Option<String>,
    /// The nested components it is defined in, outermost first (each one's
    /// name in its parent's name section, else `component[N]`, its index in
    /// the parent); empty for a module of the outermost component.
    pub path: Vec<String>,
    /// How many times the component instantiates it.
    pub instances: u32,
    /// Where the original module's bytes are in the input component
    /// ([`ComponentModule::original`] slices them).
    pub range: Range<usize>,
    /// Whether it was instrumented, and if not, why (in JSON: `status`,
    /// and `report` or `reason`, beside the other fields).
    #[serde(flatten)]
    pub status: ModuleStatus,
}

impl ComponentModule {
    /// The original module's bytes, from the input component.
    pub fn original<'a>(&self, component: &'a [u8]) -> &'a [u8] {
        &component[self.range.clone()]
    }

    /// The name to show: its name, else `module[ID]`.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("module[{}]", self.id))
    }

    /// The instrumenter's report, when it was instrumented.
    pub fn report(&self) -> Option<&Report> {
        match &self.status {
            ModuleStatus::Instrumented { report } => Some(report),
            _ => None,
        }
    }
}

/// What happened to a core module of a component.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ModuleStatus {
    /// Instrumented; the instrumenter's report.
    Instrumented {
        /// What was hooked.
        report: Box<Report>,
    },
    /// It has no linear memory, so no heap (wit-component's `shim` and
    /// `fixup` modules): it runs as it is.
    NoMemory,
    /// It runs as it is, unseen by heapscope: why.
    NotInstrumented {
        /// Why it was not instrumented.
        reason: String,
    },
}

/// Instrument every core module of `component` in component mode and wire
/// the hooks up (see the module docs).
///
/// Errors: the input is not a valid component (a truncated file says so),
/// or it already imports [`cabi::HOOKS_INTERFACE`]. A core module that
/// cannot be instrumented is not an error: it stays as it is and its
/// [`ModuleStatus`] says why.
pub fn instrument_component(
    component: &[u8],
    opts: &Options,
) -> Result<InstrumentedComponent, InstrumentError> {
    instrument_component_with(component, opts, &|module, id| {
        let o = Options {
            component: Some(crate::ComponentMode { module_id: id }),
            ..opts.clone()
        };
        crate::instrument(module, &o)
    })
}

/// A core-module instrumenter: the module's bytes and its module id.
pub(crate) type ModuleInstrumenter<'a> =
    dyn Fn(&[u8], u32) -> Result<Instrumented, InstrumentError> + Sync + 'a;

/// [`instrument_component`] with the core-module instrumenter given.
pub(crate) fn instrument_component_with(
    component: &[u8],
    opts: &Options,
    instrument: &ModuleInstrumenter<'_>,
) -> Result<InstrumentedComponent, InstrumentError> {
    if !crate::is_component(component) {
        return Err(InstrumentError::Invalid(
            "not a WebAssembly component (its header is not a component's `\\0asm 0d 00 01 00`)"
                .into(),
        ));
    }
    validate(component)
        .map_err(|e| InstrumentError::Invalid(format!("the component does not validate: {e}")))?;
    let walk = Walk::of(component)?;
    let mut statuses = Vec::with_capacity(walk.modules.len());
    let mut plans: HashMap<u32, ModulePlan> = HashMap::new();
    let results: Vec<Option<Result<Instrumented, InstrumentError>>> = {
        use rayon::prelude::*;
        walk.modules
            .par_iter()
            .map(|m| {
                (m.instances > 0 && m.escapes.is_none())
                    .then(|| instrument(&component[m.range.clone()], m.id))
            })
            .collect()
    };
    for (m, r) in walk.modules.iter().zip(results) {
        let status = match r {
            None if m.instances == 0 && m.escapes.is_none() => ModuleStatus::NotInstrumented {
                reason: "the component never instantiates it".into(),
            },
            None => ModuleStatus::NotInstrumented {
                reason: m.escapes.clone().unwrap_or_default(),
            },
            Some(Err(InstrumentError::NoMemory)) => ModuleStatus::NoMemory,
            Some(Err(e)) => ModuleStatus::NotInstrumented {
                reason: e.to_string(),
            },
            Some(Ok(out)) => match ModulePlan::of(&component[m.range.clone()], out.wasm) {
                Ok(plan) => {
                    plans.insert(m.id, plan);
                    ModuleStatus::Instrumented {
                        report: Box::new(out.report),
                    }
                }
                Err(e) => ModuleStatus::NotInstrumented {
                    reason: format!("internal error: the instrumented module's imports: {e}"),
                },
            },
        };
        statuses.push(status);
    }
    let needs_hooks = walk.needs_hooks(&plans);
    let mut re = Reencoder {
        walk: &walk,
        plans: &plans,
        needs_hooks: &needs_hooks,
        frames: Vec::new(),
        next_scope: 0,
        next_module: 0,
    };
    let wasm = if needs_hooks[0] || !plans.is_empty() {
        re.frames
            .push(Frame::Component(Box::new(re.scope_state(0))));
        re.next_scope = 1;
        let mut out = wasm_encoder::Component::new();
        re.parse_component(&mut out, Parser::new(0), component)
            .map_err(|e| InstrumentError::Internal(format!("re-encoding the component: {e}")))?;
        out.finish()
    } else {
        component.to_vec()
    };
    if opts.validate {
        validate(&wasm).map_err(|e| InstrumentError::Internal(e.to_string()))?;
    }
    let modules = walk
        .modules
        .iter()
        .zip(statuses)
        .map(|(m, status)| ComponentModule {
            id: m.id,
            name: walk.module_name(m),
            path: walk.path(m.scope),
            instances: m.instances,
            range: m.range.clone(),
            status,
        })
        .collect();
    Ok(InstrumentedComponent { wasm, modules })
}

fn validate(wasm: &[u8]) -> Result<(), wasmparser::BinaryReaderError> {
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(wasm)
        .map(|_| ())
}

fn invalid(e: wasmparser::BinaryReaderError) -> InstrumentError {
    InstrumentError::Invalid(format!("the component does not parse: {e}"))
}

/// One core module found by the walk.
#[derive(Debug)]
struct WalkModule {
    id: u32,
    scope: usize,
    /// Its index in its scope's core module index space.
    index: u32,
    range: Range<usize>,
    own_name: Option<String>,
    instances: u32,
    /// Why it cannot be wired: it leaves its scope some way other than an
    /// instantiation heapscope sees.
    escapes: Option<String>,
}

/// One `instantiate` of a module of the walk.
#[derive(Debug)]
struct Instantiation {
    /// The core instance index it creates, in its scope.
    core_instance: u32,
    module: u32,
    /// Its arguments: name and core instance index.
    args: Vec<(String, u32)>,
}

/// One component scope: the outermost component or a nested one.
#[derive(Debug, Default)]
struct Scope {
    parent: Option<usize>,
    /// Its index in its parent's component index space.
    index_in_parent: u32,
    /// The core module index space: the module id where known.
    modules: Vec<Option<u32>>,
    /// The component index space: the nested scope where known.
    components: Vec<Option<usize>>,
    instantiations: Vec<Instantiation>,
    core_instances: u32,
    module_names: HashMap<u32, String>,
    component_names: HashMap<u32, String>,
}

/// What the walk found.
#[derive(Debug)]
struct Walk {
    scopes: Vec<Scope>,
    modules: Vec<WalkModule>,
}

enum WalkFrame {
    Component(usize),
    Module(u32),
}

impl Walk {
    fn of(bytes: &[u8]) -> Result<Walk, InstrumentError> {
        use wasmparser::{
            ComponentAlias, ComponentExternalKind, ComponentInstance, ComponentOuterAliasKind,
            ComponentTypeRef,
        };
        let mut w = Walk {
            scopes: Vec::new(),
            modules: Vec::new(),
        };
        let mut stack: Vec<WalkFrame> = Vec::new();
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(invalid)?;
            let s = match stack.last() {
                None => {
                    match payload {
                        Payload::Version {
                            encoding: Encoding::Component,
                            ..
                        } => {}
                        _ => {
                            return Err(InstrumentError::Invalid(
                                "not a WebAssembly component".into(),
                            ));
                        }
                    }
                    w.scopes.push(Scope::default());
                    stack.push(WalkFrame::Component(0));
                    continue;
                }
                Some(WalkFrame::Module(id)) => {
                    let id = *id;
                    match payload {
                        Payload::End(_) => {
                            stack.pop();
                        }
                        Payload::CustomSection(c) => {
                            if let wasmparser::KnownCustom::Name(names) = c.as_known() {
                                for n in names.into_iter().flatten() {
                                    if let wasmparser::Name::Module { name, .. } = n {
                                        w.modules[id as usize].own_name = Some(name.to_string());
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                Some(WalkFrame::Component(s)) => *s,
            };
            match payload {
                Payload::End(_) => {
                    stack.pop();
                }
                Payload::ModuleSection {
                    unchecked_range, ..
                } => {
                    let id = w.modules.len() as u32;
                    let index = w.scopes[s].modules.len() as u32;
                    w.modules.push(WalkModule {
                        id,
                        scope: s,
                        index,
                        range: unchecked_range,
                        own_name: None,
                        instances: 0,
                        escapes: None,
                    });
                    w.scopes[s].modules.push(Some(id));
                    stack.push(WalkFrame::Module(id));
                }
                Payload::ComponentSection { .. } => {
                    let c = w.scopes.len();
                    let index_in_parent = w.scopes[s].components.len() as u32;
                    w.scopes.push(Scope {
                        parent: Some(s),
                        index_in_parent,
                        ..Default::default()
                    });
                    w.scopes[s].components.push(Some(c));
                    stack.push(WalkFrame::Component(c));
                }
                Payload::ComponentImportSection(r) => {
                    for i in r {
                        let i = i.map_err(invalid)?;
                        if i.name.0 == cabi::HOOKS_INTERFACE {
                            return Err(InstrumentError::AlreadyInstrumented);
                        }
                        match i.ty {
                            ComponentTypeRef::Module(_) => w.scopes[s].modules.push(None),
                            ComponentTypeRef::Component(_) => w.scopes[s].components.push(None),
                            _ => {}
                        }
                    }
                }
                Payload::ComponentAliasSection(r) => {
                    for a in r {
                        match a.map_err(invalid)? {
                            ComponentAlias::Outer { kind, count, index } => {
                                let Some(anc) = w.ancestor(s, count) else {
                                    return Err(InstrumentError::Invalid(
                                        "an outer alias reaches past the outermost component"
                                            .into(),
                                    ));
                                };
                                match kind {
                                    ComponentOuterAliasKind::CoreModule => {
                                        let m = w.scopes[anc].modules.get(index as usize).copied();
                                        w.scopes[s].modules.push(m.flatten());
                                    }
                                    ComponentOuterAliasKind::Component => {
                                        let c =
                                            w.scopes[anc].components.get(index as usize).copied();
                                        w.scopes[s].components.push(c.flatten());
                                    }
                                    _ => {}
                                }
                            }
                            ComponentAlias::InstanceExport { kind, .. } => match kind {
                                ComponentExternalKind::Module => w.scopes[s].modules.push(None),
                                ComponentExternalKind::Component => {
                                    w.scopes[s].components.push(None)
                                }
                                _ => {}
                            },
                            ComponentAlias::CoreInstanceExport { .. } => {}
                        }
                    }
                }
                Payload::ComponentExportSection(r) => {
                    for e in r {
                        let e = e.map_err(invalid)?;
                        match e.kind {
                            ComponentExternalKind::Module => {
                                let m =
                                    w.scopes[s].modules.get(e.index as usize).copied().flatten();
                                w.escape(m, "the component exports it as a module");
                                w.scopes[s].modules.push(m);
                            }
                            ComponentExternalKind::Component => {
                                let c = w.scopes[s].components.get(e.index as usize).copied();
                                w.scopes[s].components.push(c.flatten());
                            }
                            _ => {}
                        }
                    }
                }
                Payload::ComponentInstanceSection(r) => {
                    for i in r {
                        let modules: Vec<u32> = match i.map_err(invalid)? {
                            ComponentInstance::Instantiate { args, .. } => args
                                .iter()
                                .filter(|a| a.kind == ComponentExternalKind::Module)
                                .map(|a| a.index)
                                .collect(),
                            ComponentInstance::FromExports(exports) => exports
                                .iter()
                                .filter(|e| e.kind == ComponentExternalKind::Module)
                                .map(|e| e.index)
                                .collect(),
                        };
                        for index in modules {
                            let m = w.scopes[s].modules.get(index as usize).copied().flatten();
                            w.escape(
                                m,
                                "the component passes it to a nested component as a module",
                            );
                        }
                    }
                }
                Payload::InstanceSection(r) => {
                    for i in r {
                        let core_instance = w.scopes[s].core_instances;
                        w.scopes[s].core_instances += 1;
                        if let wasmparser::Instance::Instantiate { module_index, args } =
                            i.map_err(invalid)?
                        {
                            let m = w.scopes[s].modules.get(module_index as usize).copied();
                            if let Some(Some(id)) = m {
                                w.modules[id as usize].instances += 1;
                                w.scopes[s].instantiations.push(Instantiation {
                                    core_instance,
                                    module: id,
                                    args: args
                                        .iter()
                                        .map(|a| (a.name.to_string(), a.index))
                                        .collect(),
                                });
                            }
                        }
                    }
                }
                Payload::CustomSection(c) => {
                    if let wasmparser::KnownCustom::ComponentName(names) = c.as_known() {
                        for n in names.into_iter().flatten() {
                            let (map, dst) = match n {
                                wasmparser::ComponentName::CoreModules(map) => {
                                    (map, &mut w.scopes[s].module_names)
                                }
                                wasmparser::ComponentName::Components(map) => {
                                    (map, &mut w.scopes[s].component_names)
                                }
                                _ => continue,
                            };
                            for naming in map.into_iter().flatten() {
                                dst.insert(naming.index, naming.name.to_string());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if w.scopes.is_empty() {
            return Err(InstrumentError::Invalid("the component is empty".into()));
        }
        Ok(w)
    }

    /// The scope `count` levels up from `s` (0: `s` itself).
    fn ancestor(&self, mut s: usize, count: u32) -> Option<usize> {
        for _ in 0..count {
            s = self.scopes[s].parent?;
        }
        Some(s)
    }

    fn escape(&mut self, module: Option<u32>, why: &str) {
        if let Some(id) = module {
            let m = &mut self.modules[id as usize];
            if m.escapes.is_none() {
                m.escapes = Some(format!(
                    "{why}, so heapscope cannot wire the hooks into its instances"
                ));
            }
        }
    }

    /// Per scope: whether it imports the hooks (it instantiates an
    /// instrumented module, or defines a nested component that does).
    fn needs_hooks(&self, plans: &HashMap<u32, ModulePlan>) -> Vec<bool> {
        let mut needs: Vec<bool> = self
            .scopes
            .iter()
            .map(|s| {
                s.instantiations
                    .iter()
                    .any(|i| plans.contains_key(&i.module))
            })
            .collect();
        // Children come after their parents.
        for s in (1..self.scopes.len()).rev() {
            if needs[s] {
                if let Some(p) = self.scopes[s].parent {
                    needs[p] = true;
                }
            }
        }
        needs
    }

    fn module_name(&self, m: &WalkModule) -> Option<String> {
        self.scopes[m.scope]
            .module_names
            .get(&m.index)
            .cloned()
            .or_else(|| m.own_name.clone())
    }

    fn path(&self, mut s: usize) -> Vec<String> {
        let mut path = Vec::new();
        while let Some(p) = self.scopes[s].parent {
            let i = self.scopes[s].index_in_parent;
            path.push(
                self.scopes[p]
                    .component_names
                    .get(&i)
                    .cloned()
                    .unwrap_or_else(|| format!("component[{i}]")),
            );
            s = p;
        }
        path.reverse();
        path
    }
}

/// An instrumented module and what its instances need.
#[derive(Debug)]
struct ModulePlan {
    wasm: Vec<u8>,
    /// The hooks it imports from `heapscope`, by core import name, in
    /// import order.
    hooks: Vec<String>,
    /// The memories it imports from `heapscope:memory`: name and type.
    provided: Vec<(String, wasmparser::MemoryType)>,
    /// The original module's imported memories, by memory index: module
    /// and name.
    original_memory_imports: Vec<(String, String)>,
}

impl ModulePlan {
    fn of(original: &[u8], wasm: Vec<u8>) -> Result<ModulePlan, String> {
        let mut hooks = Vec::new();
        let mut provided = Vec::new();
        let mut memories = 0u32;
        for p in Parser::new(0).parse_all(&wasm) {
            if let Payload::ImportSection(r) = p.map_err(|e| e.to_string())? {
                for i in r.into_imports() {
                    let i = i.map_err(|e| e.to_string())?;
                    if i.module == abi::IMPORT_MODULE {
                        if cabi::core_hook_params(i.name).is_none() {
                            return Err(format!("`{}` is not a hook", i.name));
                        }
                        hooks.push(i.name.to_string());
                    } else if i.module == cabi::MEMORY_MODULE {
                        let wasmparser::TypeRef::Memory(ty) = i.ty else {
                            return Err(format!("`{}` is not a memory", i.name));
                        };
                        if ty.memory64 || ty.shared {
                            return Err(format!(
                                "memory `{}` is 64-bit or shared, which cannot be a canonical ABI option",
                                i.name
                            ));
                        }
                        provided.push((i.name.to_string(), ty));
                    }
                }
            }
        }
        let mut original_memory_imports = Vec::new();
        for p in Parser::new(0).parse_all(original) {
            match p.map_err(|e| e.to_string())? {
                Payload::ImportSection(r) => {
                    for i in r.into_imports() {
                        let i = i.map_err(|e| e.to_string())?;
                        if let wasmparser::TypeRef::Memory(_) = i.ty {
                            original_memory_imports
                                .push((i.module.to_string(), i.name.to_string()));
                        }
                    }
                }
                Payload::MemorySection(r) => memories += r.count(),
                _ => {}
            }
        }
        let total = original_memory_imports.len() as u32 + memories;
        for h in &hooks {
            if let Some(n) = memory_hook_index(h) {
                if n >= total {
                    return Err(format!("`{h}` names a memory the module does not have"));
                }
                if n >= original_memory_imports.len() as u32
                    && !provided
                        .iter()
                        .any(|(name, _)| *name == cabi::provider_memory_name(n))
                {
                    return Err(format!(
                        "`{h}` names a memory the module defines but does not import from `{}`",
                        cabi::MEMORY_MODULE
                    ));
                }
            }
        }
        if hooks.iter().any(|h| h == cabi::HOOK_REGISTER)
            && !provided.iter().any(|(n, _)| n == cabi::SHADOW_IMPORT)
        {
            return Err(format!(
                "it imports `{}` but not the shadow memory",
                cabi::HOOK_REGISTER
            ));
        }
        Ok(ModulePlan {
            wasm,
            hooks,
            provided,
            original_memory_imports,
        })
    }

    /// The original import a `memory:N` hook's memory comes from, when the
    /// module imports memory N (else the provider has it).
    fn imported_memory(&self, n: u32) -> Option<&(String, String)> {
        self.original_memory_imports.get(n as usize)
    }
}

/// N of a `memory:N` hook name.
fn memory_hook_index(name: &str) -> Option<u32> {
    name.strip_prefix(cabi::HOOK_MEMORY_PREFIX)?.parse().ok()
}

/// The WIT function a core hook import is lowered from.
fn wit_func(core_name: &str) -> &str {
    if memory_hook_index(core_name).is_some() {
        cabi::WIT_MEMORY_FUNC
    } else {
        core_name
    }
}

/// A WIT parameter or result type of the hooks interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WitType {
    Prim(wasm_encoder::PrimitiveValType),
    ListU8,
}

/// A function of [`cabi::HOOKS_WIT`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct WitFunc {
    name: String,
    params: Vec<(String, WitType)>,
    result: Option<WitType>,
}

/// The functions of [`cabi::HOOKS_WIT`]'s interface, in order. The WIT
/// uses only `u32`, `s32`, `s64` and `list<u8>`; anything else is a bug in
/// the contract and panics in the tests.
fn hooks_wit_funcs() -> Vec<WitFunc> {
    fn ty(t: &str) -> WitType {
        use wasm_encoder::PrimitiveValType as P;
        match t.trim() {
            "u32" => WitType::Prim(P::U32),
            "s32" => WitType::Prim(P::S32),
            "u64" => WitType::Prim(P::U64),
            "s64" => WitType::Prim(P::S64),
            "u8" => WitType::Prim(P::U8),
            "list<u8>" => WitType::ListU8,
            other => panic!("hooks WIT: unsupported type `{other}`"),
        }
    }
    let body = cabi::HOOKS_WIT
        .split_once("interface hooks {")
        .and_then(|(_, b)| b.split_once('}'))
        .map_or("", |(b, _)| b);
    body.lines()
        .filter_map(|l| {
            let l = l.trim().strip_suffix(';')?;
            let (name, sig) = l.split_once(": func(")?;
            let (params, rest) = sig.split_once(')')?;
            let params = params
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| {
                    let (n, t) = p.split_once(':').expect("hooks WIT: `name: type`");
                    (n.trim().to_string(), ty(t))
                })
                .collect();
            let result = rest.trim().strip_prefix("->").map(ty);
            Some(WitFunc {
                name: name.trim().to_string(),
                params,
                result,
            })
        })
        .collect()
}

/// The component instance type of [`cabi::HOOKS_INTERFACE`].
fn hooks_instance_type(funcs: &[WitFunc]) -> wasm_encoder::InstanceType {
    use wasm_encoder::{ComponentTypeRef, ComponentValType};
    let mut t = wasm_encoder::InstanceType::new();
    t.ty()
        .defined_type()
        .list(wasm_encoder::PrimitiveValType::U8);
    let list = t.type_count() - 1;
    let val = |w: WitType| match w {
        WitType::Prim(p) => ComponentValType::Primitive(p),
        WitType::ListU8 => ComponentValType::Type(list),
    };
    for f in funcs {
        t.ty()
            .function()
            .params(f.params.iter().map(|(n, w)| (n.as_str(), val(*w))))
            .result(f.result.map(val));
        let ty = t.type_count() - 1;
        t.export(&f.name, ComponentTypeRef::Func(ty));
    }
    t
}

/// Indices of a core index space that gets items inserted at several
/// places of a scope.
#[derive(Debug, Default)]
struct Shift {
    /// Original items seen so far.
    orig: u32,
    /// Items emitted so far (original and inserted).
    emitted: u32,
    /// Insertions: before the original item `at`, `n` items.
    inserted: Vec<(u32, u32)>,
}

impl Shift {
    fn map(&self, i: u32) -> u32 {
        i + self
            .inserted
            .iter()
            .filter(|(at, _)| *at <= i)
            .map(|(_, n)| n)
            .sum::<u32>()
    }

    /// Insert one item here; its new index.
    fn insert(&mut self) -> u32 {
        let index = self.emitted;
        match self.inserted.last_mut() {
            Some((at, n)) if *at == self.orig => *n += 1,
            _ => self.inserted.push((self.orig, 1)),
        }
        self.emitted += 1;
        index
    }

    fn original(&mut self) {
        self.orig += 1;
        self.emitted += 1;
    }
}

/// What the prefix set up for one instantiation of an instrumented module.
#[derive(Debug, Default)]
struct InstanceWiring {
    /// The provider's core instance.
    provider: u32,
    /// Core funcs lowered in the prefix, by core import name.
    funcs: HashMap<String, u32>,
}

/// The re-encoder's state for one component scope.
#[derive(Debug, Default)]
struct ScopeState {
    scope: usize,
    edited: bool,
    component_types: u32,
    component_instances: u32,
    component_funcs: u32,
    modules: u32,
    core_funcs: Shift,
    core_memories: Shift,
    core_instances: Shift,
    /// Per instantiation of an instrumented module, by its core instance
    /// index: what the prefix wired.
    wiring: BTreeMap<u32, InstanceWiring>,
    /// The core func of each scalar hook, lowered once per scope.
    scalar: HashMap<String, u32>,
    /// The component func of each WIT function of the hooks instance.
    wit: HashMap<String, u32>,
    /// The provider module of each instrumented module.
    providers: HashMap<u32, u32>,
}

#[derive(Debug)]
enum Frame {
    Component(Box<ScopeState>),
    /// A type scope: a component, instance or module type.
    Type,
}

struct Reencoder<'a> {
    walk: &'a Walk,
    plans: &'a HashMap<u32, ModulePlan>,
    needs_hooks: &'a [bool],
    frames: Vec<Frame>,
    next_scope: usize,
    next_module: u32,
}

type ReError = wasm_encoder::reencode::Error<String>;

impl Reencoder<'_> {
    fn scope_state(&self, scope: usize) -> ScopeState {
        ScopeState {
            scope,
            edited: self.needs_hooks[scope],
            ..Default::default()
        }
    }

    /// The scope state of the innermost frame, when it is a component's.
    fn state(&mut self) -> Option<&mut ScopeState> {
        match self.frames.last_mut() {
            Some(Frame::Component(s)) => Some(s),
            _ => None,
        }
    }

    /// The scope state `count` frames out, when it is a component's.
    fn outer(&self, count: u32) -> Option<&ScopeState> {
        let i = self.frames.len().checked_sub(1 + count as usize)?;
        match &self.frames[i] {
            Frame::Component(s) => Some(s),
            Frame::Type => None,
        }
    }

    /// The instantiations of instrumented modules in `scope`.
    fn wired<'w>(&self, scope: &'w Scope) -> impl Iterator<Item = &'w Instantiation> + use<'w, '_> {
        scope
            .instantiations
            .iter()
            .filter(|i| self.plans.contains_key(&i.module))
    }

    /// Emit the prefix of the current scope (see the module docs).
    fn prefix(&mut self, component: &mut wasm_encoder::Component) {
        use wasm_encoder::{
            Alias, CanonicalFunctionSection, CanonicalOption, ComponentAliasSection,
            ComponentExportKind, ComponentImportSection, ComponentTypeRef, ComponentTypeSection,
            ExportKind, ExportSection, InstanceSection, MemorySection, MemoryType, Module,
            ModuleSection,
        };
        let walk = self.walk;
        let plans = self.plans;
        let Some(Frame::Component(st)) = self.frames.last() else {
            return;
        };
        if !st.edited {
            return;
        }
        let scope = &walk.scopes[st.scope];
        let wired: Vec<&Instantiation> = self.wired(scope).collect();
        let st = self.state().expect("a component scope");
        let funcs = hooks_wit_funcs();
        let mut types = ComponentTypeSection::new();
        types.instance(&hooks_instance_type(&funcs));
        component.section(&types);
        st.component_types = 1;
        let mut imports = ComponentImportSection::new();
        imports.import(cabi::HOOKS_INTERFACE, ComponentTypeRef::Instance(0));
        component.section(&imports);
        st.component_instances = 1;
        if wired.is_empty() {
            return;
        }
        let mut aliases = ComponentAliasSection::new();
        for (i, f) in funcs.iter().enumerate() {
            aliases.alias(Alias::InstanceExport {
                instance: 0,
                kind: ComponentExportKind::Func,
                name: &f.name,
            });
            st.wit.insert(f.name.clone(), i as u32);
        }
        component.section(&aliases);
        st.component_funcs = funcs.len() as u32;
        // A provider module per instrumented module.
        for i in &wired {
            if st.providers.contains_key(&i.module) {
                continue;
            }
            let plan = &plans[&i.module];
            let mut m = Module::new();
            let mut mems = MemorySection::new();
            let mut exports = ExportSection::new();
            for (k, (name, ty)) in plan.provided.iter().enumerate() {
                mems.memory(MemoryType {
                    minimum: ty.initial,
                    maximum: ty.maximum,
                    memory64: ty.memory64,
                    shared: ty.shared,
                    page_size_log2: ty.page_size_log2,
                });
                exports.export(name, ExportKind::Memory, k as u32);
            }
            m.section(&mems).section(&exports);
            component.section(&ModuleSection(&m));
            let index = st.providers.len() as u32;
            st.providers.insert(i.module, index);
        }
        st.modules = st.providers.len() as u32;
        // A provider instance per instantiation.
        let mut instances = InstanceSection::new();
        let mut provider_of = Vec::new();
        for i in &wired {
            let empty: [(&str, wasm_encoder::ModuleArg); 0] = [];
            instances.instantiate(st.providers[&i.module], empty);
            provider_of.push(st.core_instances.insert());
        }
        component.section(&instances);
        // Their memories.
        let mut aliases = ComponentAliasSection::new();
        let mut memory_of: Vec<HashMap<&str, u32>> = Vec::new();
        for (i, provider) in wired.iter().zip(&provider_of) {
            let mut m = HashMap::new();
            for (name, _) in &plans[&i.module].provided {
                aliases.alias(Alias::CoreInstanceExport {
                    instance: *provider,
                    kind: ExportKind::Memory,
                    name,
                });
                m.insert(name.as_str(), st.core_memories.insert());
            }
            memory_of.push(m);
        }
        component.section(&aliases);
        // The lowered hooks: scalars once, `register` and `memory:N` per
        // instance with its memory.
        let mut canon = CanonicalFunctionSection::new();
        for i in &wired {
            for h in &plans[&i.module].hooks {
                let is_scalar = h != cabi::HOOK_REGISTER && memory_hook_index(h).is_none();
                if is_scalar && !st.scalar.contains_key(h) {
                    canon.lower(st.wit[h.as_str()], []);
                    let f = st.core_funcs.insert();
                    st.scalar.insert(h.clone(), f);
                }
            }
        }
        for ((i, provider), mems) in wired.iter().zip(&provider_of).zip(&memory_of) {
            let plan = &plans[&i.module];
            let mut wiring = InstanceWiring {
                provider: *provider,
                funcs: HashMap::new(),
            };
            for h in &plan.hooks {
                let memory = if h == cabi::HOOK_REGISTER {
                    mems[cabi::SHADOW_IMPORT]
                } else if let Some(n) = memory_hook_index(h) {
                    if plan.imported_memory(n).is_some() {
                        continue; // lowered right before the instantiation
                    }
                    mems[cabi::provider_memory_name(n).as_str()]
                } else {
                    wiring.funcs.insert(h.clone(), st.scalar[h.as_str()]);
                    continue;
                };
                canon.lower(st.wit[wit_func(h)], [CanonicalOption::Memory(memory)]);
                wiring.funcs.insert(h.clone(), st.core_funcs.insert());
            }
            st.wiring.insert(i.core_instance, wiring);
        }
        if !canon.is_empty() {
            component.section(&canon);
        }
    }

    /// An instance section, with the `heapscope` instance (and the lowering
    /// of imported memories' hooks) inserted before each instantiation of
    /// an instrumented module, which gets two more arguments.
    fn instance_section(
        &mut self,
        component: &mut wasm_encoder::Component,
        section: wasmparser::InstanceSectionReader<'_>,
    ) -> Result<(), ReError> {
        use wasm_encoder::{
            Alias, CanonicalFunctionSection, CanonicalOption, ComponentAliasSection, ExportKind,
            InstanceSection, ModuleArg,
        };
        let walk = self.walk;
        let plans = self.plans;
        let mut cur = InstanceSection::new();
        for entry in section {
            let entry = entry?;
            let st = self.state().expect("a component scope");
            let here = st.core_instances.orig;
            let inst = walk.scopes[st.scope]
                .instantiations
                .iter()
                .find(|i| i.core_instance == here);
            let wiring = st.wiring.remove(&here);
            let (
                Some(inst),
                Some(mut wiring),
                wasmparser::Instance::Instantiate { module_index, args },
            ) = (inst, wiring, &entry)
            else {
                self.parse_instance(&mut cur, entry)?;
                self.state()
                    .expect("a component scope")
                    .core_instances
                    .original();
                continue;
            };
            let plan = &plans[&inst.module];
            // `memory:N` of a memory the module imports: alias it from the
            // instance the original argument names, and lower.
            let mut aliases = ComponentAliasSection::new();
            let mut canon = CanonicalFunctionSection::new();
            for h in &plan.hooks {
                let Some((module, name)) =
                    memory_hook_index(h).and_then(|n| plan.imported_memory(n))
                else {
                    continue;
                };
                let Some(arg) = inst.args.iter().find(|(a, _)| a == module) else {
                    return Err(wasm_encoder::reencode::Error::UserError(format!(
                        "module {} imports a memory from `{module}`, which its instantiation does not pass",
                        inst.module
                    )));
                };
                aliases.alias(Alias::CoreInstanceExport {
                    instance: st.core_instances.map(arg.1),
                    kind: ExportKind::Memory,
                    name,
                });
                let memory = st.core_memories.insert();
                canon.lower(
                    st.wit[cabi::WIT_MEMORY_FUNC],
                    [CanonicalOption::Memory(memory)],
                );
                wiring.funcs.insert(h.clone(), st.core_funcs.insert());
            }
            if !aliases.is_empty() {
                if !cur.is_empty() {
                    component.section(&cur);
                    cur = InstanceSection::new();
                }
                component.section(&aliases);
                component.section(&canon);
            }
            cur.export_items(
                plan.hooks
                    .iter()
                    .map(|h| (h.as_str(), ExportKind::Func, wiring.funcs[h.as_str()])),
            );
            let hooks = st.core_instances.insert();
            let mut new_args: Vec<(&str, ModuleArg)> = args
                .iter()
                .map(|a| (a.name, ModuleArg::Instance(st.core_instances.map(a.index))))
                .collect();
            new_args.push((abi::IMPORT_MODULE, ModuleArg::Instance(hooks)));
            new_args.push((cabi::MEMORY_MODULE, ModuleArg::Instance(wiring.provider)));
            let module = module_index + st.modules;
            cur.instantiate(module, new_args);
            st.core_instances.original();
        }
        if !cur.is_empty() {
            component.section(&cur);
        }
        Ok(())
    }
}

impl Reencode for Reencoder<'_> {
    type Error = String;

    fn function_index(&mut self, func: u32) -> Result<u32, ReError> {
        Ok(self.state().map_or(func, |s| s.core_funcs.map(func)))
    }

    fn memory_index(&mut self, memory: u32) -> Result<u32, ReError> {
        Ok(self.state().map_or(memory, |s| s.core_memories.map(memory)))
    }
}

impl ReencodeComponent for Reencoder<'_> {
    fn component_type_index(&mut self, ty: u32) -> u32 {
        self.state().map_or(ty, |s| ty + s.component_types)
    }

    fn component_instance_index(&mut self, i: u32) -> u32 {
        self.state().map_or(i, |s| i + s.component_instances)
    }

    fn component_func_index(&mut self, f: u32) -> u32 {
        self.state().map_or(f, |s| f + s.component_funcs)
    }

    fn module_index(&mut self, m: u32) -> u32 {
        self.state().map_or(m, |s| m + s.modules)
    }

    fn instance_index(&mut self, i: u32) -> u32 {
        self.state().map_or(i, |s| s.core_instances.map(i))
    }

    fn outer_component_type_index(&mut self, count: u32, ty: u32) -> u32 {
        self.outer(count).map_or(ty, |s| ty + s.component_types)
    }

    fn outer_module_index(&mut self, count: u32, module: u32) -> u32 {
        self.outer(count).map_or(module, |s| module + s.modules)
    }

    fn outer_component_index(&mut self, _count: u32, component: u32) -> u32 {
        component
    }

    fn outer_type_index(&mut self, _count: u32, ty: u32) -> Result<u32, ReError> {
        Ok(ty)
    }

    fn push_depth(&mut self) {
        self.frames.push(Frame::Type);
    }

    fn pop_depth(&mut self) {
        self.frames.pop();
    }

    fn parse_component_payload(
        &mut self,
        component: &mut wasm_encoder::Component,
        payload: Payload<'_>,
        whole_component: &[u8],
    ) -> Result<(), ReError> {
        match payload {
            Payload::Version {
                encoding: Encoding::Component,
                ..
            } => {
                self.prefix(component);
                Ok(())
            }
            Payload::InstanceSection(section) => self.instance_section(component, section),
            Payload::ComponentAliasSection(section) => {
                let mut aliases = wasm_encoder::ComponentAliasSection::new();
                for a in section {
                    let a = a?;
                    let core = match &a {
                        wasmparser::ComponentAlias::CoreInstanceExport { kind, .. } => Some(*kind),
                        _ => None,
                    };
                    aliases.alias(self.component_alias(a)?);
                    if let Some(kind) = core {
                        let st = self.state().expect("a component scope");
                        match kind {
                            wasmparser::ExternalKind::Func
                            | wasmparser::ExternalKind::FuncExact => st.core_funcs.original(),
                            wasmparser::ExternalKind::Memory => st.core_memories.original(),
                            _ => {}
                        }
                    }
                }
                component.section(&aliases);
                Ok(())
            }
            Payload::ComponentCanonicalSection(section) => {
                let mut canon = wasm_encoder::CanonicalFunctionSection::new();
                for c in section {
                    let c = c?;
                    let lift = matches!(c, wasmparser::CanonicalFunction::Lift { .. });
                    self.parse_component_canonical(&mut canon, c)?;
                    if !lift {
                        self.state()
                            .expect("a component scope")
                            .core_funcs
                            .original();
                    }
                }
                component.section(&canon);
                Ok(())
            }
            other => {
                component_utils::parse_component_payload(self, component, other, whole_component)
            }
        }
    }

    fn parse_component_custom_section(
        &mut self,
        component: &mut wasm_encoder::Component,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), ReError> {
        if let wasmparser::KnownCustom::ComponentName(names) = section.as_known() {
            // The validator does not read the name section: a damaged one
            // is copied as it is rather than failing the component.
            if let Ok(names) = self.custom_component_name_section(names) {
                component.section(&names);
                return Ok(());
            }
        }
        component.section(&wasm_encoder::CustomSection {
            name: section.name().into(),
            data: section.data().into(),
        });
        Ok(())
    }

    fn parse_component_submodule(
        &mut self,
        component: &mut wasm_encoder::Component,
        _parser: Parser,
        module: &[u8],
    ) -> Result<(), ReError> {
        let id = self.next_module;
        self.next_module += 1;
        let data = self.plans.get(&id).map_or(module, |p| &p.wasm[..]);
        component.section(&wasm_encoder::RawSection {
            id: wasm_encoder::ComponentSectionId::CoreModule as u8,
            data,
        });
        Ok(())
    }

    fn parse_component_subcomponent(
        &mut self,
        component: &mut wasm_encoder::Component,
        parser: Parser,
        subcomponent: &[u8],
        whole_component: &[u8],
    ) -> Result<(), ReError> {
        let scope = self.next_scope;
        self.next_scope += 1;
        let st = self.scope_state(scope);
        self.frames.push(Frame::Component(Box::new(st)));
        let mut sub = wasm_encoder::Component::new();
        let r =
            component_utils::parse_component(self, &mut sub, parser, subcomponent, whole_component);
        self.frames.pop();
        r?;
        component.section(&wasm_encoder::NestedComponentSection(&sub));
        Ok(())
    }

    fn parse_component_instance(
        &mut self,
        instances: &mut wasm_encoder::ComponentInstanceSection,
        instance: wasmparser::ComponentInstance<'_>,
    ) -> Result<(), ReError> {
        let wasmparser::ComponentInstance::Instantiate {
            component_index,
            args,
        } = instance
        else {
            return component_utils::parse_component_instance(self, instances, instance);
        };
        let walk = self.walk;
        let needs_hooks = self.needs_hooks;
        let needs = self
            .state()
            .and_then(|st| {
                walk.scopes[st.scope]
                    .components
                    .get(component_index as usize)
                    .copied()
                    .flatten()
            })
            .is_some_and(|c| needs_hooks[c]);
        let mut new_args: Vec<(&str, wasm_encoder::ComponentExportKind, u32)> = args
            .iter()
            .map(|a| {
                (
                    a.name,
                    a.kind.into(),
                    self.component_external_index(a.kind, a.index),
                )
            })
            .collect();
        if needs {
            // The hooks instance is the scope's first component instance.
            new_args.push((
                cabi::HOOKS_INTERFACE,
                wasm_encoder::ComponentExportKind::Instance,
                0,
            ));
        }
        let component_index = self.component_index(component_index);
        instances.instantiate(component_index, new_args);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WAT import of hook `name` from `heapscope`, typed by the contract.
    fn hook(name: &str) -> String {
        let params: Vec<&str> = cabi::core_hook_params(name)
            .unwrap()
            .iter()
            .map(|p| match p {
                abi::HookParam::I32 => "i32",
                abi::HookParam::I64 => "i64",
            })
            .collect();
        let result = if name == cabi::HOOK_REGISTER {
            " (result i32)"
        } else {
            ""
        };
        format!(
            "(import \"heapscope\" \"{name}\" (func (param {}){result}))",
            params.join(" ")
        )
    }

    /// The shadow memory's import, as the contract sizes it.
    fn shadow() -> String {
        let p = cabi::COMPONENT_SHADOW_PAGES;
        format!("(import \"heapscope:memory\" \"shadow\" (memory {p} {p}))")
    }

    /// An instrumenter that replaces module `id` with `fakes[id]` (WAT),
    /// reports a module without memory as such, and fails where the fake is
    /// `None`.
    fn fake(
        fakes: Vec<Option<String>>,
    ) -> impl Fn(&[u8], u32) -> Result<Instrumented, InstrumentError> + Sync {
        move |module: &[u8], id: u32| {
            let memories = Parser::new(0).parse_all(module).any(|p| match p.unwrap() {
                Payload::MemorySection(r) => r.count() > 0,
                Payload::ImportSection(r) => r
                    .into_imports()
                    .any(|i| matches!(i.unwrap().ty, wasmparser::TypeRef::Memory(_))),
                _ => false,
            });
            if !memories {
                return Err(InstrumentError::NoMemory);
            }
            match &fakes[id as usize] {
                Some(wat) => Ok(Instrumented {
                    wasm: wat::parse_str(wat).unwrap(),
                    report: Report {
                        total_functions: 1000 + id as usize,
                        ..Default::default()
                    },
                }),
                None => Err(InstrumentError::Unsupported(
                    "a feature for the test".into(),
                )),
            }
        }
    }

    /// The instrumented form of `KEEPER` (module `keeper`).
    fn keeper_instrumented() -> String {
        format!(
            r#"(module
                 {} {} {} {}
                 (import "heapscope:memory" "m0" (memory 1))
                 {}
                 (export "memory" (memory 0))
                 (func (export "keep") (param i32 i32))
                 (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8))"#,
            hook("register"),
            hook("memory:0"),
            hook("flush"),
            hook("alloc"),
            shadow()
        )
    }

    const KEEPER: &str = r#"
        (core module $keeper
          (memory (export "memory") 1)
          (func (export "keep") (param i32 i32))
          (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8))"#;

    /// A lift of `keep` from core instance `$inst`, exported as `name`.
    fn lift(inst: &str, name: &str) -> String {
        format!(
            r#"(func (export "{name}") (param "s" string)
                 (canon lift (core func {inst} "keep") (memory (core memory {inst} "memory"))
                   (realloc (core func {inst} "cabi_realloc"))))"#
        )
    }

    fn run(wat: &str, fakes: Vec<Option<String>>) -> InstrumentedComponent {
        let bytes = wat::parse_str(wat).unwrap();
        let opts = Options {
            validate: true,
            ..Default::default()
        };
        instrument_component_with(&bytes, &opts, &fake(fakes)).unwrap()
    }

    /// The output's imports of the outermost component and the number of
    /// core modules, core instances and nested components it has, depth-first.
    fn shape(wasm: &[u8]) -> (Vec<String>, usize, usize, usize) {
        let mut imports = Vec::new();
        let (mut modules, mut instances, mut components) = (0, 0, 0);
        let mut depth = 0;
        for p in Parser::new(0).parse_all(wasm) {
            match p.unwrap() {
                Payload::ComponentImportSection(r) if depth == 0 => {
                    imports.extend(r.into_iter().map(|i| i.unwrap().name.0.to_string()))
                }
                Payload::ModuleSection { .. } => modules += 1,
                Payload::ComponentSection { .. } => {
                    components += 1;
                    depth += 1
                }
                Payload::InstanceSection(r) => instances += r.count() as usize,
                Payload::End(_) => depth -= 1,
                _ => {}
            }
        }
        (imports, modules, instances, components)
    }

    /// A stand-in for the component-mode instrumenter that gives any real
    /// module the contract's imports (every hook, `memory:N` for each of
    /// its memories, its defined memories and the shadow memory from
    /// `heapscope:memory`) and changes nothing else, so the re-encoder can
    /// be tested on real components whatever the rewriter does.
    fn contract_shaped(module: &[u8]) -> Result<Vec<u8>, InstrumentError> {
        use wasm_encoder::reencode::{utils, Error, Reencode};
        use wasm_encoder::{EntityType, ValType};
        struct Shape {
            func_imports: u32,
            types: u32,
            memory_imports: u32,
            memories: Vec<wasmparser::MemoryType>,
            hooks: Vec<String>,
            types_done: bool,
            imports_done: bool,
        }
        impl Shape {
            fn add_types(&mut self, types: &mut wasm_encoder::TypeSection) {
                for h in &self.hooks {
                    let core = cabi::core_hook_params(h).unwrap();
                    let params = core.iter().map(|p| match p {
                        abi::HookParam::I32 => ValType::I32,
                        abi::HookParam::I64 => ValType::I64,
                    });
                    let results = (h == cabi::HOOK_REGISTER).then_some(ValType::I32);
                    types.ty().function(params, results);
                }
                self.types_done = true;
            }
            fn add_imports(&mut self, imports: &mut wasm_encoder::ImportSection) {
                for (k, ty) in self.memories.iter().enumerate() {
                    let name = cabi::provider_memory_name(self.memory_imports + k as u32);
                    let ty = wasm_encoder::MemoryType {
                        minimum: ty.initial,
                        maximum: ty.maximum,
                        memory64: ty.memory64,
                        shared: ty.shared,
                        page_size_log2: ty.page_size_log2,
                    };
                    imports.import(cabi::MEMORY_MODULE, &name, ty);
                }
                let p = cabi::COMPONENT_SHADOW_PAGES;
                let shadow = wasm_encoder::MemoryType {
                    minimum: p,
                    maximum: Some(p),
                    memory64: false,
                    shared: false,
                    page_size_log2: None,
                };
                imports.import(cabi::MEMORY_MODULE, cabi::SHADOW_IMPORT, shadow);
                for (i, h) in self.hooks.iter().enumerate() {
                    imports.import(
                        abi::IMPORT_MODULE,
                        h,
                        EntityType::Function(self.types + i as u32),
                    );
                }
                self.imports_done = true;
            }
        }
        impl Reencode for Shape {
            type Error = std::convert::Infallible;
            fn function_index(&mut self, f: u32) -> Result<u32, Error> {
                Ok(if f < self.func_imports {
                    f
                } else {
                    f + self.hooks.len() as u32
                })
            }
            fn parse_type_section(
                &mut self,
                types: &mut wasm_encoder::TypeSection,
                section: wasmparser::TypeSectionReader<'_>,
            ) -> Result<(), Error> {
                utils::parse_type_section(self, types, section)?;
                self.add_types(types);
                Ok(())
            }
            fn parse_import_section(
                &mut self,
                imports: &mut wasm_encoder::ImportSection,
                section: wasmparser::ImportSectionReader<'_>,
            ) -> Result<(), Error> {
                utils::parse_import_section(self, imports, section)?;
                self.add_imports(imports);
                Ok(())
            }
            fn intersperse_section_hook(
                &mut self,
                module: &mut wasm_encoder::Module,
                _after: Option<wasm_encoder::SectionId>,
                before: Option<wasm_encoder::SectionId>,
            ) -> Result<(), Error> {
                use wasm_encoder::SectionId;
                if !self.types_done && before != Some(SectionId::Type) {
                    let mut types = wasm_encoder::TypeSection::new();
                    self.add_types(&mut types);
                    module.section(&types);
                }
                if !self.imports_done
                    && !matches!(before, Some(SectionId::Type | SectionId::Import))
                {
                    let mut imports = wasm_encoder::ImportSection::new();
                    self.add_imports(&mut imports);
                    module.section(&imports);
                }
                Ok(())
            }
            fn parse_memory_section(
                &mut self,
                _memories: &mut wasm_encoder::MemorySection,
                _section: wasmparser::MemorySectionReader<'_>,
            ) -> Result<(), Error> {
                Ok(())
            }
        }
        let mut shape = Shape {
            func_imports: 0,
            types: 0,
            memory_imports: 0,
            memories: Vec::new(),
            hooks: Vec::new(),
            types_done: false,
            imports_done: false,
        };
        for p in Parser::new(0).parse_all(module) {
            match p.unwrap() {
                Payload::TypeSection(r) => {
                    for g in r {
                        shape.types += g.unwrap().types().len() as u32;
                    }
                }
                Payload::ImportSection(r) => {
                    for i in r.into_imports() {
                        match i.unwrap().ty {
                            wasmparser::TypeRef::Func(_) => shape.func_imports += 1,
                            wasmparser::TypeRef::Memory(_) => shape.memory_imports += 1,
                            _ => {}
                        }
                    }
                }
                Payload::MemorySection(r) => {
                    shape.memories.extend(r.into_iter().map(|m| m.unwrap()))
                }
                _ => {}
            }
        }
        let total = shape.memory_imports + shape.memories.len() as u32;
        if total == 0 {
            return Err(InstrumentError::NoMemory);
        }
        shape.hooks.push(cabi::HOOK_REGISTER.into());
        for n in 0..total {
            shape.hooks.push(format!("{}{n}", cabi::HOOK_MEMORY_PREFIX));
        }
        for h in ["flush", "alloc", "realloc", "free", "grow"] {
            shape.hooks.push(h.into());
        }
        let mut out = wasm_encoder::Module::new();
        // A damaged custom section the validator does not read.
        shape
            .parse_core_module(&mut out, Parser::new(0), module)
            .map_err(|e| InstrumentError::Invalid(e.to_string()))?;
        Ok(out.finish())
    }

    /// Instrument the sample component `name` with [`contract_shaped`]
    /// modules; the output validates. The modules' names and whether each
    /// was instrumented.
    fn sample(name: &str) -> Vec<(Vec<String>, String, bool)> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../samples/build/component")
            .join(name);
        let bytes = std::fs::read(&p).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build the samples with samples/build.sh)",
                p.display()
            )
        });
        let opts = Options {
            validate: true,
            ..Default::default()
        };
        let out = instrument_component_with(&bytes, &opts, &|m, _| {
            Ok(Instrumented {
                wasm: contract_shaped(m)?,
                report: Report::default(),
            })
        })
        .unwrap();
        out.modules
            .iter()
            .map(|m| (m.path.clone(), m.display_name(), m.report().is_some()))
            .collect()
    }

    fn row(path: &[&str], name: &str, instrumented: bool) -> (Vec<String>, String, bool) {
        (
            path.iter().map(|s| s.to_string()).collect(),
            name.to_string(),
            instrumented,
        )
    }

    #[test]
    fn a_preview1_program_adapted_by_wit_component() {
        // The main module, the adapter (which imports the main module's
        // memory), and wit-component's shim and fixup (no memory).
        assert_eq!(
            sample("wordcount.wasm"),
            [
                row(&[], "main", true),
                row(&[], "wit-component:adapter:wasi_snapshot_preview1", true),
                row(&[], "wit-component-shim-module", false),
                row(&[], "wit-component-fixup", false),
            ]
        );
    }

    #[test]
    fn a_composition_of_two_components() {
        assert_eq!(
            sample("composed.wasm"),
            [
                row(&["component[0]"], "main", true),
                row(&["component[0]"], "wit-component-shim-module", false),
                row(&["component[0]"], "wit-component-fixup", false),
                row(&["component[1]"], "main", true),
            ]
        );
    }

    /// The wiring runs: wasmtime instantiates the output with the hooks
    /// instance defined by the host, and `register` and `memory:0` hand the
    /// host the shadow memory and memory 0 (18 pages and 1 page, with the
    /// bytes the module wrote in each).
    #[test]
    fn wasmtime_runs_the_wiring_and_the_host_sees_each_memory() {
        use wasmtime::component::{Component, Linker, WasmList};
        const ORIGINAL: &str = r#"
            (component
              (core module $m
                (memory (export "memory") 1)
                (func (export "run") (result i32) i32.const 0))
              (core instance $i (instantiate $m))
              (func (export "run") (result u32) (canon lift (core func $i "run"))))"#;
        let instrumented = format!(
            r#"(module
                 {} {}
                 (import "heapscope:memory" "m0" (memory 1))
                 {}
                 (export "memory" (memory 0))
                 (func (export "run") (result i32) (local $id i32)
                   (i32.store8 0 (i32.const 5) (i32.const 42))
                   (i32.store8 1 (i32.const 9) (i32.const 77))
                   (local.set $id (call 0 (i32.const 3) (i32.const 0) (i32.const {})))
                   (call 1 (local.get $id) (i32.const 0) (i32.const 0) (i32.const 65536))
                   (local.get $id)))"#,
            hook("register"),
            hook("memory:0"),
            shadow(),
            cabi::SHADOW_LEN
        );
        let bytes = wat::parse_str(ORIGINAL).unwrap();
        let opts = Options {
            validate: true,
            ..Default::default()
        };
        let out =
            instrument_component_with(&bytes, &opts, &fake(vec![Some(instrumented)])).unwrap();

        type Seen = Vec<(String, u32, usize, u8)>;
        let engine = wasmtime::Engine::default();
        let component = Component::new(&engine, &out.wasm).unwrap();
        let mut linker = Linker::<Seen>::new(&engine);
        let mut hooks = linker.instance(cabi::HOOKS_INTERFACE).unwrap();
        hooks
            .func_wrap(
                "register",
                |mut cx: wasmtime::StoreContextMut<'_, Seen>,
                 (module, shadow): (u32, WasmList<u8>)| {
                    let b = shadow.as_le_slice(&cx);
                    let row = ("register".to_string(), module, b.len(), b[9]);
                    cx.data_mut().push(row);
                    Ok((11u32,))
                },
            )
            .unwrap();
        hooks
            .func_wrap(
                "memory",
                |mut cx: wasmtime::StoreContextMut<'_, Seen>,
                 (id, index, mem): (u32, u32, WasmList<u8>)| {
                    let b = mem.as_le_slice(&cx);
                    let row = (format!("memory:{index}"), id, b.len(), b[5]);
                    cx.data_mut().push(row);
                    Ok(())
                },
            )
            .unwrap();
        hooks.func_wrap("flush", |_, (_,): (u32,)| Ok(())).unwrap();
        for name in ["alloc", "realloc"] {
            hooks
                .func_wrap(name, |_, _: (u32, i32, i64, i64, i64, i32)| Ok(()))
                .unwrap();
        }
        hooks
            .func_wrap("free", |_, _: (u32, i32, i64, i32)| Ok(()))
            .unwrap();
        hooks
            .func_wrap("grow", |_, _: (u32, i32, i64, i64, i32)| Ok(()))
            .unwrap();
        let mut store = wasmtime::Store::new(&engine, Seen::new());
        let instance = linker.instantiate(&mut store, &component).unwrap();
        let run = instance
            .get_typed_func::<(), (u32,)>(&mut store, "run")
            .unwrap();
        assert_eq!(run.call(&mut store, ()).unwrap(), (11,));
        assert_eq!(
            store.data(),
            &[
                ("register".to_string(), 3, cabi::SHADOW_LEN as usize, 77),
                ("memory:0".to_string(), 11, 65536, 42),
            ]
        );
    }

    #[test]
    fn the_hooks_wit_has_the_contracts_functions() {
        let funcs = hooks_wit_funcs();
        let names: Vec<&str> = funcs.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["register", "memory", "flush", "alloc", "realloc", "free", "grow"]
        );
        assert_eq!(funcs[0].params.len(), 2);
        assert_eq!(funcs[0].params[1].1, WitType::ListU8);
        assert_eq!(
            funcs[0].result,
            Some(WitType::Prim(wasm_encoder::PrimitiveValType::U32))
        );
        assert_eq!(funcs[3].params.len(), 6);
        assert_eq!(funcs[3].result, None);
    }

    #[test]
    fn one_module_gets_the_hooks_and_a_provider() {
        let wat = format!(
            "(component {KEEPER} (core instance $i (instantiate $keeper)) {})",
            lift("$i", "keep")
        );
        let out = run(&wat, vec![Some(keeper_instrumented())]);
        // Imports: the hooks; modules: the provider and the module; core
        // instances: the provider's, the `heapscope` one, the module's.
        assert_eq!(
            shape(&out.wasm),
            (vec![cabi::HOOKS_INTERFACE.to_string()], 2, 3, 0)
        );
        assert_eq!(out.modules.len(), 1);
        let m = &out.modules[0];
        assert_eq!(m.id, 0);
        assert_eq!(m.name.as_deref(), Some("keeper"));
        assert!(m.path.is_empty());
        assert_eq!(m.instances, 1);
        assert_eq!(m.report().unwrap().total_functions, 1000);
        let original = m.original(&wat::parse_str(&wat).unwrap()).to_vec();
        assert!(original.starts_with(b"\0asm\x01\0\0\0"));
        // The instrumented module is in the output byte for byte.
        let fake = wat::parse_str(keeper_instrumented()).unwrap();
        assert!(out.wasm.windows(fake.len()).any(|w| w == &fake[..]));
    }

    #[test]
    fn a_module_instantiated_twice_gets_two_providers() {
        let wat = format!(
            "(component {KEEPER}
               (core instance $a (instantiate $keeper))
               (core instance $b (instantiate $keeper))
               {} {})",
            lift("$a", "keep-a"),
            lift("$b", "keep-b")
        );
        let out = run(&wat, vec![Some(keeper_instrumented())]);
        // One provider module, two provider instances, two `heapscope`
        // instances, the two original instances.
        assert_eq!(
            shape(&out.wasm),
            (vec![cabi::HOOKS_INTERFACE.to_string()], 2, 6, 0)
        );
        assert_eq!(out.modules[0].instances, 2);
    }

    #[test]
    fn a_nested_component_gets_the_hooks_from_its_parent() {
        let wat = format!(
            r#"(component
                 (import "host-thing" (func $ht))
                 (component $inner
                   {KEEPER}
                   (core instance $i (instantiate $keeper))
                   {})
                 (instance $x (instantiate $inner))
                 (alias export $x "keep" (func $k))
                 (export "keep" (func $k)))"#,
            lift("$i", "keep")
        );
        let out = run(&wat, vec![Some(keeper_instrumented())]);
        // The outer component imports the hooks too, to pass them in.
        let (mut imports, modules, instances, components) = shape(&out.wasm);
        imports.sort();
        assert_eq!(imports, ["heapscope:hooks/hooks@1.0.0", "host-thing"]);
        assert_eq!((modules, instances, components), (2, 3, 1));
        assert_eq!(out.modules[0].path, ["inner"]);
        assert_eq!(out.modules[0].name.as_deref(), Some("keeper"));
    }

    #[test]
    fn a_module_without_memory_passes_through() {
        let wat = format!(
            r#"(component
                 (core module $shim (func (export "f")))
                 (core instance $s (instantiate $shim))
                 {KEEPER}
                 (core instance $i (instantiate $keeper))
                 {})"#,
            lift("$i", "keep")
        );
        let out = run(&wat, vec![None, Some(keeper_instrumented())]);
        assert!(matches!(out.modules[0].status, ModuleStatus::NoMemory));
        assert_eq!(out.modules[0].name.as_deref(), Some("shim"));
        assert!(out.modules[1].report().is_some());
        // The shim's two core instances plus the keeper's three.
        assert_eq!(shape(&out.wasm).2, 4);
    }

    #[test]
    fn a_module_that_fails_runs_as_it_is_with_the_reason() {
        let wat = format!(
            "(component {KEEPER} (core instance $i (instantiate $keeper)) {})",
            lift("$i", "keep")
        );
        let bytes = wat::parse_str(&wat).unwrap();
        let out = run(&wat, vec![None]);
        let ModuleStatus::NotInstrumented { reason } = &out.modules[0].status else {
            panic!("{:?}", out.modules[0].status);
        };
        assert_eq!(
            reason,
            "the module uses a WebAssembly feature heapscope cannot rewrite yet: a feature for the test"
        );
        // Nothing was instrumented: the component is unchanged.
        assert_eq!(out.wasm, bytes);
    }

    #[test]
    fn an_imported_memory_is_lowered_from_the_instance_that_exports_it() {
        // The preview-1 adapter's shape: a second module imports the first
        // one's memory and is instrumented with `memory:0` for it.
        let adapter = r#"
            (core module $adapter
              (import "env" "memory" (memory 1))
              (memory 1)
              (func (export "run")))"#;
        let adapter_instrumented = format!(
            r#"(module
                 (import "env" "memory" (memory 1))
                 {} {} {} {}
                 (import "heapscope:memory" "m1" (memory 1))
                 {}
                 (func (export "run")))"#,
            hook("register"),
            hook("memory:0"),
            hook("memory:1"),
            hook("free"),
            shadow()
        );
        let wat = format!(
            r#"(component {KEEPER} {adapter}
                 (core instance $i (instantiate $keeper))
                 (core instance $a (instantiate $adapter (with "env" (instance $i))))
                 {})"#,
            lift("$i", "keep")
        );
        let out = run(
            &wat,
            vec![Some(keeper_instrumented()), Some(adapter_instrumented)],
        );
        assert!(out.modules.iter().all(|m| m.report().is_some()));
        assert_eq!(out.modules[1].name.as_deref(), Some("adapter"));
        // Two providers, two original modules; per instance a provider and
        // a `heapscope` instance.
        assert_eq!(shape(&out.wasm).1, 4);
        assert_eq!(shape(&out.wasm).2, 6);
    }

    #[test]
    fn a_module_instantiated_in_a_nested_component_through_an_outer_alias() {
        // The parent instantiates the module and so gets a provider module
        // first: the child's outer alias to the module must follow it.
        let wat = format!(
            r#"(component
                 {KEEPER}
                 (core instance $p (instantiate $keeper))
                 {}
                 (component $inner
                   (alias outer 1 $keeper (core module $k))
                   (core instance $i (instantiate $k))
                   {})
                 (instance $x (instantiate $inner))
                 (alias export $x "keep" (func $k))
                 (export "keep-inner" (func $k)))"#,
            lift("$p", "keep"),
            lift("$i", "keep")
        );
        let out = run(&wat, vec![Some(keeper_instrumented())]);
        assert_eq!(out.modules.len(), 1);
        assert_eq!(out.modules[0].instances, 2);
        assert!(out.modules[0].path.is_empty());
        // A provider in each scope and the module; in each scope the
        // provider's instance, the `heapscope` one and the module's.
        assert_eq!(shape(&out.wasm).1, 3);
        assert_eq!(shape(&out.wasm).2, 6);
    }

    #[test]
    fn a_module_the_component_exports_is_left_as_it_is() {
        let wat = format!(
            r#"(component
                 {KEEPER}
                 (core instance $i (instantiate $keeper))
                 {}
                 (export "m" (core module $keeper)))"#,
            lift("$i", "keep")
        );
        let bytes = wat::parse_str(&wat).unwrap();
        let out = run(&wat, vec![Some(keeper_instrumented())]);
        let ModuleStatus::NotInstrumented { reason } = &out.modules[0].status else {
            panic!("{:?}", out.modules[0].status);
        };
        assert_eq!(
            reason,
            "the component exports it as a module, so heapscope cannot wire the hooks into its instances"
        );
        assert_eq!(out.wasm, bytes);
    }

    #[test]
    fn damaged_components_give_errors_never_panics() {
        // Every byte of a small component (with a name section) set to
        // three other values: an error or a component, never a panic.
        let wat = format!(
            r#"(component {KEEPER}
                 (core instance $i (instantiate $keeper))
                 (component $inner (core module $n (memory 1)) (core instance (instantiate $n)))
                 (instance (instantiate $inner))
                 {})"#,
            lift("$i", "keep")
        );
        let bytes = wat::parse_str(&wat).unwrap();
        let stand_in = |m: &[u8], _: u32| {
            Ok(Instrumented {
                wasm: contract_shaped(m)?,
                report: Report::default(),
            })
        };
        let opts = Options {
            validate: true,
            ..Default::default()
        };
        let (mut ok, mut errors) = (0, 0);
        for at in 8..bytes.len() {
            for v in [0u8, 0x7f, 0xff] {
                if bytes[at] == v {
                    continue;
                }
                let mut damaged = bytes.clone();
                damaged[at] = v;
                let r = std::panic::catch_unwind(|| {
                    instrument_component_with(&damaged, &opts, &stand_in)
                });
                match r {
                    Ok(Ok(_)) => ok += 1,
                    Ok(Err(e)) => {
                        assert!(
                            !matches!(e, InstrumentError::Internal(_)),
                            "at {at} = {v}: {e}"
                        );
                        errors += 1
                    }
                    Err(_) => panic!("a panic with byte {at} set to {v}"),
                }
            }
        }
        assert!(ok > 0 && errors > 0, "{ok} {errors}");
    }

    #[test]
    fn a_truncated_component_is_a_clear_error() {
        let wat = format!(
            "(component {KEEPER} (core instance $i (instantiate $keeper)) {})",
            lift("$i", "keep")
        );
        let bytes = wat::parse_str(&wat).unwrap();
        // Cut inside the first section, inside the module, inside the last
        // section (a cut between two sections is a smaller valid component).
        for cut in [9, 30, bytes.len() - 1] {
            let e = instrument_component_with(&bytes[..cut], &Options::default(), &fake(vec![]))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("invalid WebAssembly: the component does not validate: "),
                "{e}"
            );
        }
        let core = wat::parse_str("(module)").unwrap();
        let e = instrument_component_with(&core, &Options::default(), &fake(vec![]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a WebAssembly component"), "{e}");
    }

    #[test]
    fn a_component_already_instrumented_is_refused() {
        let wat = format!(
            "(component {KEEPER} (core instance $i (instantiate $keeper)) {})",
            lift("$i", "keep")
        );
        let out = run(&wat, vec![Some(keeper_instrumented())]);
        let e =
            instrument_component_with(&out.wasm, &Options::default(), &fake(vec![])).unwrap_err();
        assert!(matches!(e, InstrumentError::AlreadyInstrumented), "{e}");
    }
}
