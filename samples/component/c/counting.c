/* The oracle of the C sample component (samples/component/c): exact counts
 * of what the module's allocator did, counted the way heapscope's heap model
 * counts (Valgrind's rules, trace/src/model.rs) -- every successful
 * allocation is a block of the size asked for, a reallocation frees the old
 * block and allocates one of the new size, failed allocations and free(NULL)
 * count nothing, the peak is the most bytes live after any event -- the C
 * twin of ../counting/counting.rs.
 *
 * Linked with -Wl,--wrap=malloc (and calloc, realloc, free, posix_memalign,
 * aligned_alloc): every call of them in the module, wasi-libc's own
 * included, goes through __wrap_* here. Block sizes are kept in a fixed
 * table (SLOTS entries, 256 KiB of zeroed statics), since free is not told
 * the size. The table holds each address inverted (~p), not as a pointer:
 * a leak scan must not find the blocks held by the oracle's own table.
 *
 * heapscope_oracle_report(name) writes one line to stderr, formatted in a
 * stack buffer and written with one write(2):
 *   heapscope-oracle: module=NAME allocs=A bytes=B peak=P live=L live_blocks=N frees=F
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SLOTS (1u << 15)
/* key: ~address of the block (0: a free slot) */
static struct { uintptr_t key; size_t size; } table[SLOTS];
static unsigned long long allocs, bytes, live, live_blocks, peak, frees;

void *__real_malloc(size_t);
void *__real_calloc(size_t, size_t);
void *__real_realloc(void *, size_t);
void __real_free(void *);
int __real_posix_memalign(void **, size_t, size_t);
void *__real_aligned_alloc(size_t, size_t);

static size_t slot(uintptr_t key) { return ((uint32_t)key * 0x9E3779B1u >> 17) % SLOTS; }

static void remember(void *p, size_t size) {
    uintptr_t key = ~(uintptr_t)p;
    size_t i = slot(key);
    for (size_t n = 0; n < SLOTS; n++, i = (i + 1) % SLOTS) {
        if (!table[i].key) {
            table[i].key = key;
            table[i].size = size;
            allocs++;
            bytes += size;
            live_blocks++;
            live += size;
            if (live > peak) peak = live;
            return;
        }
    }
    abort();
}

/* Linear probing with backward-shift deletion. */
static void forget(void *p) {
    uintptr_t key = ~(uintptr_t)p;
    size_t i = slot(key);
    for (;; i = (i + 1) % SLOTS) {
        if (!table[i].key) return; /* not a block this table saw */
        if (table[i].key == key) break;
    }
    frees++;
    live_blocks--;
    live -= table[i].size;
    size_t hole = i;
    for (size_t j = (i + 1) % SLOTS; table[j].key; j = (j + 1) % SLOTS) {
        size_t home = slot(table[j].key);
        int stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            table[hole] = table[j];
            hole = j;
        }
    }
    table[hole].key = 0;
    table[hole].size = 0;
}

void *__wrap_malloc(size_t n) {
    void *p = __real_malloc(n);
    if (p) remember(p, n);
    return p;
}

void *__wrap_calloc(size_t n, size_t size) {
    void *p = __real_calloc(n, size);
    if (p) remember(p, n * size);
    return p;
}

void *__wrap_realloc(void *old, size_t n) {
    void *p = __real_realloc(old, n);
    if (!old) {
        if (p) remember(p, n);
    } else if (p) {
        forget(old);
        remember(p, n);
    } else if (n == 0) {
        forget(old); /* realloc(p, 0) freed it */
    }
    return p;
}

void __wrap_free(void *p) {
    if (p) forget(p);
    __real_free(p);
}

int __wrap_posix_memalign(void **out, size_t align, size_t n) {
    int r = __real_posix_memalign(out, align, n);
    if (r == 0) remember(*out, n);
    return r;
}

void *__wrap_aligned_alloc(size_t align, size_t n) {
    void *p = __real_aligned_alloc(align, n);
    if (p) remember(p, n);
    return p;
}

void heapscope_oracle_report(const char *name) {
    char line[256];
    int n = snprintf(line, sizeof line,
                     "heapscope-oracle: module=%s allocs=%llu bytes=%llu peak=%llu live=%llu live_blocks=%llu frees=%llu\n",
                     name, allocs, bytes, peak, live, live_blocks, frees);
    if (n > 0) write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}
