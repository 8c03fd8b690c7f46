//! Heap graphs taken while the module runs: after chosen invocations
//! (`--snapshot-at invocation:N`, `--snapshot-every N`), when the guest
//! asks for one (the `heapscope.snapshot` import), and after the first
//! Extism call that trapped. Each is a [`HeapGraph`] of memory as it is
//! then, written to the trace as `Record::HeapGraph` with its label
//! (`invocation:1000`, `guest:LABEL`, `trap`); the graph at exit is the
//! leak scan's.
//!
//! A guest asks for a snapshot by importing
//! `(import "heapscope" "snapshot" (func (param i32 i32)))` and calling it
//! with a label's address and length in memory 0 (UTF-8, at most
//! [`MAX_LABEL`] bytes). A label out of bounds, too long or not UTF-8 takes
//! no snapshot and counts as an invalid hook call. A run without hooks
//! (`--plain`) defines the import as doing nothing, so the module still
//! links.

use crate::exit::{ScanLayout, Snapshot};
use crate::host::Host;
use heapscope_trace::abi;
use heapscope_trace::format::MemoryInfo;
use heapscope_trace::graph::RootInfo;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{AsContextMut, Caller, Instance, Linker, StoreContextMut};

/// The import a guest calls to ask for a snapshot (in
/// [`abi::IMPORT_MODULE`]).
pub const GUEST_IMPORT: &str = "snapshot";
/// The longest label a guest may give, in bytes.
pub const MAX_LABEL: usize = 256;
/// The most snapshots a guest may ask for in one run: a guest calling the
/// import in a loop does not fill the disk; later calls take none (the
/// run's log says how many were left out).
pub const MAX_GUEST_SNAPSHOTS: u64 = 1000;

/// When to take heap graphs during a run of invocations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotPlan {
    /// After these invocations complete (counted from 1), ascending.
    pub at: Vec<u64>,
    /// After every N-th invocation.
    pub every: Option<u64>,
}

impl SnapshotPlan {
    /// Parse `--snapshot-at`: comma-separated `invocation:N`, N from 1.
    pub fn parse_at(spec: &str) -> Result<Vec<u64>, String> {
        let mut at = Vec::new();
        for part in spec.split(',') {
            let part = part.trim();
            let n = part
                .strip_prefix("invocation:")
                .ok_or_else(|| {
                    format!(
                        "`{part}` is not a snapshot point: use invocation:N (N invocations completed), e.g. --snapshot-at invocation:1000,invocation:4000"
                    )
                })?;
            let n: u64 = n.parse().map_err(|_| {
                format!("`{part}`: `{n}` is not a number of invocations (a whole number from 1)")
            })?;
            if n == 0 {
                return Err(format!(
                    "`{part}`: invocations are counted from 1 (invocation:1 is after the first one completes)"
                ));
            }
            at.push(n);
        }
        at.sort_unstable();
        at.dedup();
        Ok(at)
    }

    /// Whether it asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty() && self.every.is_none()
    }

    /// Whether a snapshot is due once `completed` invocations have
    /// completed.
    pub fn wants(&self, completed: u64) -> bool {
        completed > 0
            && (self.at.binary_search(&completed).is_ok()
                || self
                    .every
                    .is_some_and(|n| n > 0 && completed.is_multiple_of(n)))
    }

    /// The snapshots it asks for that a run of `planned` invocations never
    /// reaches (`invocation:N` with N above `planned`), for an error.
    pub fn beyond(&self, planned: u64) -> Vec<u64> {
        self.at.iter().copied().filter(|&n| n > planned).collect()
    }
}

/// What a run needs to take snapshots, kept in its store's [`Host`] so the
/// guest's import reaches it too.
pub(crate) struct State {
    plan: SnapshotPlan,
    /// The module as given: its variables are the graph's named roots
    /// (read the first time a snapshot is taken).
    wasm: Arc<Vec<u8>>,
    roots: Option<Vec<RootInfo>>,
    data_end: Option<u64>,
    memories: Vec<MemoryInfo>,
    /// The instance, once instantiated, and its C stack pointer then.
    pub instance: Option<Instance>,
    pub sp_init: Option<u64>,
    /// Snapshots taken, the guest's among them, and the guest's left out.
    pub taken: u64,
    guest: u64,
    guest_dropped: u64,
    trap_taken: bool,
    /// What the last snapshot kept of its blocks, when the module's writes
    /// are tracked ([`crate::rescan`]).
    kept: Option<crate::rescan::Kept>,
    /// Time spent taking them.
    pub spent: Duration,
}

impl State {
    /// The state of a run of `wasm` (the module as given) with these
    /// memories.
    pub fn new(plan: SnapshotPlan, wasm: Arc<Vec<u8>>, memories: Vec<MemoryInfo>) -> State {
        State {
            plan,
            wasm,
            roots: None,
            data_end: None,
            memories,
            instance: None,
            sp_init: None,
            taken: 0,
            guest: 0,
            guest_dropped: 0,
            trap_taken: false,
            kept: None,
            spent: Duration::ZERO,
        }
    }
}

/// After an invocation completed (its events recorded): the snapshot the
/// plan asks for then, labelled `invocation:N`, and after the first call
/// that trapped (`trapped`, an Extism run that goes on), one labelled
/// `trap`.
pub(crate) fn after_invocation(mut cx: StoreContextMut<'_, Host>, completed: u64, trapped: bool) {
    let Some(state) = cx.data().snapshots.as_ref() else {
        return;
    };
    let planned = state.plan.wants(completed);
    let trap = trapped && !state.trap_taken;
    if planned {
        take(&mut cx, &format!("invocation:{completed}"), Some(completed));
    }
    if trap {
        if let Some(s) = cx.data_mut().snapshots.as_mut() {
            s.trap_taken = true;
        }
        take(&mut cx, "trap", Some(completed));
    }
}

/// Take the graph of memory as it is now and write it to the trace.
fn take(cx: &mut StoreContextMut<'_, Host>, label: &str, invocation: Option<u64>) {
    let started = Instant::now();
    crate::host::drain(&mut *cx);
    let Some(instance) = cx.data().snapshots.as_ref().and_then(|s| s.instance) else {
        return;
    };
    let mem_name = format!("{}0", abi::MEMORY_EXPORT_PREFIX);
    let Some(memory) = instance.get_memory(&mut *cx, &mem_name) else {
        return;
    };
    let len = memory.data_size(&*cx);
    let dirty = crate::rescan::take_dirty(&mut *cx, instance, len);
    let (globals, sp_now, sp_low, _) = crate::exit::scan_globals(&mut *cx, instance);
    let others = crate::exit::other_memories(&mut *cx, instance);
    let (bytes, host) = memory.data_and_store_mut(&mut *cx);
    let Some(state) = host.snapshots.as_mut() else {
        return;
    };
    let data_end = *state
        .data_end
        .get_or_insert_with(|| crate::module::data_end(&state.wasm));
    if state.roots.is_none() {
        state.roots = Some(crate::variables::static_variables(&state.wasm));
    }
    let layout = ScanLayout {
        sp_init: state.sp_init,
        data_end,
        memories: &state.memories,
    };
    let snap = Snapshot {
        memory: bytes,
        globals,
        handed: Vec::new(),
        sp_now,
        sp_low,
        other_memories: others,
        instance: None,
    };
    let mut rec = host.rec.sync();
    let roots = state.roots.as_deref().unwrap_or_default();
    // With the module's writes tracked, the blocks unchanged since the
    // previous snapshot are not read again.
    let (graph, counts) = match &dirty {
        Some(dirty) => {
            let prev = state.kept.take();
            match crate::heapgraph::heap_graph_incremental(
                &rec,
                &snap,
                &layout,
                roots,
                label,
                invocation,
                prev.as_ref(),
                dirty,
            ) {
                Some((g, kept, counts)) => {
                    state.kept = Some(kept);
                    (Some(g), Some(counts))
                }
                None => (None, None),
            }
        }
        None => (
            crate::heapgraph::heap_graph(&rec, &snap, &layout, roots, label, invocation),
            None,
        ),
    };
    let blocks = graph.map(|g| {
        let n = g.blocks.len();
        rec.write_record(&heapscope_trace::format::Record::HeapGraph(g));
        n
    });
    state.taken += 1;
    state.spent += started.elapsed();
    let reused = counts.map_or(String::new(), |c| {
        format!(
            " ({} unchanged since the previous snapshot, {} read)",
            c.kept, c.read
        )
    });
    match blocks {
        Some(n) => tracing::info!(
            "snapshot {label}: {n} live blocks in {} ms{reused}",
            started.elapsed().as_millis()
        ),
        None => tracing::warn!("snapshot {label}: not taken (the graph could not be built)"),
    }
}

/// Define the guest's `heapscope.snapshot` import: a snapshot in a run
/// with hooks (`hooks`), nothing in one without (`--plain`, a module that
/// is not instrumented).
pub(crate) fn define(linker: &mut Linker<Host>, hooks: bool) -> wasmtime::Result<()> {
    if !hooks {
        linker.func_wrap(
            abi::IMPORT_MODULE,
            GUEST_IMPORT,
            |_: Caller<'_, Host>, _: i32, _: i32| {},
        )?;
        return Ok(());
    }
    linker.func_wrap(
        abi::IMPORT_MODULE,
        GUEST_IMPORT,
        |mut caller: Caller<'_, Host>, ptr: i32, len: i32| {
            let label = guest_label(&mut caller, ptr, len);
            let mut cx = caller.as_context_mut();
            let Some(label) = label else {
                crate::host::drain(&mut cx);
                cx.data_mut().rec.sync().invalid_event();
                return;
            };
            let Some(state) = cx.data_mut().snapshots.as_mut() else {
                return;
            };
            if state.guest >= MAX_GUEST_SNAPSHOTS {
                state.guest_dropped += 1;
                if state.guest_dropped == 1 {
                    tracing::warn!(
                        "the guest asked for more than {MAX_GUEST_SNAPSHOTS} snapshots: later ones are not taken"
                    );
                }
                return;
            }
            state.guest += 1;
            take(&mut cx, &format!("guest:{label}"), None);
        },
    )?;
    Ok(())
}

/// The label a guest passed: `len` bytes at `ptr` in memory 0, UTF-8, at
/// most [`MAX_LABEL`] bytes; `None` for anything else.
fn guest_label(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Option<String> {
    let (ptr, len) = (ptr as u32 as usize, usize::try_from(len).ok()?);
    if len > MAX_LABEL {
        return None;
    }
    let name = format!("{}0", abi::MEMORY_EXPORT_PREFIX);
    let memory = caller
        .get_export(&name)
        .or_else(|| caller.get_export("memory"))?
        .into_memory()?;
    let bytes = memory.data(&*caller).get(ptr..ptr.checked_add(len)?)?;
    String::from_utf8(bytes.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_points_parse_and_bad_ones_say_why() {
        assert_eq!(
            SnapshotPlan::parse_at("invocation:4000,invocation:1000").unwrap(),
            [1000, 4000]
        );
        let e = SnapshotPlan::parse_at("exit").unwrap_err();
        assert!(e.contains("use invocation:N"), "{e}");
        let e = SnapshotPlan::parse_at("invocation:x").unwrap_err();
        assert!(e.contains("not a number"), "{e}");
        let e = SnapshotPlan::parse_at("invocation:0").unwrap_err();
        assert!(e.contains("counted from 1"), "{e}");
        let e = SnapshotPlan::parse_at("").unwrap_err();
        assert!(e.contains("not a snapshot point"), "{e}");
        let p = SnapshotPlan {
            at: vec![3, 10],
            every: Some(4),
        };
        let due: Vec<u64> = (0..=12).filter(|&n| p.wants(n)).collect();
        assert_eq!(due, [3, 4, 8, 10, 12]);
        assert_eq!(p.beyond(9), [10]);
    }
}
