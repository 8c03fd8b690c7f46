// resvg-workload.mjs's drawing through resvg-wasm's own glue, unmodified,
// inside a module Worker (resvg-worker.html starts it): posts the PNG's
// size and hash, as resvg.html shows them.
import { render } from "./resvg-workload.mjs";

self.onmessage = async (e) => {
  const pkg = e.data.pkg;
  const { initWasm, Resvg } = await import(`${pkg}/index.mjs`);
  await initWasm(fetch(`${pkg}/index_bg.wasm`));
  const png = render(Resvg);
  const digest = await crypto.subtle.digest("SHA-256", png);
  const hash = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  self.postMessage(`png ${png.length} bytes sha256 ${hash}`);
};
