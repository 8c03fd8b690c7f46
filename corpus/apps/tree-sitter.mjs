// web-tree-sitter (emscripten, with a source map) with the JSON grammar
// from tree-sitter-json (a side module loaded into its memory): parse a
// generated document, edit it and parse again, walk the tree.
// `node tree-sitter.mjs release|debug`.
import { printMemories } from "./memory.mjs";
import { pkgBytes } from "./common.mjs";
const { Parser, Language } = process.argv[2] === "debug"
  ? await import("web-tree-sitter/debug")
  : await import("web-tree-sitter");
await Parser.init();
const JSONLang = await Language.load(pkgBytes("tree-sitter-json/tree-sitter-json.wasm"));
const parser = new Parser();
parser.setLanguage(JSONLang);
const doc = JSON.stringify(Array.from({ length: 500 }, (_, i) => ({ id: i, name: `n${i}`, tags: ["a", "b", i % 7], ok: i % 3 === 0 })));
const tree = parser.parse(doc);
let nodes = 0;
const cursor = tree.walk();
for (let more = true; more; ) {
  nodes++;
  if (cursor.gotoFirstChild()) continue;
  while (!cursor.gotoNextSibling()) if (!cursor.gotoParent()) { more = false; break; }
}
cursor.delete();
const edited = doc.replace('"n0"', '"renamed"');
tree.edit({ startIndex: 17, oldEndIndex: 21, newEndIndex: 26, startPosition: { row: 0, column: 17 }, oldEndPosition: { row: 0, column: 21 }, newEndPosition: { row: 0, column: 26 } });
const tree2 = parser.parse(edited, tree);
console.log(`${nodes} nodes, root ${tree.rootNode.type} with ${tree.rootNode.firstChild.namedChildCount} items, reparsed ${tree2.rootNode.hasError ? "with errors" : "clean"}, first ${tree2.rootNode.firstChild.firstNamedChild.text.slice(0, 30)}`);
tree.delete();
tree2.delete();
parser.delete();
printMemories();
