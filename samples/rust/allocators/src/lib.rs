//! allocators (Rust, wasm32-unknown-unknown): the same three exports over
//! each allocator people ship, chosen by a cargo feature (samples/build.sh
//! builds one module per feature: `rust/alloc-<feature>.wasm`).
//!
//! - `leak(n)` allocates one `n`-byte buffer and never frees it:
//!   `heapscope run alloc-talc.wasm --invoke leak --repeat 10 -- 1000`
//!   leaves exactly 10 blocks, 10,000 bytes live.
//! - `churn(k)` allocates and frees a 64-byte buffer `k` times: exactly `k`
//!   allocations, `k` frees, nothing live.
//! - `grow(n)` pushes `n` bytes one at a time into a vector and drops it:
//!   one allocation of 8 bytes, a reallocation each time it doubles, one
//!   free; nothing live.
//!
//! tests/allocators.rs checks these numbers for every allocator.

#[cfg(feature = "dlmalloc")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[cfg(feature = "wee_alloc")]
#[global_allocator]
static ALLOC: wee_alloc::WeeAlloc = wee_alloc::WeeAlloc::INIT;

#[cfg(feature = "talc")]
#[global_allocator]
static ALLOC: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };

#[cfg(feature = "lol_alloc")]
#[global_allocator]
static ALLOC: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

/// The two allocators that manage a region they are given: a static arena,
/// handed over before the first allocation.
#[cfg(any(feature = "buddy", feature = "linked_list"))]
mod arena {
    use core::sync::atomic::{AtomicBool, Ordering};

    pub const SIZE: usize = 1 << 20;
    #[repr(align(4096))]
    struct Arena(#[allow(dead_code)] [u8; SIZE]);
    static mut ARENA: Arena = Arena([0; SIZE]);
    static READY: AtomicBool = AtomicBool::new(false);

    #[cfg(feature = "buddy")]
    #[global_allocator]
    pub static ALLOC: buddy_system_allocator::LockedHeap<32> =
        buddy_system_allocator::LockedHeap::empty();

    #[cfg(feature = "linked_list")]
    #[global_allocator]
    pub static ALLOC: linked_list_allocator::LockedHeap = linked_list_allocator::LockedHeap::empty();

    pub fn ready() {
        if !READY.swap(true, Ordering::Relaxed) {
            // SAFETY: once, before any allocation; the arena is used only here.
            unsafe {
                let start = core::ptr::addr_of_mut!(ARENA) as usize;
                #[cfg(feature = "buddy")]
                ALLOC.lock().init(start, SIZE);
                #[cfg(feature = "linked_list")]
                ALLOC.lock().init(start as *mut u8, SIZE);
            }
        }
    }
}

fn ready() {
    #[cfg(any(feature = "buddy", feature = "linked_list"))]
    arena::ready();
}

/// Allocate `n` bytes and never free them.
#[no_mangle]
pub extern "C" fn leak(n: u32) -> u32 {
    ready();
    let mut v: Vec<u8> = Vec::with_capacity(n as usize);
    v.push(1);
    let p = v.as_ptr() as u32;
    std::mem::forget(v);
    p
}

/// Allocate and free a 64-byte buffer `k` times; returns a checksum.
#[no_mangle]
pub extern "C" fn churn(k: u32) -> u32 {
    ready();
    let mut sum = 0u32;
    for i in 0..k {
        let b = std::hint::black_box(Box::new([i as u8; 64]));
        sum = sum.wrapping_add(b[63] as u32);
    }
    sum
}

/// Grow a vector one byte at a time to `n` bytes, then drop it: its
/// buffer is reallocated as it doubles (8, 16, ... bytes), through the
/// allocator's `realloc`; returns the length.
#[no_mangle]
pub extern "C" fn grow(n: u32) -> u32 {
    ready();
    let mut v: Vec<u8> = Vec::new();
    for i in 0..n {
        v.push(i as u8);
    }
    std::hint::black_box(&v).len() as u32
}
