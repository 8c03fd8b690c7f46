/* snapshot.c: a guest that asks heapscope for heap graphs itself, through
 * the `heapscope.snapshot` import (docs/snapshots.md).
 *
 *   one 16-byte block is allocated and freed (the run sees a free);
 *   10 requests keep a 100-byte block each in the global list `g_kept`,
 *   snapshot "warm";
 *   5 more keep a 200-byte block each, snapshot "after";
 *   three calls with bad labels (out of memory's bounds, 300 bytes, not
 *   UTF-8) take none: each is an invalid hook call.
 *
 *   heapscope leaks TRACE --between guest:warm guest:after:
 *     1,000 bytes in 5 blocks, held by static g_kept.
 *
 * Under `--plain` (or natively, without heapscope) the import does
 * nothing. `main(void)` and unbuffered stdout keep libc from allocating
 * blocks of its own.
 */
#include <stdlib.h>
#include <string.h>

#ifdef __wasm__
__attribute__((import_module("heapscope"), import_name("snapshot")))
void heapscope_snapshot(const char *label, int len);
#else
static void heapscope_snapshot(const char *label, int len) { (void)label; (void)len; }
#endif

static void snapshot(const char *label) { heapscope_snapshot(label, (int)strlen(label)); }

struct node {
    struct node *next;
    char payload[];
};

struct node *g_kept;

__attribute__((noinline)) static void keep(size_t bytes) {
    struct node *n = malloc(bytes);
    n->next = g_kept;
    g_kept = n;
}

int main(void) {
    free(malloc(16)); /* a free, so the run knows the allocator's */
    for (int i = 0; i < 10; i++) keep(100);
    snapshot("warm");
    for (int i = 0; i < 5; i++) keep(200);
    snapshot("after");
    static char long_label[300];
    memset(long_label, 'x', sizeof long_label);
    heapscope_snapshot(long_label, sizeof long_label);
    heapscope_snapshot((const char *)0x7fffff00, 8);
    static const char bad_utf8[] = {(char)0xff, (char)0xfe, 0};
    heapscope_snapshot(bad_utf8, 2);
    return 0;
}
