// Imported first by every corpus app: notes each WebAssembly memory the
// app's glue instantiates or creates (exported by an instance, or given to
// one as an import) with its size then, so that the app can print its
// final size at the end (`printMemories()`): the module's real growth,
// which the test compares with the growth heapscope recorded.
// emscripten's glue gives its module an environment (getenv) holding the
// script's path (`_`, process.argv[1]) and the locale (`LANG`, from
// navigator.language), which programs copy into their heap: fixed here, so
// that the corpus's numbers do not follow the checkout's path or locale.
if (typeof process !== "undefined" && process.argv?.length > 1) {
  process.argv[1] = "/app/corpus-app.mjs";
}
try {
  if (globalThis.navigator) {
    Object.defineProperty(globalThis.navigator, "language", { value: "en-US", configurable: true });
  }
} catch {
  // A navigator whose language cannot be set keeps its own.
}

const seen = [];
const note = (m) => {
  if (m instanceof WebAssembly.Memory && !seen.some((s) => s.memory === m)) {
    seen.push({ memory: m, initial: m.buffer.byteLength });
  }
};
// Only the instance's exports are read: an import object may be a proxy
// whose reads have effects (emscripten's GOT), so memories given as imports
// are seen where the glue creates them (`new WebAssembly.Memory`).
const noteInstance = (instance) => {
  // Node's own wasm (undici's llhttp, loaded when a glue touches `fetch`)
  // is not the app's.
  if (new Error().stack.includes("node:internal/deps/")) return instance;
  // heapscope's own exports (`heapscope:shadow`, `heapscope:memory:N`) are
  // not the app's.
  for (const [k, v] of Object.entries(instance.exports)) if (!k.startsWith("heapscope:")) note(v);
  return instance;
};

const W = WebAssembly;
const { instantiate, instantiateStreaming, Instance } = W;
W.instantiate = async function (source, imports) {
  const r = await instantiate.call(W, source, imports);
  noteInstance(r instanceof W.Instance ? r : r.instance);
  return r;
};
if (instantiateStreaming) {
  W.instantiateStreaming = async function (source, imports) {
    const r = await instantiateStreaming.call(W, source, imports);
    noteInstance(r.instance);
    return r;
  };
}
W.Instance = new Proxy(Instance, {
  construct(target, args, newTarget) {
    return noteInstance(Reflect.construct(target, args, newTarget));
  },
});
W.Memory = new Proxy(W.Memory, {
  construct(target, args, newTarget) {
    const m = Reflect.construct(target, args, newTarget);
    if (!new Error().stack.includes("node:internal/deps/")) note(m);
    return m;
  },
});

/// Print `memory N: initial BYTES final BYTES` for each memory seen, in
/// the order the glue made them.
export function printMemories(out = console.log) {
  seen.forEach((s, i) => out(`memory ${i}: initial ${s.initial} final ${s.memory.buffer.byteLength}`));
}
