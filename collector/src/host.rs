//! The host side of the hooks: the wasmtime engine a run uses, the state a
//! store carries ([`Host`]), the `heapscope.*` host functions, and draining
//! the module's event buffer to the recorder.

use crate::deferred::Deferred;
use crate::recorder::Recorder;
use heapscope_trace::abi::{self, EventRecord, SiteTable};
use heapscope_trace::StackId;
use wasmtime::{
    AsContextMut, Caller, Config, Engine, Global, Linker, Memory, Module, ResourceLimiter, Store,
    Val,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::WasiCtxBuilder;

/// The state of a run's store.
pub(crate) struct Host {
    pub wasi: WasiP1Ctx,
    /// The recorder, fed off this thread (see [`crate::deferred`]).
    pub rec: Deferred,
    pub shadow: Option<Memory>,
    /// The event buffer's write position (see `trace::abi`, "The event
    /// buffer").
    pub events: Option<Global>,
    pub limiter: Limiter,
    /// Stacks by host-side stack walk (the benchmark reference) instead of
    /// the shadow stack: interned by their (function, offset) frames.
    pub backtraces: Option<rustc_hash::FxHashMap<Vec<u64>, StackId>>,
    /// Extism's memory and state, for plugins.
    pub kernel: Option<crate::extism::Kernel>,
    /// Snapshots during the run (`crate::snapshots`); `None` without hooks.
    pub snapshots: Option<Box<crate::snapshots::State>>,
    /// The core instances of a component that registered with the
    /// component hooks ([`crate::component_hooks`]); `None` for a core
    /// module's run.
    pub components: Option<Box<crate::component_hooks::ComponentHeaps>>,
}

impl crate::extism::HasKernel for Host {
    fn kernel(&mut self) -> Option<&mut crate::extism::Kernel> {
        self.kernel.as_mut()
    }
}

/// Refuses growth beyond the run's memory limit and remembers the refusal.
/// heapscope's own shadow memory is not the guest's: the limit never
/// applies to it.
pub(crate) struct Limiter {
    pub limit: Option<u64>,
    /// (current, desired) bytes of the growth that was refused.
    pub hit: Option<(usize, usize)>,
    /// While the module is instantiated, how many of its memories were
    /// created so far (wasmtime asks the limiter for each, in order).
    pub creating: Option<usize>,
    /// The shadow memory's position among the module's own memories.
    pub shadow: Option<usize>,
    /// A component run's core modules take their shadow memories from
    /// heapscope's provider modules: while instantiating, a memory created
    /// with exactly their size and maximum
    /// (`component_abi::SHADOW_LEN`) is heapscope's, not the program's.
    /// (A program memory of exactly that fixed size, 18 pages, is exempt
    /// too: a limit cannot tell the two apart by position in a component.)
    pub component_shadows: bool,
}

impl Limiter {
    /// No limit.
    pub fn new(limit: Option<u64>, shadow: Option<usize>) -> Limiter {
        Limiter {
            limit,
            hit: None,
            creating: Some(0),
            shadow,
            component_shadows: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if let Some(k) = self.creating.as_mut() {
            let index = *k;
            *k += 1;
            if Some(index) == self.shadow {
                return Ok(true);
            }
            let shadow = heapscope_trace::component_abi::SHADOW_LEN as usize;
            if self.component_shadows
                && current == 0
                && desired == shadow
                && maximum == Some(shadow)
            {
                return Ok(true);
            }
        }
        match self.limit {
            Some(l) if desired as u64 > l => {
                self.hit = Some((current, desired));
                Err(wasmtime::Error::msg(limit_message(
                    current as u64,
                    desired as u64,
                    l,
                )))
            }
            _ => Ok(true),
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// Why the memory limit refused a growth, in binary units, with the
/// exact size asked for (and the limit's, where the units show the two
/// alike).
fn limit_message(current: u64, desired: u64, limit: u64) -> String {
    use heapscope_trace::units::{bytes_human, thousands};
    let (want, cap) = (bytes_human(desired), bytes_human(limit));
    let cap = if want == cap {
        format!("{cap} ({} bytes)", thousands(limit))
    } else {
        cap
    };
    format!(
        "memory limit exceeded: growing a memory from {} to {want} ({} bytes) is over the limit of {cap}",
        bytes_human(current),
        thousands(desired),
    )
}

/// The wasm stack budget of a run, in bytes.
pub const WASM_STACK: usize = 2 << 20;

/// The native stack of the thread a guest runs on: the wasm stack budget
/// and room for the host's own frames (hooks, wasmtime's trampolines).
pub const NATIVE_STACK: usize = WASM_STACK + (8 << 20);

/// The engine settings of every run, and of the check that the hooks are
/// all defined: one builder, so the check cannot drift from the run.
/// `interruptible` turns on epoch interruption (a timeout, Ctrl-C), `fuel`
/// fuel metering.
pub fn engine(interruptible: bool, fuel: bool) -> wasmtime::Result<Engine> {
    engine_with(interruptible, fuel, false)
}

/// `engine`, compiling with Winch (wasmtime's baseline compiler) when
/// `winch` is set.
pub fn engine_with(interruptible: bool, fuel: bool, winch: bool) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    // A trap's whole stack, up to a bound (wasmtime keeps 20 frames).
    config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(
        crate::exit::TRAP_BACKTRACE_FRAMES,
    ));
    if winch {
        config.strategy(wasmtime::Strategy::Winch);
    }
    config
        .wasm_multi_memory(true)
        .wasm_memory64(true)
        .wasm_exceptions(true)
        .wasm_tail_call(true)
        // What the reference `wasmtime run` accepts by default: atomics
        // (shared memories stay refused at instantiation, as there) and
        // 128-bit arithmetic.
        .wasm_threads(true)
        .shared_memory(false)
        .wasm_wide_arithmetic(true)
        // Four times wasmtime's default 512 KiB: the instrumented code's
        // frames (the shadow-stack prologue's locals) and this engine's own
        // frames are larger than the reference CLI's, which reached twice
        // this engine's recursion depth on 512 KiB, and 1 MiB fell a few
        // levels short. With 2 MiB, instrumented code recurses at least as
        // deep as `wasmtime run` runs the original (tests/engine.rs). The
        // guest runs on a thread with a native stack that holds it
        // (`NATIVE_STACK`).
        .max_wasm_stack(WASM_STACK);
    if winch {
        // What Winch does not compile (a module that uses them is refused
        // with wasmtime's message naming the feature).
        config.wasm_tail_call(false).wasm_exceptions(false);
    }
    config.epoch_interruption(interruptible);
    config.consume_fuel(fuel);
    Engine::new(&config)
}

/// A host with no guest, no limits and no trace.
pub(crate) fn idle_host() -> Host {
    Host {
        wasi: WasiCtxBuilder::new().build_p1(),
        rec: Deferred::new(Recorder::new(SiteTable::default(), None).expect("no trace to open")),
        shadow: None,
        events: None,
        limiter: Limiter::new(None, None),
        backtraces: None,
        kernel: None,
        snapshots: None,
        components: None,
    }
}

/// The `heapscope` imports of the instrumented module `wasm` that this
/// collector's linker does not define (empty when it defines them all).
pub fn missing_hooks(wasm: &[u8]) -> Result<Vec<String>, String> {
    let engine = engine(false, false).map_err(|e| format!("{e:#}"))?;
    let module = Module::new(&engine, wasm).map_err(|e| format!("{e:#}"))?;
    let mut linker: Linker<Host> = Linker::new(&engine);
    define_hooks(&mut linker).map_err(|e| format!("{e:#}"))?;
    crate::snapshots::define(&mut linker, true).map_err(|e| format!("{e:#}"))?;
    let mut store = Store::new(&engine, idle_host());
    Ok(module
        .imports()
        .filter(|i| i.module() == abi::IMPORT_MODULE)
        .filter(|i| linker.get_by_import(&mut store, i).is_none())
        .map(|i| i.name().to_string())
        .collect())
}

/// Define every hook of [`abi::ALL_HOOKS`] in `linker`, with the parameters
/// [`abi::hook_params`] gives (a test compares them).
pub(crate) fn define_hooks(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    // `alloc` and `realloc` take the same arguments: kind, a, b, c, sp.
    fn three(
        tag: u32,
    ) -> impl Fn(Caller<'_, Host>, i32, i64, i64, i64, i32) + Send + Sync + 'static {
        move |mut caller, kind, a, b, c, sp| {
            drain_caller(&mut caller);
            let ev = EventRecord::new(tag, kind, a as u64, b as u64, c as u64);
            hook_event(&mut caller, ev, sp);
        }
    }
    linker.func_wrap(abi::IMPORT_MODULE, abi::HOOK_ALLOC, three(abi::EVENT_ALLOC))?;
    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::HOOK_REALLOC,
        three(abi::EVENT_REALLOC),
    )?;
    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::HOOK_FREE,
        |mut caller: Caller<'_, Host>, kind: i32, ptr: i64, sp: i32| {
            drain_caller(&mut caller);
            if ptr == 0 {
                return;
            }
            let ev = EventRecord::new(abi::EVENT_FREE, kind, ptr as u64, 0, 0);
            hook_event(&mut caller, ev, sp);
        },
    )?;
    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::HOOK_GROW,
        |mut caller: Caller<'_, Host>, memory: i32, delta: i64, result: i64, sp: i32| {
            drain_caller(&mut caller);
            let (stack, host) = stack_of(&mut caller, sp);
            let old = (result >= 0).then_some(result as u64);
            let mut rec = host.rec.sync();
            match stack {
                Some(stack) => rec.grow(memory as u32, delta as u64, old, stack),
                None => rec.invalid_event(),
            }
        },
    )?;
    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::HOOK_FLUSH,
        |mut caller: Caller<'_, Host>| drain_caller(&mut caller),
    )?;
    Ok(())
}

/// The stack of the event a hook reports: from the shadow stack, or, in
/// `StackMode::Backtrace`, from wasmtime's stack walk.
#[inline]
/// `None` when the hook's shadow-stack pointer is forged.
fn stack_of<'a>(caller: &'a mut Caller<'_, Host>, sp: i32) -> (Option<StackId>, &'a mut Host) {
    if caller.data().backtraces.is_some() {
        let bt = wasmtime::WasmBacktrace::capture(&*caller);
        let key: Vec<u64> = bt
            .frames()
            .iter()
            .map(|f| (u64::from(f.func_index()) << 32) | f.func_offset().unwrap_or(0) as u64)
            .collect();
        let host = caller.data_mut();
        let map = host.backtraces.as_mut().expect("checked");
        if let Some(&id) = map.get(&key) {
            return (Some(id), host);
        }
        // A stack not seen before: its frames and nodes go to the trace
        // (each distinct walk once), so its events name stacks the trace
        // defines.
        let frames: Vec<(String, u32, u32)> = bt
            .frames()
            .iter()
            .map(|f| {
                (
                    f.func_name().map_or_else(
                        || format!("wasm-function[{}]", f.func_index()),
                        heapscope_instrument::discover::demangle,
                    ),
                    f.func_index(),
                    f.func_offset().unwrap_or(0) as u32,
                )
            })
            .collect();
        let id = host.rec.sync().backtrace_stack(&frames);
        host.backtraces.as_mut().expect("checked").insert(key, id);
        return (Some(id), host);
    }
    let (raw, host) = shadow_stack(caller, sp);
    let id = raw.map(|raw| host.rec.sync().stack(raw));
    (id, host)
}

/// An allocator hook's event: buffered with its raw shadow stack, or, with
/// host-side stack walks (the benchmark reference), recorded here.
#[inline]
fn hook_event(caller: &mut Caller<'_, Host>, ev: EventRecord, sp: i32) {
    if caller.data().backtraces.is_some() {
        let (stack, host) = stack_of(caller, sp);
        let mut rec = host.rec.sync();
        match stack {
            Some(stack) => rec.event(ev, stack),
            None => rec.invalid_event(),
        }
        return;
    }
    match shadow_stack(caller, sp) {
        (Some(raw), host) => host.rec.event(ev, raw),
        (None, host) => host.rec.sync().invalid_event(),
    }
}

/// Find the shadow memory and the event buffer's position through the
/// caller's exports, the first time (hooks can fire while the module is
/// being instantiated, before the run sets them).
fn find_exports(caller: &mut Caller<'_, Host>) {
    if caller.data().shadow.is_none() {
        let m = caller
            .get_export(abi::SHADOW_MEMORY_EXPORT)
            .and_then(|e| e.into_memory());
        caller.data_mut().shadow = m;
    }
    if caller.data().events.is_none() {
        let events = caller
            .get_export(abi::EVENTS_EXPORT)
            .and_then(|e| e.into_global());
        caller.data_mut().events = events;
    }
}

/// The shadow stack `shadow[0..sp]`; `None` when `sp` is not a word offset
/// inside the shadow stack's region (below the event buffer): no
/// instrumented module passes such a pointer, a guest forging hook calls
/// does.
fn shadow_stack<'a>(caller: &'a mut Caller<'_, Host>, sp: i32) -> (Option<&'a [u8]>, &'a mut Host) {
    find_exports(caller);
    match caller.data().shadow {
        Some(mem) => {
            let (bytes, host) = mem.data_and_store_mut(caller);
            let raw = u32::try_from(sp)
                .ok()
                .filter(|&sp| sp % 4 == 0 && sp <= abi::EVENT_BASE)
                .and_then(|sp| bytes.get(..sp as usize));
            (raw, host)
        }
        None => (Some(&[]), caller.data_mut()),
    }
}

/// Empty the event buffer from inside a hook.
fn drain_caller(caller: &mut Caller<'_, Host>) {
    find_exports(caller);
    drain(caller);
}

/// Move the module's buffered events (see `trace::abi`, "The event
/// buffer") to the recorder, in order, and empty the buffer. Records are
/// read up to the write position only, which the module moves after a
/// record is complete.
pub(crate) fn drain(mut cx: impl AsContextMut<Data = Host>) {
    let mut cx = cx.as_context_mut();
    let (Some(memory), Some(events)) = (cx.data().shadow, cx.data().events) else {
        return;
    };
    let Some(end) = events.get(&mut cx).i32() else {
        return;
    };
    let base = abi::EVENT_BASE as usize;
    let end = end as u32 as usize;
    if end <= base {
        return;
    }
    let (bytes, host) = memory.data_and_store_mut(&mut cx);
    host.rec.records(bytes.get(base..end).unwrap_or_default());
    let _ = events.set(&mut cx, Val::I32(abi::EVENT_BASE as i32));
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::HookParam;

    /// The linker's hook types are the ABI's, for every hook.
    #[test]
    fn hooks_are_defined_with_the_abi_signatures() {
        let engine = engine(false, false).unwrap();
        let mut linker: Linker<Host> = Linker::new(&engine);
        define_hooks(&mut linker).unwrap();
        let mut store = Store::new(&engine, idle_host());
        for name in abi::ALL_HOOKS {
            let f = linker
                .get(&mut store, abi::IMPORT_MODULE, name)
                .ok()
                .and_then(|e| e.into_func())
                .unwrap_or_else(|| panic!("`{name}` is not defined"));
            let ty = f.ty(&store);
            let params: Vec<HookParam> = ty
                .params()
                .map(|p| match p {
                    wasmtime::ValType::I32 => HookParam::I32,
                    wasmtime::ValType::I64 => HookParam::I64,
                    other => panic!("`{name}` takes a {other}"),
                })
                .collect();
            assert_eq!(params, abi::hook_params(name).unwrap(), "{name}");
            assert_eq!(ty.results().len(), 0, "{name}");
        }
    }

    #[test]
    fn the_memory_limit_is_said_in_units_with_the_exact_size_once() {
        assert_eq!(
            limit_message(1 << 20, 17 << 20, 16 << 20),
            "memory limit exceeded: growing a memory from 1.0 MiB to 17.0 MiB (17,825,792 bytes) is over the limit of 16.0 MiB"
        );
        // A limit the units cannot tell from the size asked for.
        assert_eq!(
            limit_message(65536, 131072, 131000),
            "memory limit exceeded: growing a memory from 64.0 KiB to 128.0 KiB (131,072 bytes) is over the limit of 127.9 KiB"
        );
        assert_eq!(
            limit_message(0, 131072, 131060),
            "memory limit exceeded: growing a memory from 0 B to 128.0 KiB (131,072 bytes) is over the limit of 128.0 KiB (131,060 bytes)"
        );
    }
}
