// Dedicated Workers in headless Chromium, for js/browser.mjs: the collector
// in every Worker the page starts from a script the server serves, and each
// instance's session written as Node's are (js/worker.mjs):
//
//   SESSION          the page's first instance
//   SESSION.0-K      the page's instance K (from 1)
//   SESSION.T-K      instance K of Worker T (numbered in the order their
//                    scripts are served, from 1)
//   SESSION.unrecorded  one line per case that could not be recorded
//
// How: the server answers a request for a dedicated Worker's script
// (`Sec-Fetch-Dest: worker`) with the collector's install prepended (the
// collector is plain JavaScript; an IIFE runs as well in a classic as in a
// module Worker); each instance the Worker makes tells the server (a
// synchronous POST to /__heapscope/instance on the page's own origin), so
// an instance whose Worker has ended before the page is done is still
// known: its session is then written without its end (partial, exit 3).
// When the page is done, every live Worker's sessions are collected through
// the DevTools protocol (Playwright's `page.workers()`), as the page's are.
//
// Not recorded, and said so (SESSION.unrecorded, the run exits 3): a
// SharedWorker, a Worker made from a blob: or data: URL (no request the
// server can answer); heapscope itself says so of a module whose memory is
// shared (a threaded build) made into more than one instance.

import { writeFileSync } from "node:fs";

/** Where a Worker's instance says it exists. */
export const INSTANCE_PATH = "/__heapscope/instance";

/** Bytes as base64, in a page or Worker (the text is inlined there). */
const TO_BASE64 = `(bytes) => {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}`;

/**
 * What `finish(end)` of the page's or a Worker's `__heapscope` returns:
 * every instance's session as base64, and the notes.
 */
const FINISH = `(sessions, notes) => (end) => ({
  sessions: sessions.map((s) => (${TO_BASE64})(s.finish(end))),
  notes: [...notes],
})`;

/**
 * The page's part: `Worker` and `SharedWorker` wrapped so that what cannot
 * be recorded is noted; `window.__heapscope.finish` from `pageFinish`.
 * `collector` is heapscope.mjs with its `export`s removed.
 */
export function pageInit(collector, invocations) {
  return `(() => {
${collector}
const sessions = [];
const notes = [];
const problem = missingFeature();
install({ onSession: (s) => sessions.push(s), options: { invocations: ${JSON.stringify(invocations)} } });
const W = globalThis.Worker;
if (W) {
  globalThis.Worker = class Worker extends W {
    constructor(url, options) {
      const u = String(url);
      if (/^(blob|data):/i.test(u)) {
        notes.push("a Worker made from a " + u.split(":")[0].toLowerCase() + ": URL cannot load heapscope's collector: an instance of the module made there is not recorded");
      }
      super(url, options);
    }
  };
}
const S = globalThis.SharedWorker;
if (S) {
  globalThis.SharedWorker = class SharedWorker extends S {
    constructor(url, options) {
      notes.push("a SharedWorker cannot be recorded (heapscope loads its collector into dedicated Workers only): an instance of the module made there is not recorded");
      super(url, options);
    }
  };
}
window.__heapscope = { problem, count: () => sessions.length, finish: (${FINISH})(sessions, notes) };
window.addEventListener("error", (e) => { if (e.error instanceof WebAssembly.RuntimeError) window.__heapscopeTrap = String(e.error); });
window.addEventListener("unhandledrejection", (e) => { if (e.reason instanceof WebAssembly.RuntimeError) window.__heapscopeTrap = String(e.reason); });
})();`;
}

/** The install prepended to dedicated Worker number `thread`'s script. */
export function workerPrelude(collector, thread, invocations) {
  return `(() => {
${collector}
const sessions = [];
install({
  onSession: (s) => {
    const index = sessions.length;
    sessions.push(s);
    try {
      const x = new XMLHttpRequest();
      x.open("POST", "${INSTANCE_PATH}?thread=${thread}&index=" + index, false);
      x.send();
    } catch {}
  },
  options: { invocations: ${JSON.stringify(invocations)} },
});
let trap = null;
self.addEventListener("error", (e) => { if (e.error instanceof WebAssembly.RuntimeError) trap = String(e.error); });
self.addEventListener("unhandledrejection", (e) => { if (e.reason instanceof WebAssembly.RuntimeError) trap = String(e.reason); });
const finish = (${FINISH})(sessions, []);
self.__heapscope = {
  thread: ${thread},
  finish: (end) => finish(trap && !end.trapped ? { ...end, trapped: true, message: trap } : end),
};
})();
`;
}

/** `?thread=T&index=K` of an instance's POST, or null. */
export function instanceOf(url) {
  const q = new URL(url, "http://x").searchParams;
  const n = (v) => (/^\d{1,6}$/.test(v ?? "") ? Number(v) : null);
  const thread = n(q.get("thread"));
  const index = n(q.get("index"));
  return thread !== null && thread > 0 && index !== null ? { thread, index } : null;
}

/**
 * Write every live Worker's sessions next to `session`, and an empty one
 * (no end record: partial) for each instance a Worker said it made whose
 * session could not be collected (its Worker had ended). Returns the notes
 * and how many sessions were written.
 */
export async function collectWorkers(page, session, announced, end) {
  const written = new Set();
  const notes = [];
  for (const w of page.workers()) {
    let got = null;
    try {
      got = await w.evaluate(
        (e) => (self.__heapscope ? { thread: self.__heapscope.thread, ...self.__heapscope.finish(e) } : null),
        end,
      );
    } catch (e) {
      // It ended meanwhile: its announced instances are written partial.
      process.stderr.write(`heapscope: warning: a Worker's sessions could not be collected (${w.url()}): ${e.message}\n`);
      continue;
    }
    if (!got) continue;
    notes.push(...got.notes);
    got.sessions.forEach((b64, index) => {
      const key = `${got.thread}-${index}`;
      writeFileSync(`${session}.${key}`, Buffer.from(b64, "base64"));
      written.add(key);
    });
  }
  for (const key of announced) {
    if (written.has(key)) continue;
    writeFileSync(`${session}.${key}`, new Uint8Array([0x48, 0x53, 0x4a, 0x53, 1]));
    written.add(key);
  }
  return { notes, written: written.size };
}
