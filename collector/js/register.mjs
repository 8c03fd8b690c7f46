// Profile an unmodified Node app: load this before the app,
//
//   HEAPSCOPE_SESSION=app.hss node --import ./js/register.mjs app.mjs
//
// and every instrumented module the app instantiates (through its own glue:
// emscripten's, wasm-bindgen's, @extism/extism, node:wasi) is recorded; the
// session is written as it goes and ended when the process exits (a process
// killed before leaves a partial session: stream.mjs), for
// `heapscope run app.wasm --session app.hss`. `heapscope run app.wasm --node
// app.mjs` does all of it in one command.
//
// Environment:
//   HEAPSCOPE_SESSION   where to write the session (required)
//   HEAPSCOPE_MODULE    an instrumented module to use in place of the
//                       original whenever the app compiles the original's
//                       bytes (HEAPSCOPE_ORIGINAL), so the app's own files
//                       stay untouched
//   HEAPSCOPE_ORIGINAL  the original module's path
//   HEAPSCOPE_INVOKE    comma-separated exports whose calls from JavaScript
//                       are invocations (an Extism plugin's function)
//   HEAPSCOPE_EXTISM    set: an invocation's non-zero i32 result is the
//                       plugin's error, as Extism reads it

import { readFileSync, writeFileSync } from "node:fs";
import { install, missingFeature } from "./heapscope.mjs";
import { onSignals, sessionFile } from "./stream.mjs";
import {
  instanceFile,
  isMainThread,
  finishOnTerminate,
  loadIntoWorkers,
  removeOld,
  unrecorded,
  unseen,
  workerInstances,
} from "./worker.mjs";

const out = process.env.HEAPSCOPE_SESSION;
if (!out) {
  process.stderr.write(
    "heapscope: HEAPSCOPE_SESSION is not set: nothing is recorded (set it to the session file to write)\n",
  );
} else {
  const problem = missingFeature();
  if (problem) {
    // Under `heapscope run --node`, heapscope says why, once: it is given
    // the engine's name here (HEAPSCOPE_REFUSAL_FILE).
    const refusal = process.env.HEAPSCOPE_REFUSAL_FILE;
    if (refusal) {
      writeFileSync(refusal, `Node ${process.version} (V8 ${process.versions.v8})`);
    } else {
      process.stderr.write(`heapscope: error: ${problem}\n`);
    }
    process.exit(70);
  }
  // Every instance, on this thread and in every Worker, writes its own
  // session (worker.mjs).
  removeOld(out);
  loadIntoWorkers(import.meta.url, out);
  // The main session's file holds a session from now on, streamed to as it
  // goes (stream.mjs): a process killed at any point leaves one.
  const mainFile = isMainThread ? sessionFile(out) : null;
  let substitute = () => null;
  if (process.env.HEAPSCOPE_MODULE && process.env.HEAPSCOPE_ORIGINAL) {
    const original = readFileSync(process.env.HEAPSCOPE_ORIGINAL);
    const instrumented = readFileSync(process.env.HEAPSCOPE_MODULE);
    substitute = (bytes) =>
      bytes.length === original.length && Buffer.compare(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), original) === 0
        ? instrumented
        : null;
  }
  const invocations = (process.env.HEAPSCOPE_INVOKE ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const sessions = [];
  install({
    substitute,
    onUnseen: (why) => unseen(out, why),
    onUnrecorded: (why) => unrecorded(out, why),
    options: { invocations, extism: !!process.env.HEAPSCOPE_EXTISM },
    onSession: (s) => {
      s.file = instanceFile(out, sessions.length);
      sessions.push(s);
      // An instance's file exists from the start and is streamed to as the
      // session goes (stream.mjs): one whose thread or process is killed
      // is a session without its end, never a missing one.
      s.streamFile = s.file === out && mainFile ? mainFile : sessionFile(s.file);
      s.streamFile.follow(s);
    },
  });
  // A trap's stack as deep as wasmtime's (V8 keeps 10 frames by default).
  if (Error.stackTraceLimit < 1000) Error.stackTraceLimit = 1000;
  let trap = null;
  process.on("uncaughtExceptionMonitor", (err) => {
    if (err instanceof WebAssembly.RuntimeError) trap = err;
  });
  let ended = false;
  const finishAll = (code) => {
    if (ended) return;
    ended = true;
    const end = {
      trapped: !!trap,
      code,
      message: trap ? `wasm trap: ${trap.message}` : "",
      stack: trap?.stack,
    };
    // Each instance's session in its own file (worker.mjs).
    // (A shared memory's instances are judged by heapscope, which sees
    // them all: sessions.rs.)
    for (const s of sessions) {
      if (s.file !== out) {
        s.finish(end);
        s.streamFile.close();
      }
    }
    const s = sessions[0];
    // A Worker writes no main session.
    if (s ? s.file !== out : !isMainThread) return;
    if (!s && !workerInstances(out)) {
      process.stderr.write(
        "heapscope: warning: the app instantiated no instrumented module: the session is empty\n",
      );
    }
    // The session's last records and its end (stream.mjs wrote the rest).
    s?.finish(end);
    mainFile?.close();
  };
  process.on("exit", finishAll);
  // A Worker stopped by `worker.terminate()` gets no `exit` event: it
  // finishes its sessions when asked, just before (worker.mjs).
  finishOnTerminate(() => finishAll(undefined));
  // Ctrl-C and SIGTERM: what is buffered is written, then the signal ends
  // the process as it would have (stream.mjs).
  if (isMainThread) onSignals(() => sessions.forEach((s) => s.sync()));
}
