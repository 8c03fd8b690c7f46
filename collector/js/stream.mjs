// Node: a session streamed to its file as it goes, and the app's SIGINT and
// SIGTERM, for register.mjs.
//
// The file is opened when the collector starts and holds a session from
// then on: the empty session first, then the session's records as they
// accumulate (Session.stream: whole records only, once more than 1 MiB is
// buffered, at every invocation's end, whenever JavaScript is back in its
// event loop after calling the module, and at a signal). Its end record is
// written only at a normal finish, so a process killed by SIGKILL, or any
// signal, leaves a session without its end, which heapscope reads as
// partial (every event in it recorded, exit 3 from any gate).
//
// SIGINT and SIGTERM: the collector writes what it holds, then, unless the
// app listens for that signal itself (its handling is then left as it is),
// removes its listener and raises the signal again, so the process dies by
// it as it would have. A listener runs between calls into the module, as
// all JavaScript does: a signal that arrives during a long call takes
// effect when the call returns (a second Ctrl-C to `heapscope run` kills
// Node; the file then keeps what was written before).

import { closeSync, openSync, writeSync } from "node:fs";
import { SESSION } from "./abi.mjs";

/** An empty session: magic and version (`trace/src/session.rs`). */
export const EMPTY_SESSION = new Uint8Array([...SESSION.MAGIC, SESSION.VERSION]);

/**
 * The session file `path`, created now holding an empty session (a process
 * killed before the module is instantiated leaves a session heapscope
 * reads as such). `follow(session)` streams a session into it from its
 * first byte; `close()` ends it.
 */
export function sessionFile(path) {
  const fd = openSync(path, "w");
  writeSync(fd, EMPTY_SESSION, 0, EMPTY_SESSION.length, 0);
  let at = 0; // the session's next byte; its start overwrites the empty one
  let followed = null;
  return {
    follow(session) {
      if (followed) return;
      followed = session;
      session.stream((bytes) => {
        let done = 0;
        while (done < bytes.length) {
          done += writeSync(fd, bytes, done, bytes.length - done, at + done);
        }
        at += bytes.length;
      });
    },
    close() {
      closeSync(fd);
    },
  };
}

/**
 * On SIGINT and SIGTERM: `sync()` (write what is buffered), then let the
 * signal end the process as it would have without the collector, unless
 * the app listens for it itself.
 */
export function onSignals(sync) {
  for (const signal of ["SIGINT", "SIGTERM"]) {
    const listener = () => {
      try {
        sync();
      } finally {
        if (process.listenerCount(signal) === 1) {
          process.removeListener(signal, listener);
          process.kill(process.pid, signal);
        }
      }
    };
    process.on(signal, listener);
  }
}
