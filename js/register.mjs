// heapscope's Node entry point:
//
//   HEAPSCOPE_SESSION=app.hss node --import ./js/register.mjs app.mjs
//
// Its source, with the variables it reads, is collector/js/register.mjs:
// the heapscope-collector crate ships it, and `heapscope run --node` gives
// Node that copy.
import "../collector/js/register.mjs";
