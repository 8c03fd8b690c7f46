// What an app's WebAssembly memories really do, measured without heapscope:
//   node --import ./measure-memory.mjs app.mjs ...
// At exit, prints to stderr for each memory an instance exported:
//   memory: initial N pages, final M pages, K growths from JavaScript
// (growths by the module's own `memory.grow` are in final - initial, not in
// K). The tests compare heapscope's recorded growth with it.
const W = WebAssembly;
const seen = []; // [memory, initial pages]
const pages = (m) => m.buffer.byteLength / 65536;
let jsGrowths = 0;
const grow = W.Memory.prototype.grow;
W.Memory.prototype.grow = function (delta) {
  const r = grow.call(this, delta);
  jsGrowths++;
  return r;
};
const note = (instance) => {
  for (const v of Object.values(instance.exports)) {
    if (v instanceof W.Memory && !seen.some(([m]) => m === v)) seen.push([v, pages(v)]);
  }
  return instance;
};
const instantiate = W.instantiate;
W.instantiate = async (...args) => {
  const r = await instantiate.apply(W, args);
  note(r instanceof W.Instance ? r : r.instance);
  return r;
};
const Instance = W.Instance;
W.Instance = function (...args) {
  return note(new Instance(...args));
};
W.Instance.prototype = Instance.prototype;
process.on("exit", () => {
  for (const [m, initial] of seen) {
    process.stderr.write(
      `memory: initial ${initial} pages, final ${pages(m)} pages, ${jsGrowths} growths from JavaScript\n`,
    );
  }
});
