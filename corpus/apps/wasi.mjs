// Run a WASI command under Node's own WASI (stdin, stdout and stderr are
// the process's), then print memory 0's size at start and at exit on
// stderr, so that stdout stays the command's own (compared with the
// reference wasmtime CLI's): `node wasi.mjs MODULE.wasm [ARGS...]`.
import { printMemories } from "./memory.mjs";
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import { basename } from "node:path";

const [path, ...args] = process.argv.slice(2);
if (!path) {
  console.error("usage: node wasi.mjs MODULE.wasm [ARGS...]");
  process.exit(2);
}
const wasi = new WASI({ version: "preview1", args: [basename(path), ...args], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(path));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
const code = wasi.start(instance);
printMemories(console.error);
process.exitCode = code;
