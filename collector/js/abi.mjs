// Generated from heapscope's Rust constants (heapscope_trace::abi and
// heapscope_trace::session) by collector/src/js_abi.rs: do not edit.
// A test fails when this file is stale; `BLESS=1 cargo test -p
// heapscope-collector --lib js_abi` writes it again.

/**
 * The hook ABI version this collector speaks (`trace::abi::ABI_VERSION`).
 * An instrumented module carries the version it was made for as the
 * first byte of its `heapscope.sites` custom section.
 */
export const ABI_VERSION = 1;

/** The hook ABI's names and event record layout (`trace::abi`). */
export const ABI = Object.freeze({
  IMPORT_MODULE: "heapscope",
  SHADOW_MEMORY_EXPORT: "heapscope:shadow",
  SHADOW_SP_EXPORT: "heapscope:sp",
  EVENTS_EXPORT: "heapscope:events",
  EVENTS_CAP_EXPORT: "heapscope:events_cap",
  GLOBAL_EXPORT_PREFIX: "heapscope:global:",
  MEMORY_EXPORT_PREFIX: "heapscope:memory:",
  STACK_POINTER_EXPORT: "heapscope:stack_pointer",
  SITE_TABLE_SECTION: "heapscope.sites",
  SHADOW_PAGES: 16,
  EVENT_BASE: 1048576,
  EVENT_BYTES: 65536,
  EVENT_HEADER: 32,
  EVENT_TAG_SHIFT: 24,
  EVENT_KIND_MASK: 0xffffff,
  EVENT_A_OFFSET: 4,
  EVENT_B_OFFSET: 12,
  EVENT_C_OFFSET: 20,
  EVENT_STACK_LEN_OFFSET: 28,
  EVENT_ALLOC: 0,
  EVENT_FREE: 1,
  EVENT_REALLOC: 2,
  EVENT_REALLOC_CHECK: 3,
});

/** The session format (`trace::session`): its start, limits and codes. */
export const SESSION = Object.freeze({
  MAGIC: [0x48, 0x53, 0x4a, 0x53],
  VERSION: 1,
  MAX_HANDED: 1048576,
  MAX_TRAP_FRAMES: 1000,
  OUTCOME_OK: 0,
  OUTCOME_PLUGIN_ERROR: 1,
  OUTCOME_THREW: 2,
  STATUS_EXITED: 0,
  STATUS_TRAPPED: 1,
});

/** The session format's record tags (`trace::session`). */
export const TAG = Object.freeze({
  EVENTS: 1,
  GROW: 2,
  INVALID: 3,
  INVOCATION_START: 4,
  INVOCATION_END: 5,
  MEMORY: 6,
  END: 7,
  TRAP_FRAMES: 8,
  HANDED: 9,
  INITIAL: 10,
});
