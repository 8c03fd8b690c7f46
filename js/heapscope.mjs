// heapscope's JavaScript collector, for apps that load it themselves
// (`import { install, Session } from "./js/heapscope.mjs"`). Its source is
// collector/js/heapscope.mjs: the heapscope-collector crate ships it, and
// `heapscope run --node` gives Node that copy.
export * from "../collector/js/heapscope.mjs";
