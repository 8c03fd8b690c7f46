//! Where a hooked function's values are, by its role and signature.

use super::*;

/// Where a hooked function's values are: parameter indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Returns the new block's pointer; the size is `size` (times `count`).
    Alloc {
        /// Size parameter.
        size: usize,
        /// Element count parameter (calloc).
        count: Option<usize>,
        /// Alignment parameter.
        align: Option<usize>,
    },
    /// Stores the new block's pointer at `out` and returns 0 on success
    /// (posix_memalign).
    OutParam {
        /// Output pointer parameter.
        out: usize,
        /// Size parameter.
        size: usize,
        /// Alignment parameter.
        align: usize,
    },
    /// Frees the block at `ptr`.
    Free {
        /// Pointer parameter.
        ptr: usize,
    },
    /// Resizes the block at `ptr` to `size`, returning the new pointer.
    Realloc {
        /// Old pointer parameter.
        ptr: usize,
        /// New size parameter.
        size: usize,
    },
}

/// The shape of a function playing `role` with this signature, or `None`
/// when the signature does not fit the role. `p` is the pointer type of the
/// memory (i32, or i64 for memory64).
pub fn shape(role: AllocFn, params: &[ValType], results: &[ValType], p: ValType) -> Option<Shape> {
    use AllocFn::*;
    let n = params.len();
    let all_p = |n: usize| params.len() >= n && params[..n].iter().all(|t| *t == p);
    let returns_p = results == [p];
    let alloc = |size, count, align| Some(Shape::Alloc { size, count, align });
    match role {
        Malloc | AsAlloc if params == [p] && returns_p => alloc(0, None, None),
        // operator new(size) and operator new(size, const nothrow_t&)
        CxxNew if all_p(params.len()) && (1..=2).contains(&params.len()) && returns_p => {
            alloc(0, None, None)
        }
        Calloc if params == [p, p] && returns_p => alloc(1, Some(0), None),
        AlignedAlloc | Memalign if params == [p, p] && returns_p => alloc(1, None, Some(0)),
        RustAlloc | RustAllocZeroed if params == [p, p] && returns_p => alloc(0, None, Some(1)),
        CxxNewAligned if all_p(params.len()) && (2..=3).contains(&params.len()) && returns_p => {
            alloc(0, None, Some(1))
        }
        WbgMalloc if params == [p] && returns_p => alloc(0, None, None),
        WbgMalloc if params == [p, p] && returns_p => alloc(0, None, Some(1)),
        AsNew if params.len() == 2 && params[0] == p && params[1] == ValType::I32 && returns_p => {
            alloc(0, None, None)
        }
        PosixMemalign if params == [p, p, p] && results == [ValType::I32] => {
            Some(Shape::OutParam {
                out: 0,
                align: 1,
                size: 2,
            })
        }
        Realloc | AsRenew | AsRealloc if params == [p, p] && returns_p => {
            Some(Shape::Realloc { ptr: 0, size: 1 })
        }
        // cabi_realloc(old_ptr, old_size, align, new_size)
        CabiRealloc if params == [p, p, p, p] && returns_p => {
            Some(Shape::Realloc { ptr: 0, size: 3 })
        }
        RustRealloc if params == [p, p, p, p] && returns_p => {
            Some(Shape::Realloc { ptr: 0, size: 3 })
        }
        // LTO dropped a parameter every call passes the same constant (the
        // alignment, or the old size): the pointer is still first, the new
        // size still last.
        RustRealloc if params == [p, p, p] && returns_p => Some(Shape::Realloc { ptr: 0, size: 2 }),
        WbgRealloc if params == [p, p, p, p] && returns_p => {
            Some(Shape::Realloc { ptr: 0, size: 2 })
        }
        // Older wasm-bindgen: (ptr, old_size, new_size), no alignment.
        WbgRealloc if params == [p, p, p] && returns_p => Some(Shape::Realloc { ptr: 0, size: 2 }),
        Free | AsFree if params == [p] && results.is_empty() => Some(Shape::Free { ptr: 0 }),
        // With LTO, the size or alignment may be dropped: the pointer is first.
        RustDealloc if (2..=3).contains(&n) && all_p(n) && results.is_empty() => {
            Some(Shape::Free { ptr: 0 })
        }
        WbgFree | CxxDelete
            if all_p(params.len()) && (1..=3).contains(&params.len()) && results.is_empty() =>
        {
            Some(Shape::Free { ptr: 0 })
        }
        // `GlobalAlloc` methods as found by name, for when no `__rust_*`
        // shim is left to say where their values are (LTO inlined the
        // shims; a shim's call overrides this). LTO drops a parameter every
        // call passes the same constant: `self` (a static's address)
        // first, then a layout field no call varies (the alignment, far
        // more often than the size). A `Layout` arrives as (align, size),
        // rustc's order today, as the shims' calls show where they remain.
        GlobalAlloc | GlobalAllocZeroed if (1..=3).contains(&n) && all_p(n) && returns_p => {
            if n == 1 {
                alloc(0, None, None)
            } else {
                alloc(n - 1, None, Some(n - 2))
            }
        }
        GlobalDealloc if (1..=4).contains(&n) && all_p(n) && results.is_empty() => {
            Some(Shape::Free {
                ptr: usize::from(n == 4),
            })
        }
        GlobalRealloc if (2..=5).contains(&n) && all_p(n) && returns_p => Some(Shape::Realloc {
            ptr: usize::from(n == 5),
            size: n - 1,
        }),
        DlMalloc | DlCalloc if (1..=2).contains(&n) && all_p(n) && returns_p => {
            alloc(n - 1, None, None)
        }
        DlMemalign if (2..=3).contains(&n) && all_p(n) && returns_p => {
            alloc(n - 1, None, Some(n - 2))
        }
        DlFree if (1..=2).contains(&n) && all_p(n) && results.is_empty() => {
            Some(Shape::Free { ptr: n - 1 })
        }
        DlRealloc if (2..=3).contains(&n) && all_p(n) && returns_p => Some(Shape::Realloc {
            ptr: n - 2,
            size: n - 1,
        }),
        _ => None,
    }
}
