//! The build script of the sample components that use ../counting on WASI:
//! send the module's every call of libc's allocator through the counting
//! wrappers (`__wrap_malloc` calls `__real_malloc`, and so on).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("wasi") {
        for f in [
            "malloc",
            "calloc",
            "realloc",
            "free",
            "posix_memalign",
            "aligned_alloc",
        ] {
            println!("cargo:rustc-link-arg=--wrap={f}");
        }
    }
    println!("cargo:rerun-if-changed=../counting/build.rs");
}
