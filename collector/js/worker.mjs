// Workers under Node: heapscope's collector in every `worker_threads`
// Worker, and the file each instance of the module writes its session to.
//
// Every instance the app makes of the instrumented module, on the main
// thread or in a Worker, is recorded in a session of its own:
//
//   SESSION          the main thread's first instance (as with one instance)
//   SESSION.T-K      instance K (from 0) of thread T (`threadId`; 0: main)
//   SESSION.unrecorded  one line per case the collector could not record
//
// and `heapscope run MODULE --session SESSION` records them as one run
// (heapscope's `collector/src/sessions.rs` says how they are kept apart).
//
// Node gives a Worker its parent's `--import` unless the app passes its
// own `execArgv` (then none), and never to a Worker made from code
// (`eval: true`). `loadIntoWorkers` wraps `worker_threads.Worker` so that
// every Worker made from a file or URL loads the collector; a Worker made
// from code cannot, and the run says so (`SESSION.unrecorded`: the run is
// then partial, exit 3), never silently half.

import wt from "node:worker_threads";
import { syncBuiltinESMExports } from "node:module";
import { appendFileSync, readdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";

const PATCHED = Symbol.for("heapscope.worker");

/** How long `terminate()` waits for a Worker to finish its sessions. */
const FINISH_WAIT_MS = 5000;

/** The channel a Worker is told to finish its sessions on. */
const finishChannel = (threadId) => `heapscope:finish:${threadId}`;

/**
 * In a Worker: run `finish` when the Worker is about to be terminated
 * (`worker.terminate()` ends a thread without its `exit` event, so its
 * sessions would have no end), then say so. The channel does not keep the
 * Worker alive.
 */
export function finishOnTerminate(finish) {
  if (wt.isMainThread) return;
  const channel = new BroadcastChannel(finishChannel(wt.threadId));
  channel.unref();
  channel.onmessage = (e) => {
    if (e.data !== "finish") return;
    try {
      finish();
    } finally {
      channel.postMessage("finished");
    }
  };
}

/**
 * Ask Worker `threadId` to finish its sessions; resolves once it has, or
 * when it cannot (it ended, or is busy for FINISH_WAIT_MS: its sessions
 * then keep what was streamed, without their end).
 */
function askToFinish(worker) {
  return new Promise((resolve) => {
    const channel = new BroadcastChannel(finishChannel(worker.threadId));
    const done = () => {
      clearTimeout(timer);
      worker.off("exit", done);
      channel.close();
      resolve();
    };
    const timer = setTimeout(done, FINISH_WAIT_MS);
    channel.onmessage = (e) => e.data === "finished" && done();
    worker.once("exit", done);
    channel.postMessage("finish");
  });
}

/** Whether this is the main thread. */
export const isMainThread = wt.isMainThread;

/** How many sessions of instances other than the main thread's first exist for `out`. */
export function workerInstances(out) {
  const prefix = `${basename(out)}.`;
  try {
    return readdirSync(dirname(out)).filter(
      (f) => f.startsWith(prefix) && /^\d+-\d+$/.test(f.slice(prefix.length)),
    ).length;
  } catch {
    return 0;
  }
}

/** The session file of this thread's instance number `k`. */
export function instanceFile(out, k) {
  return wt.threadId === 0 && k === 0 ? out : `${out}.${wt.threadId}-${k}`;
}

/** Where the cases the collector could not record are listed. */
export function notesFile(out) {
  return `${out}.unrecorded`;
}

/** Say, for heapscope, that `why` could not be recorded. */
export function unrecorded(out, why) {
  const where = wt.isMainThread ? "" : ` (worker thread ${wt.threadId})`;
  process.stderr.write(`heapscope: warning: ${why}${where}\n`);
  try {
    appendFileSync(notesFile(out), `${why.replace(/[\r\n]+/g, " ")}${where}\n`);
  } catch {
    // The session's folder is gone: heapscope reports the run as it can.
  }
}

/** Where what ran beside the module, not recorded, is listed (warnings). */
export function unseenFile(out) {
  return `${out}.unseen`;
}

/** Say, for heapscope, that `why` ran beside the module unrecorded. */
export function unseen(out, why) {
  const where = wt.isMainThread ? "" : ` (worker thread ${wt.threadId})`;
  try {
    appendFileSync(unseenFile(out), `${why.replace(/[\r\n]+/g, " ")}${where}\n`);
  } catch {
    // The session's folder is gone: heapscope reports the run as it can.
  }
}

/**
 * Remove an earlier run's files for `out` (its instances and notes), so
 * that they are not taken for this run's. Only the main thread does, once,
 * before the app runs.
 */
export function removeOld(out) {
  if (!wt.isMainThread) return;
  rmSync(out, { force: true });
  rmSync(notesFile(out), { force: true });
  rmSync(unseenFile(out), { force: true });
  const prefix = `${basename(out)}.`;
  let names = [];
  try {
    names = readdirSync(dirname(out));
  } catch {
    return;
  }
  for (const f of names) {
    if (f.startsWith(prefix) && /^\d+-\d+$/.test(f.slice(prefix.length))) {
      rmSync(join(dirname(out), f), { force: true });
    }
  }
}

/**
 * Make every `worker_threads` Worker the app creates (from now on, on this
 * thread) load `register` (this collector's entry point, a URL) first,
 * with the environment it needs; a Worker made from code is named in the
 * notes instead.
 */
export function loadIntoWorkers(register, out) {
  const Original = wt.Worker;
  if (Original[PATCHED]) return;
  const heapscopeEnv = () =>
    Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("HEAPSCOPE_")));
  class Worker extends Original {
    constructor(filename, options) {
      if (options?.eval) {
        unrecorded(
          out,
          "a worker_threads Worker made from code (eval: true) cannot load heapscope's collector (Node gives it no --import): an instance of the module made there is not recorded",
        );
        super(filename, options);
        this[PATCHED] = "no collector";
        return;
      }
      const argv = options?.execArgv ?? process.execArgv;
      const has = argv.some(
        (a, i) => (a === "--import" && argv[i + 1] === register) || a === `--import=${register}`,
      );
      const next = { ...options };
      if (!has) next.execArgv = [...argv, "--import", register];
      // A Worker given its own environment still gets heapscope's.
      if (options?.env && typeof options.env === "object") {
        next.env = { ...options.env, ...heapscopeEnv() };
      }
      super(filename, next);
    }

    // The Worker finishes its sessions before it is stopped.
    terminate(...args) {
      if (this.threadId < 0 || this[PATCHED]) return super.terminate(...args);
      return askToFinish(this).then(() => super.terminate(...args));
    }
  }
  Object.defineProperty(Worker, "name", { value: "Worker" });
  Object.defineProperty(Worker, PATCHED, { value: true });
  wt.Worker = Worker;
  // `import { Worker } from "node:worker_threads"` sees it too.
  syncBuiltinESMExports();
}
