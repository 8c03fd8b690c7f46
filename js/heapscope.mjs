// heapscope's JavaScript collector, for apps that load it themselves
// (`import { install, Session } from "./js/heapscope.mjs"`). Its source is
// collector/js/heapscope.mjs: the heapscope-collector crate ships it, and
// `heapscope run --node` gives Node that copy. The hook ABI's and the
// session format's constants (generated from heapscope's Rust side) are
// collector/js/abi.mjs's.
export * from "../collector/js/heapscope.mjs";
export { ABI, ABI_VERSION, SESSION, TAG } from "../collector/js/abi.mjs";
