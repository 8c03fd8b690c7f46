// badrealloc (C, wasm32-wasi): reallocates a pointer 8 bytes inside a live
// block. wasi-libc's realloc traps on it; Valgrind reports it as
// "Invalid free() / delete / delete[] / realloc() ... Address 0x.. is 8
// bytes inside a block of size 100 alloc'd" and goes on. Expected under
// heapscope (tests/allocators.rs): one invalid free, recorded before the
// allocator ran, the pointer 8 bytes inside a block of 100 bytes, with the
// stacks of the reallocation (grow_record) and of the allocation
// (make_record), and the run trapped.
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) char *make_record(void) { return malloc(100); }

__attribute__((noinline)) char *grow_record(char *field) { return realloc(field, 200); }

int main(void) {
    char *r = make_record();
    // The record's first fields: what the allocator reads as the header of
    // the chunk the bad pointer names (a size past the end of memory).
    ((unsigned *)r)[0] = 0;
    ((unsigned *)r)[1] = 0x7ffffff3u;
    char *g = grow_record(r + 8);
    printf("after the bad realloc: %p\n", (void *)g);
    free(r);
    return 0;
}
