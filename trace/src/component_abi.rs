//! The hook ABI of a core module inside a WebAssembly component (WASI 0.2).
//!
//! A core module inside a component cannot import host functions directly,
//! and the host cannot read its memories or globals: a component imports and
//! exports only component-level items. So in component mode the instrumenter
//! (`heapscope-instrument`, `Options::component`) changes three things about
//! the core ABI of [`crate::abi`], and the component re-encoder wires the
//! result up:
//!
//! 1. **Hooks through a WIT interface.** The component imports the instance
//!    [`HOOKS_INTERFACE`] (its WIT is [`HOOKS_WIT`]). The re-encoder lowers
//!    each function (`canon lower`) and hands them to the instrumented
//!    module as core module [`crate::abi::IMPORT_MODULE`] (`heapscope`).
//!    Every hook takes a leading `i32` instance id (see the header), so the
//!    host can tell the modules apart; the rest of each hook's parameters
//!    are the core ABI's ([`crate::abi::hook_params`]). Two more imports
//!    pass memory to the host as `list<u8>`, which the host keeps as a
//!    handle and reads later (after a return, a trap, at exit):
//!    [`HOOK_REGISTER`] (lowered with the shadow memory as its canonical
//!    options' memory) and [`HOOK_MEMORY_PREFIX`]`N` (lowered with memory
//!    N). Their core signatures are in [`core_hook_params`].
//! 2. **Memories from a provider.** `canon lower … (memory M)` needs `M`
//!    before the instrumented module is instantiated, so every memory the
//!    module *defines* (and the shadow memory) becomes an import from core
//!    module [`MEMORY_MODULE`], named [`provider_memory_name`]`(N)` (N its
//!    index in the original module, which it keeps) and [`SHADOW_IMPORT`].
//!    The re-encoder adds a provider module per instrumented instance that
//!    defines them with the original limits and exports them under those
//!    names. Memories the module imports stay imported as they were.
//! 3. **State in a header page.** Whatever the host used to read from
//!    exported globals is kept in a header page of the shadow memory, after
//!    the event buffer, at [`HEADER_BASE`]: the buffer's write position,
//!    the instance id, the export call depth, the shadow stack pointer, the
//!    C stack pointer and its low-water mark, and a mirror of every mutable
//!    `i32`/`i64` global (the leak scan's roots). The guest keeps them up to
//!    date; the host only reads them, except that it never writes guest
//!    memory at all: after [`crate::abi::HOOK_FLUSH`] returns, the guest
//!    resets the position to [`crate::abi::EVENT_BASE`] itself.
//!
//! Registration is lazy: before its first event, growth or export call
//! the guest calls
//! `register(module_id, shadow_memory[0..SHADOW_LEN])`, stores the id it
//! gets at [`HEADER_INSTANCE_ID`], then calls `memory:N(id, N, mem_N[0..size])`
//! for each of its memories, defined or imported. After each successful
//! `memory.grow` of memory N it calls `memory:N` again, so the host always
//! holds a list covering the whole memory. The module id is the core
//! module's depth-first index in the component (the re-encoder passes it in
//! `ComponentMode::module_id`); ids the host returns start at 1 (0 in the
//! header means "not registered yet").
//!
//! The provider's shadow memory starts zeroed; the instrumented module
//! carries an active data segment that sets [`HEADER_EVENTS_POS`] to
//! [`crate::abi::EVENT_BASE`] when it is instantiated. A record may be in
//! the buffer before registration (see below); the host reads the buffer
//! from [`crate::abi::EVENT_BASE`] up to the position, then from where it
//! stopped, and from the base again after each `flush` returns.
//!
//! The canonical ABI calls `cabi_realloc` (and the preview-1 adapter's
//! `cabi_import_realloc` and `cabi_export_realloc`) and `cabi_post_*`
//! exports with `may_leave` cleared: a hook called there traps. Their
//! export wrappers tell the rest of the module so: inside them the guest
//! calls no hook. Their events still go into the buffer, whose last
//! [`NO_LEAVE_RESERVE`] bytes only they may fill (a record that does not
//! fit even so is counted in [`HEADER_LOST_EVENTS`]); registration, and a
//! growth they make (`memory:N`, then `grow` with the size before the
//! first such growth and an empty stack), wait for the next event, growth
//! or export call outside them. Since every other export call registers
//! first, a host that calls an export after lowering its arguments holds
//! the buffer with the lowering's events in it.
//!
//! Every exported function increments the depth at [`HEADER_DEPTH`] on entry
//! and decrements it on return; when it was 0 on entry the shadow stack
//! pointer is reset to 0 first (what the core host does before each call).
//! A canonical-ABI `cabi_realloc` entered at depth 0 is the host (or another
//! component) lowering the arguments of an export.

/// The WIT package, interface and version of the hooks, as the component
/// imports it.
pub const HOOKS_INTERFACE: &str = "heapscope:hooks/hooks@1.0.0";

/// The WIT of [`HOOKS_INTERFACE`]. Scalars lower flat with no options;
/// `list<u8>` parameters lower to `(ptr: i32, len: i32)` in the memory the
/// re-encoder names in the lowering's options.
pub const HOOKS_WIT: &str = "package heapscope:hooks@1.0.0;

interface hooks {
    register: func(module: u32, shadow: list<u8>) -> u32;
    memory: func(id: u32, index: u32, bytes: list<u8>);
    flush: func(id: u32);
    alloc: func(id: u32, kind: s32, a: s64, b: s64, c: s64, sp: s32);
    realloc: func(id: u32, kind: s32, a: s64, b: s64, c: s64, sp: s32);
    free: func(id: u32, kind: s32, ptr: s64, sp: s32);
    grow: func(id: u32, kind: s32, delta: s64, result: s64, sp: s32);
}

world instrumented {
    import hooks;
}
";

/// Core import name (module [`crate::abi::IMPORT_MODULE`]) of the
/// registration hook: `(module_id: i32, shadow_ptr: i32, shadow_len: i32)
/// -> i32` (the instance id).
pub const HOOK_REGISTER: &str = "register";
/// Prefix of the core import names of the memory hooks, one per memory of
/// the module: `memory:N`, `(id: i32, index: i32, ptr: i32, len: i32)`,
/// lowered from the WIT function `memory` with memory N as its options'
/// memory.
pub const HOOK_MEMORY_PREFIX: &str = "memory:";
/// The WIT function name behind every [`HOOK_MEMORY_PREFIX`] import.
pub const WIT_MEMORY_FUNC: &str = "memory";

/// Core module name of the memories a provider module supplies.
pub const MEMORY_MODULE: &str = "heapscope:memory";
/// Import (and provider export) name of the shadow memory.
pub const SHADOW_IMPORT: &str = "shadow";

/// Import (and provider export) name of the module's defined memory `index`.
pub fn provider_memory_name(index: u32) -> String {
    format!("m{index}")
}

/// The core parameters of a hook import in component mode, or `None` for a
/// name that is not one. Results: [`HOOK_REGISTER`] returns one `i32`; the
/// others return nothing.
pub fn core_hook_params(name: &str) -> Option<Vec<crate::abi::HookParam>> {
    use crate::abi::HookParam::I32;
    if name == HOOK_REGISTER {
        return Some(vec![I32, I32, I32]);
    }
    if let Some(n) = name.strip_prefix(HOOK_MEMORY_PREFIX) {
        return n.parse::<u32>().ok().map(|_| vec![I32, I32, I32, I32]);
    }
    let core = crate::abi::hook_params(name)?;
    let mut params = Vec::with_capacity(core.len() + 1);
    params.push(I32);
    params.extend_from_slice(core);
    Some(params)
}

/// Byte offset of the header page in the shadow memory: right after the
/// event buffer. In component mode the shadow memory has one more page
/// ([`COMPONENT_SHADOW_PAGES`]).
pub const HEADER_BASE: u32 = crate::abi::EVENT_BASE + crate::abi::EVENT_BYTES;
/// Pages of the shadow memory in component mode: stack, events, header.
pub const COMPONENT_SHADOW_PAGES: u64 = crate::abi::SHADOW_PAGES + crate::abi::EVENT_PAGES + 1;
/// Bytes of the shadow memory passed to [`HOOK_REGISTER`]: all of it.
pub const SHADOW_LEN: u32 = (COMPONENT_SHADOW_PAGES * 65536) as u32;
/// Header: the event buffer's write position (`u32`, a byte offset in the
/// shadow memory, [`crate::abi::EVENT_BASE`] when empty). Authoritative in
/// component mode (the guest keeps no separate global the host could read).
pub const HEADER_EVENTS_POS: u32 = HEADER_BASE;
/// Header: the instance id [`HOOK_REGISTER`] returned (`u32`, 0 before).
pub const HEADER_INSTANCE_ID: u32 = HEADER_BASE + 4;
/// Header: how many exported functions are running (`u32`).
pub const HEADER_DEPTH: u32 = HEADER_BASE + 8;
/// Header: the shadow stack pointer (`u32`, bytes), kept equal to the
/// core ABI's `heapscope:sp` global at every hook call and every export's
/// entry, so a host reading it after a trap gets the trapping stack.
pub const HEADER_SHADOW_SP: u32 = HEADER_BASE + 12;
/// Header: the C stack pointer's value (`u64`; the core ABI's
/// `heapscope:stack_pointer`), written with every write of it.
pub const HEADER_STACK_POINTER: u32 = HEADER_BASE + 16;
/// Header: the lowest value the C stack pointer took (`u64`; the core ABI's
/// `heapscope:stack_low`).
pub const HEADER_STACK_LOW: u32 = HEADER_BASE + 24;
/// Header: `1` when the module has a C stack pointer the fields above
/// describe (`u32`).
pub const HEADER_HAS_STACK_POINTER: u32 = HEADER_BASE + 32;
/// Header: the number of mirrored global slots that follow (`u32`): the
/// module's global count, at most [`MAX_MIRRORED_GLOBALS`].
pub const HEADER_GLOBAL_COUNT: u32 = HEADER_BASE + 36;
/// Header: events the guest could not hand over (`u32`, counted up, never
/// reset): `cabi_realloc` and `cabi_post_*` run with the canonical ABI's
/// `may_leave` cleared, so there the guest may call no hook; it still
/// appends their events to the buffer (whose last [`NO_LEAVE_RESERVE`]
/// bytes are kept for them), and counts here a record that does not fit
/// even so. Growth there is reported (with an empty stack) at the next
/// event or export call instead.
pub const HEADER_LOST_EVENTS: u32 = HEADER_BASE + 40;
/// Bytes at the end of the event buffer only `cabi_realloc` and
/// `cabi_post_*` write into (see [`HEADER_LOST_EVENTS`]): elsewhere the
/// guest flushes when a record would reach into them.
pub const NO_LEAVE_RESERVE: u32 = 4096;
/// Header: the globals' mirror, 8 bytes per global index of the original
/// module (little-endian; an `i32` zero-extended). Mutable `i32`/`i64`
/// globals are written with every `global.set`; immutable ones once, at
/// registration; other types are 0. The C stack pointer's slot (when
/// [`HEADER_HAS_STACK_POINTER`]) is written at registration only: its
/// value is [`HEADER_STACK_POINTER`] (one store less on the guest's
/// hottest global).
pub const HEADER_GLOBALS: u32 = HEADER_BASE + 64;
/// The most globals the header mirrors; a module with more is left
/// uninstrumented in component mode, with the reason.
pub const MAX_MIRRORED_GLOBALS: u32 = (65536 - 64) / 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fits_its_page() {
        assert_eq!(HEADER_BASE, 17 * 65536);
        assert_eq!(SHADOW_LEN, 18 * 65536);
        const { assert!(HEADER_GLOBALS + MAX_MIRRORED_GLOBALS * 8 <= SHADOW_LEN) };
        assert_eq!(core_hook_params("alloc").unwrap().len(), 6);
        assert_eq!(core_hook_params("memory:3").unwrap().len(), 4);
        assert_eq!(core_hook_params("flush").unwrap().len(), 1);
        assert!(core_hook_params("memory:x").is_none());
        assert_eq!(provider_memory_name(2), "m2");
    }
}
