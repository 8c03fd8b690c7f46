// AssemblyScript sample (default runtime: incremental GC over TLSF).
//
// - `leak(n)` allocates an n-byte ArrayBuffer and keeps it in a global
//   array: `heapscope run as.wasm --invoke leak --repeat 10 -- 1000` leaves
//   the ten buffers live (and the array's backing store).
// - `churn(k)` allocates k 64-byte buffers it drops, then collects.
// - `allocs()` / `frees()` are the runtime's own counts of blocks TLSF
//   handed out and took back (kept by hooks this sample links in), for the
//   test to compare with heapscope's.

const kept: ArrayBuffer[] = [];

export function leak(n: i32): i32 {
  kept.push(new ArrayBuffer(n));
  return kept.length;
}

export function churn(k: i32): i32 {
  let sum = 0;
  for (let i = 0; i < k; i++) {
    const b = new ArrayBuffer(64);
    sum += b.byteLength;
  }
  __collect();
  return sum;
}

// Fails an assertion: the runtime calls `env.abort` with the message, file,
// line and column, and heapscope reports them as the trap.
export function fail(): void {
  assert(false, "sample failure");
}
