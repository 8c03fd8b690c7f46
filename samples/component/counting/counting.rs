//! The oracle of the sample components: exact counts of what a module's
//! allocator did, compiled into the module itself (included with `#[path]`
//! by json/, keep/ and app/), counted the way heapscope's heap model counts
//! (Valgrind's rules, trace/src/model.rs): every successful allocation is a
//! block of the size asked for (`malloc(0)` too), a reallocation counts as
//! freeing the old block and allocating one of the new size, failed
//! allocations and `free(NULL)` count nothing; the peak is the most bytes
//! live after any event.
//!
//! Where it counts depends on the target, so that it sees every allocation
//! heapscope sees:
//!
//! * **WASI (wasm32-wasip2)**: at libc's allocator, with the linker's
//!   `--wrap` (../counting/build.rs, each crate's build script, passes
//!   `--wrap=malloc` and friends): the
//!   module's every call of `malloc`, `calloc`, `realloc`, `free`,
//!   `posix_memalign` and `aligned_alloc` goes through `__wrap_*` here. A
//!   `#[global_allocator]` wrapper would not do: wasi-libc allocates with
//!   `malloc` for itself (4 blocks for its stdio descriptors, 2 more when
//!   the environment is read), which heapscope sees and a Rust-level count
//!   misses. Block sizes are kept in a fixed table (`SLOTS` entries, 256 KiB
//!   of zeroed statics), since `free` is not told the size. The table holds
//!   each address inverted (`!p`), not as a pointer: a leak scan must not
//!   find the blocks held by the oracle's own table.
//! * **wasm32-unknown-unknown**: no libc, so [`Counting`] is the
//!   `#[global_allocator]`, wrapping Rust's own (dlmalloc): every
//!   allocation of the module goes through it, the canonical ABI's
//!   `cabi_realloc` (wit-bindgen's) included.
//!
//! [`report`] (WASI) writes one line to stderr, formatted in a stack buffer
//! and written with one `write(2)`:
//!
//! ```text
//! heapscope-oracle: module=NAME allocs=A bytes=B peak=P live=L live_blocks=N frees=F
//! ```
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicU64 = AtomicU64::new(0);
static LIVE_BLOCKS: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
static FREES: AtomicU64 = AtomicU64::new(0);

fn allocated(size: usize) {
    ALLOCS.fetch_add(1, Relaxed);
    BYTES.fetch_add(size as u64, Relaxed);
    LIVE_BLOCKS.fetch_add(1, Relaxed);
    let live = LIVE.fetch_add(size as u64, Relaxed) + size as u64;
    PEAK.fetch_max(live, Relaxed);
}

fn freed(size: usize) {
    FREES.fetch_add(1, Relaxed);
    LIVE_BLOCKS.fetch_sub(1, Relaxed);
    LIVE.fetch_sub(size as u64, Relaxed);
}

/// The totals so far: [allocs, bytes, peak, live, live_blocks, frees].
pub fn totals() -> [u64; 6] {
    [
        ALLOCS.load(Relaxed),
        BYTES.load(Relaxed),
        PEAK.load(Relaxed),
        LIVE.load(Relaxed),
        LIVE_BLOCKS.load(Relaxed),
        FREES.load(Relaxed),
    ]
}

#[cfg(not(target_os = "wasi"))]
pub use rust_level::Counting;

#[cfg(not(target_os = "wasi"))]
mod rust_level {
    use std::alloc::{GlobalAlloc, Layout, System};

    /// A `#[global_allocator]` that counts and forwards to `System`.
    pub struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = System.alloc(layout);
            if !p.is_null() {
                super::allocated(layout.size());
            }
            p
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let p = System.alloc_zeroed(layout);
            if !p.is_null() {
                super::allocated(layout.size());
            }
            p
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            System.dealloc(ptr, layout);
            super::freed(layout.size());
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = System.realloc(ptr, layout, new_size);
            if !p.is_null() {
                super::freed(layout.size());
                super::allocated(new_size);
            }
            p
        }
    }
}

#[cfg(target_os = "wasi")]
pub use libc_level::{report, wanted};

#[cfg(target_os = "wasi")]
mod libc_level {
    use super::{allocated, freed};

    /// Live blocks the size table holds (more aborts the program).
    const SLOTS: usize = 1 << 15;
    /// (!address, size) of each live block; key 0 marks a free slot.
    static mut TABLE: [(u32, u32); SLOTS] = [(0, 0); SLOTS];

    fn slot(key: u32) -> usize {
        (key.wrapping_mul(0x9E37_79B1) >> 17) as usize % SLOTS
    }

    unsafe fn remember(p: *mut u8, size: usize) {
        let t = &mut *core::ptr::addr_of_mut!(TABLE);
        let key = !(p as u32);
        let mut i = slot(key);
        for _ in 0..SLOTS {
            if t[i].0 == 0 {
                t[i] = (key, size as u32);
                allocated(size);
                return;
            }
            i = (i + 1) % SLOTS;
        }
        abort();
    }

    /// Forgets block `p` (linear probing, backward-shift deletion).
    unsafe fn forget(p: *mut u8) {
        let t = &mut *core::ptr::addr_of_mut!(TABLE);
        let key = !(p as u32);
        let mut i = slot(key);
        loop {
            if t[i].0 == 0 {
                return; // not ours: allocated before this table saw it
            }
            if t[i].0 == key {
                break;
            }
            i = (i + 1) % SLOTS;
        }
        freed(t[i].1 as usize);
        let mut hole = i;
        let mut j = (i + 1) % SLOTS;
        while t[j].0 != 0 {
            let home = slot(t[j].0);
            // Move j into the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                t[hole] = t[j];
                hole = j;
            }
            j = (j + 1) % SLOTS;
        }
        t[hole] = (0, 0);
    }

    extern "C" {
        fn __real_malloc(n: usize) -> *mut u8;
        fn __real_calloc(n: usize, size: usize) -> *mut u8;
        fn __real_realloc(p: *mut u8, n: usize) -> *mut u8;
        fn __real_free(p: *mut u8);
        fn __real_posix_memalign(p: *mut *mut u8, align: usize, n: usize) -> i32;
        fn __real_aligned_alloc(align: usize, n: usize) -> *mut u8;
        fn abort() -> !;
        fn write(fd: i32, buf: *const u8, n: usize) -> isize;
        fn getenv(name: *const u8) -> *const u8;
    }

    #[no_mangle]
    unsafe extern "C" fn __wrap_malloc(n: usize) -> *mut u8 {
        let p = __real_malloc(n);
        if !p.is_null() {
            remember(p, n);
        }
        p
    }

    #[no_mangle]
    unsafe extern "C" fn __wrap_calloc(n: usize, size: usize) -> *mut u8 {
        let p = __real_calloc(n, size);
        if !p.is_null() {
            remember(p, n * size);
        }
        p
    }

    #[no_mangle]
    unsafe extern "C" fn __wrap_realloc(old: *mut u8, n: usize) -> *mut u8 {
        let p = __real_realloc(old, n);
        if old.is_null() {
            if !p.is_null() {
                remember(p, n);
            }
        } else if !p.is_null() {
            forget(old);
            remember(p, n);
        } else if n == 0 {
            forget(old); // realloc(p, 0) freed it
        }
        p
    }

    #[no_mangle]
    unsafe extern "C" fn __wrap_free(p: *mut u8) {
        if !p.is_null() {
            forget(p);
        }
        __real_free(p)
    }

    #[no_mangle]
    unsafe extern "C" fn __wrap_posix_memalign(out: *mut *mut u8, align: usize, n: usize) -> i32 {
        let r = __real_posix_memalign(out, align, n);
        if r == 0 {
            remember(*out, n);
        }
        r
    }

    #[no_mangle]
    unsafe extern "C" fn __wrap_aligned_alloc(align: usize, n: usize) -> *mut u8 {
        let p = __real_aligned_alloc(align, n);
        if !p.is_null() {
            remember(p, n);
        }
        p
    }

    /// Writes the oracle line for module `name` to stderr, without allocating.
    pub fn report(name: &str) {
        struct Buf {
            b: [u8; 256],
            n: usize,
        }
        impl core::fmt::Write for Buf {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                let end = self.n + s.len();
                if end > self.b.len() {
                    return Err(core::fmt::Error);
                }
                self.b[self.n..end].copy_from_slice(s.as_bytes());
                self.n = end;
                Ok(())
            }
        }
        let [a, b, p, l, lb, f] = super::totals();
        let mut buf = Buf { b: [0; 256], n: 0 };
        let _ = core::fmt::write(
            &mut buf,
            format_args!(
                "heapscope-oracle: module={name} allocs={a} bytes={b} peak={p} live={l} live_blocks={lb} frees={f}\n"
            ),
        );
        // SAFETY: a valid buffer of `buf.n` bytes.
        unsafe { write(2, buf.b.as_ptr(), buf.n) };
    }

    /// Whether `HEAPSCOPE_ORACLE` is set. (libc reads the environment on
    /// the first call, allocating for it: counted like any allocation.)
    pub fn wanted() -> bool {
        // SAFETY: a NUL-terminated name; getenv returns null or a C string.
        unsafe { !getenv(b"HEAPSCOPE_ORACLE\0".as_ptr()).is_null() }
    }
}
