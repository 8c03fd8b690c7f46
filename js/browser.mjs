// Profile an unmodified web page in headless Chromium and save the session:
//
//   node js/browser.mjs --root DIR --page PAGE.html --original APP.wasm \
//        --module APP.hs.wasm --session OUT.hss [--invoke NAME] [--out OUT.txt]
//
// It serves DIR on localhost, loads PAGE.html in headless Chromium (Debian's
// /usr/bin/chromium, or $CHROMIUM), and
//   * answers every request whose response is APP.wasm's bytes with the
//     instrumented APP.hs.wasm instead, so the page's own glue loads it;
//   * runs the collector (heapscope.mjs) in the page before any of the
//     page's scripts, wrapping WebAssembly.instantiate and friends;
//   * waits until the page sets `window.heapscopeDone = true` (or its title
//     to "done"), then ends the session and writes it to OUT.hss, and the
//     text of the page's #out element to OUT.txt.
// Then: heapscope run APP.wasm --session OUT.hss
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
  workerPrelude,
} from "./browser-workers.mjs";
import { notesFile, removeOld } from "./worker.mjs";

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
  const here = fileURLToPath(new URL(".", import.meta.url));
  const collector = (await readFile(join(here, "heapscope.mjs"), "utf8")).replace(
    /^export /gm,
    "",
  );
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
    await page.waitForFunction(
      () => window.heapscopeDone === true || document.title === "done" || window.__heapscopeTrap,
      null,
      { timeout: Number(o.timeout ?? 120000) },
    );
    const trap = await page.evaluate(() => window.__heapscopeTrap ?? null);
    const end = { trapped: !!trap, code: 0, message: trap ?? "" };
    const mine = await page.evaluate((e) => window.__heapscope.finish(e), end);
    // The page's instances: its first is the session, as ever; an empty
    // session when it made none (its Workers may have).
    await writeFile(
      o.session,
      mine.sessions.length
        ? Buffer.from(mine.sessions[0], "base64")
        : new Uint8Array([0x48, 0x53, 0x4a, 0x53, 1]),
    );
    for (let k = 1; k < mine.sessions.length; k++) {
      await writeFile(`${o.session}.0-${k}`, Buffer.from(mine.sessions[k], "base64"));
    }
    await finishWorkers(page, { trapped: false, code: 0, message: "" });
    notes.push(...mine.notes);
    if (notes.length) {
      for (const n of notes) process.stderr.write(`heapscope: warning: ${n}\n`);
      await writeFile(notesFile(o.session), [...new Set(notes)].map((n) => `${n}\n`).join(""));
    }
    if (mine.sessions.length + streamed.size === 0) {
      throw new Error("the page instantiated no instrumented module");
    }
    if (o.out) {
      const text = await page.evaluate(() => document.getElementById("out")?.textContent ?? "");
      await writeFile(o.out, text);
    }
    if (swapped === 0) {
      process.stderr.write(
        "heapscope: note: no response was the original module; the page loaded an instrumented module itself\n",
      );
    }
    if (trap) code = 1;
  } finally {
    await browser.close();
    server.close();
  }
  process.exitCode = code;
}

main().catch((e) => {
  process.stderr.write(`heapscope browser: error: ${e.message}\n`);
  process.exit(2);
});
