// Profile an unmodified web page in headless Chromium and save the session:
//
//   node js/browser.mjs --root DIR --page PAGE.html --original APP.wasm \
//        --module APP.hs.wasm --session OUT.hss [--invoke NAME] [--out OUT.txt]
//
// It serves DIR on localhost, loads PAGE.html in headless Chromium (Debian's
// /usr/bin/chromium, or $CHROMIUM), and
//   * answers every request whose response is APP.wasm's bytes with the
//     instrumented APP.hs.wasm instead, so the page's own glue loads it;
//   * runs the collector (collector/js/heapscope.mjs, with the constants of
//     collector/js/abi.mjs inlined) in the page before any of the
//     page's scripts, wrapping WebAssembly.instantiate and friends;
//   * streams the session to OUT.hss as it goes (the page's collector
//     posts its records to this server about every second and after its
//     calls into the module), and its Workers' beside it
//     (browser-workers.mjs);
//   * waits until the page sets `window.heapscopeDone = true` (or its title
//     to "done"), then ends the session (its end record: the memory the
//     leak scan reads, how it ended), and writes the text of the page's
//     #out element to OUT.txt.
// Then: heapscope run APP.wasm --session OUT.hss
//
// A page that does not say it is done within --timeout MS (120000), or a
// browser or page that dies first, leaves what was streamed until then:
// a session without its end, which heapscope records as partial (every
// event in it; exit 3 from any gate), the reason in OUT.hss.unrecorded.
//
// Exit status: 0 done; 1 the module trapped (the session is whole); 2 an
// error (no session); 3 the page never finished (a partial session).
//
// Chromium is driven by playwright-core (npm, pinned in js/package-lock.json):
// the most used, best kept DevTools-protocol driver, and it needs no browser
// download of its own — it drives the system's Chromium.

import { createServer } from "node:http";
import { readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import {
  appendStream,
  finishWorkers,
  pageInit,
  SESSION_PATH,
  syncWorkers,
  within,
  workerPrelude,
} from "./browser-workers.mjs";
import { EMPTY_SESSION } from "../collector/js/stream.mjs";
import { notesFile, removeOld, unseenFile } from "../collector/js/worker.mjs";

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    if (!k.startsWith("--") || i + 1 >= argv.length) {
      throw new Error(`bad argument ${k}: expected --name VALUE pairs`);
    }
    o[k.slice(2)] = argv[i + 1];
  }
  for (const k of ["root", "page", "original", "module", "session"]) {
    if (!o[k]) throw new Error(`--${k} is required`);
  }
  return o;
}

const TYPES = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".svg": "image/svg+xml",
};

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const root = resolve(o.root);
  const original = await readFile(o.original);
  const instrumented = await readFile(o.module);
  const collector = await pageCollector();
  const invocations = (o.invoke ?? "").split(",").filter(Boolean);
  // The page's collector; every dedicated Worker's gets its own
  // (browser-workers.mjs).
  const init = pageInit(collector, invocations);
  removeOld(o.session);
  const streamed = new Set();
  const notes = [];
  let workers = 0;

  let swapped = 0;
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (req.method === "POST" && path === SESSION_PATH) {
      // A Worker's instance streams its session (browser-workers.mjs).
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const key = appendStream(o.session, req.url, Buffer.concat(chunks));
      if (key) streamed.add(key);
      res.writeHead(204).end();
      return;
    }
    const file = join(root, path);
    if (!file.startsWith(root) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    let body = await readFile(file);
    if (body.equals(original)) {
      body = instrumented;
      swapped++;
    }
    // A dedicated Worker's script: the collector first.
    const dest = req.headers["sec-fetch-dest"];
    // (A module Worker's static imports are fetched as `worker` too, in
    // `cors` mode; its own script in `same-origin` mode, as a classic one.)
    if (dest === "worker" && req.headers["sec-fetch-mode"] !== "cors" && /\.(m?js)$/.test(file)) {
      body = Buffer.concat([Buffer.from(workerPrelude(collector, ++workers, invocations)), body]);
    } else if (dest === "sharedworker") {
      notes.push(
        `a SharedWorker (\`${path}\`) cannot be recorded (heapscope loads its collector into dedicated Workers only): an instance of the module made there is not recorded`,
      );
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(body);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}/${o.page}`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  let code = 0;
  try {
    const page = await browser.newPage();
    page.on("console", (m) => process.stderr.write(`page: ${m.text()}\n`));
    page.on("pageerror", (e) => process.stderr.write(`page error: ${e.message}\n`));
    await page.addInitScript({ content: init });
    await page.goto(url);
    const problem = await page.evaluate(() => window.__heapscope?.problem);
    if (problem) throw new Error(problem);
    const timeout = Number(o.timeout ?? 120000);
    const unfinished = await page
      .waitForFunction(
        () => window.heapscopeDone === true || document.title === "done" || window.__heapscopeTrap,
        null,
        { timeout },
      )
      .then(
        () => null,
        (e) =>
          page.isClosed() || !browser.isConnected()
            ? `the page or the browser closed before the page was done (${firstLine(e.message)})`
            : e.name === "TimeoutError"
              ? `the page did not say it was done (\`window.heapscopeDone = true\`) within ${timeout} ms`
              : `the page was not done: ${firstLine(e.message)}`,
      );
    let trap = null;
    let mine;
    if (unfinished) {
      // What the page and its Workers hold is streamed, without their end;
      // a page or Worker that does not answer (busy in the module, or
      // gone) keeps what it streamed before.
      mine = await within(5000, page.evaluate(() => window.__heapscope.sync())).catch(() => null);
      await syncWorkers(page, 5000);
      notes.push(`${unfinished}: its sessions hold what was streamed until then, without their end`);
      code = 3;
    } else {
      trap = await page.evaluate(() => window.__heapscopeTrap ?? null);
      const end = { trapped: !!trap, code: 0, message: trap ?? "" };
      mine = await page.evaluate((e) => window.__heapscope.finish(e), end);
      await finishWorkers(page, { trapped: false, code: 0, message: "" }, notes);
    }
    // The page's first instance is the session, as ever; an empty session
    // when it made none (its Workers may have).
    if (!streamed.has("0-0")) await writeFile(o.session, EMPTY_SESSION);
    notes.push(...(mine?.notes ?? []));
    // Modules not instrumented that ran on a recorded memory (the page's):
    // the run's warnings (worker.mjs `unseen`).
    const unseen = [...new Set(mine?.unseen ?? [])];
    if (unseen.length) await writeFile(unseenFile(o.session), unseen.map((n) => `${n.replace(/[\r\n]+/g, " ")}\n`).join(""));
    if (notes.length) {
      for (const n of notes) process.stderr.write(`heapscope: warning: ${n}\n`);
      await writeFile(notesFile(o.session), [...new Set(notes)].map((n) => `${n}\n`).join(""));
    }
    if (streamed.size === 0) {
      throw new Error(
        unfinished
          ? `${unfinished}, and no instrumented module was instantiated until then`
          : "the page instantiated no instrumented module",
      );
    }
    if (o.out) {
      const text = await within(
        5000,
        page.evaluate(() => document.getElementById("out")?.textContent ?? ""),
      ).catch(() => "");
      await writeFile(o.out, text);
    }
    if (swapped === 0) {
      process.stderr.write(
        "heapscope: note: no response was the original module; the page loaded an instrumented module itself\n",
      );
    }
    if (trap) code = 1;
  } finally {
    await browser.close().catch(() => {});
    server.close();
  }
  process.exitCode = code;
}

/**
 * The collector as a page or Worker script runs it: the constants of
 * abi.mjs inlined where heapscope.mjs imports them (one line), `export`s
 * removed. The collector's sources are the heapscope-collector crate's
 * (collector/js/).
 */
async function pageCollector() {
  const dir = fileURLToPath(new URL("../collector/js/", import.meta.url));
  const read = (name) => readFile(join(dir, name), "utf8");
  const abi = await read("abi.mjs");
  const importLine = /^import \{[^}\n]*\} from "\.\/abi\.mjs";$/m;
  const main = await read("heapscope.mjs");
  if (!importLine.test(main)) throw new Error("heapscope.mjs does not import abi.mjs on one line");
  const text = main.replace(importLine, abi).replace(/^export /gm, "");
  if (/^import /m.test(text)) throw new Error("heapscope.mjs imports a module a page cannot be given");
  return text;
}

function firstLine(s) {
  return String(s).split("\n")[0];
}

main().catch((e) => {
  process.stderr.write(`heapscope browser: error: ${e.message}\n`);
  process.exit(2);
});
