// Dedicated Workers in headless Chromium, for js/browser.mjs: the collector
// in every Worker the page starts from a script the server serves, and each
// instance's session written as Node's are (collector/js/worker.mjs):
//
//   SESSION          the page's first instance (or an empty session when
//                    the page made none)
//   SESSION.0-K      the page's instance K (from 1)
//   SESSION.T-K      instance K of Worker T (numbered in the order their
//                    scripts are served, from 1)
//   SESSION.unrecorded  one line per case that could not be recorded
//
// How: the server answers a request for a dedicated Worker's script
// (`Sec-Fetch-Dest: worker`) with the collector's install prepended (the
// collector is plain JavaScript; an IIFE runs as well in a classic as in a
// module Worker). Each instance the Worker makes streams its session to
// the server as it goes (Session.stream: synchronous POSTs to
// /__heapscope/session on the page's own origin, which the server appends
// to the instance's file), so a Worker that ends or is terminated before
// the page is done leaves its events, in a session without its end
// (partial, exit 3). When the page is done, every live Worker's sessions
// are finished through the DevTools protocol (Playwright's
// `page.workers()`), their last records streamed the same way.
//
// The page's own instances stream their sessions the same way (thread 0),
// from their first byte, about every second and once JavaScript is back
// in its event loop after calling the module; their end is written only
// when the page says it is done. A page that never says so, or a browser
// that dies, leaves what was streamed: sessions without their end.
//
// Not recorded, and said so (SESSION.unrecorded, the run exits 3): a
// SharedWorker, a Worker made from a blob: or data: URL (no request the
// server can answer); heapscope itself says so of a module whose memory is
// shared (a threaded build) made into more than one instance.

import { appendFileSync } from "node:fs";

/** Where an instance (the page's or a Worker's) streams its session. */
export const SESSION_PATH = "/__heapscope/session";

/**
 * `post(index, bytes)`, streaming thread `thread`'s instance `index` to
 * the server: a synchronous POST, so that the server gets the records in
 * the order they were made, and each before the call that follows it.
 */
const post = (thread) => `(index, bytes) => {
  const x = new XMLHttpRequest();
  x.open("POST", "${SESSION_PATH}?thread=${thread}&index=" + index, false);
  x.send(bytes.slice());
}`;

/**
 * `onSession(s)` of an install whose instances are streamed by `post`
 * (from their first byte; about every second between calls too), kept in
 * `sessions`.
 */
const STREAMED = `(sessions, post) => (s) => {
  const index = sessions.length;
  sessions.push(s);
  s.stream((bytes) => post(index, bytes));
  setInterval(() => s.sync(), 1000);
}`;

/**
 * The page's part: `Worker` and `SharedWorker` wrapped so that what cannot
 * be recorded is noted; every instance streamed (thread 0);
 * `window.__heapscope.sync()` and `.finish(end)` for the driver.
 * `collector` is heapscope.mjs with its `export`s removed.
 */
export function pageInit(collector, invocations) {
  return `(() => {
${collector}
const sessions = [];
const notes = [];
const unseen = [];
const problem = missingFeature();
install({ onSession: (${STREAMED})(sessions, ${post(0)}), onUnseen: (why) => unseen.push(why), onUnrecorded: (why) => notes.push(why), options: { invocations: ${JSON.stringify(invocations)} } });
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
window.__heapscope = {
  problem,
  count: () => sessions.length,
  // What is buffered, to the server now (the page is not done).
  sync: () => { for (const s of sessions) s.sync(); return { sessions: sessions.length, notes: [...notes], unseen: [...unseen] }; },
  // Each instance's end, streamed as the rest was.
  finish: (end) => { for (const s of sessions) s.finish(end); return { sessions: sessions.length, notes: [...notes], unseen: [...unseen] }; },
};
window.addEventListener("error", (e) => { if (e.error instanceof WebAssembly.RuntimeError) window.__heapscopeTrap = String(e.error); });
window.addEventListener("unhandledrejection", (e) => { if (e.reason instanceof WebAssembly.RuntimeError) window.__heapscopeTrap = String(e.reason); });
})();`;
}

/** The install prepended to dedicated Worker number `thread`'s script. */
export function workerPrelude(collector, thread, invocations) {
  return `(() => {
if (self.__heapscope) return; // installed once per Worker
${collector}
const sessions = [];
const notes = [];
install({
  onSession: (${STREAMED})(sessions, ${post(thread)}),
  onUnrecorded: (why) => notes.push(why),
  options: { invocations: ${JSON.stringify(invocations)} },
});
// Before each message the app gets, what the last one did is streamed: an
// answer to a later message means the earlier events are on the server.
self.addEventListener("message", () => { for (const s of sessions) s.sync(); });
let trap = null;
self.addEventListener("error", (e) => { if (e.error instanceof WebAssembly.RuntimeError) trap = String(e.error); });
self.addEventListener("unhandledrejection", (e) => { if (e.reason instanceof WebAssembly.RuntimeError) trap = String(e.reason); });
self.__heapscope = {
  sync: () => { for (const s of sessions) s.sync(); return { sessions: sessions.length }; },
  finish: (end) => {
    const e = trap && !end.trapped ? { ...end, trapped: true, message: trap } : end;
    for (const s of sessions) s.finish(e);
    return { sessions: sessions.length, notes: [...notes] };
  },
};
})();
`;
}

/** `?thread=T&index=K` of a POST (thread 0: the page), or null. */
export function instanceOf(url) {
  const q = new URL(url, "http://x").searchParams;
  const n = (v) => (/^\d{1,6}$/.test(v ?? "") ? Number(v) : null);
  const thread = n(q.get("thread"));
  const index = n(q.get("index"));
  return thread !== null && index !== null ? { thread, index } : null;
}

/** The file of instance `key` (`T-K`): the page's first is SESSION itself. */
export function instanceFile(session, key) {
  return key === "0-0" ? session : `${session}.${key}`;
}

/**
 * The server's side of a stream: append `body` to the session file of the
 * instance the POST's URL names; returns its key, or null.
 */
export function appendStream(session, url, body) {
  const i = instanceOf(url);
  if (!i) return null;
  const key = `${i.thread}-${i.index}`;
  appendFileSync(instanceFile(session, key), body);
  return key;
}

/**
 * Stream what every live Worker holds now, without their end (the page
 * was not done); each evaluation bounded by `ms`. A Worker that does not
 * answer keeps what it streamed before.
 */
export async function syncWorkers(page, ms) {
  for (const w of page.workers()) {
    await within(ms, w.evaluate(() => self.__heapscope?.sync() ?? null)).catch(() => null);
  }
}

/** `promise`, or a rejection once `ms` have passed. */
export function within(ms, promise) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Finish every live Worker's sessions (their last records are streamed to
 * the server as the rest were). A Worker that has ended keeps what it
 * streamed: a session without its end. Returns how many were finished;
 * what their sessions could not record is added to `notes`.
 */
export async function finishWorkers(page, end, notes = []) {
  let finished = 0;
  for (const w of page.workers()) {
    try {
      const got = await w.evaluate((e) => self.__heapscope?.finish(e) ?? null, end);
      finished += got?.sessions ?? 0;
      // What its sessions could not record (the run is then partial).
      notes.push(...(got?.notes ?? []));
    } catch (e) {
      // It ended meanwhile: what it streamed is kept, without its end.
      process.stderr.write(
        `heapscope: warning: a Worker ended before its sessions were finished (${w.url()}): ${e.message}\n`,
      );
    }
  }
  return finished;
}
