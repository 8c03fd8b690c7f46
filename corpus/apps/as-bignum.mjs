// as-bignum (AssemblyScript, default runtime) through the ESM glue asc
// generates (`--bindings esm`): scripts/corpus.sh builds
// target/corpus/as/bignum.{wasm,js,wasm.map} from corpus/as/bignum.ts
// (with --exportRuntime: the app runs a full collection at the end, as an
// app that wants its garbage freed does, so what is left is really live).
import { printMemories } from "./memory.mjs";
const { factorials, __collect } = await import(new URL("../../target/corpus/as/bignum.js", import.meta.url).href);
for (const n of [10, 25, 34]) console.log(factorials(n));
__collect();
printMemories();
