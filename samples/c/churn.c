/* churn.c: an allocation microbenchmark. `churn N DEPTH` recurses DEPTH
 * frames deep, then makes N allocation/free pairs of varying small sizes,
 * keeping 16 blocks live at a time (each new block replaces the oldest).
 *
 * Expected numbers (tests/samples.rs checks them for N = 1000, DEPTH = 12):
 *   N pairs: N blocks of 16 + (i % 61) * 8 bytes for i < N (1000: 252,448
 *   bytes), at most 16 live at a time, none at exit. wasi-libc adds its two
 *   argv blocks (`churn.wasm 1000 12`: 19 + 16 = 35 bytes), which it never
 *   frees and heapscope's default suppressions cover: total_blocks 1,002,
 *   total_bytes 252,483, max_blocks 18, curr_blocks 2 (suppressed).
 */
#include <stdio.h>
#include <stdlib.h>

static unsigned long checksum;

static void work(long n) {
    char *ring[16] = {0};
    for (long i = 0; i < n; i++) {
        int k = (int)(i % 16);
        free(ring[k]);
        size_t size = 16 + (size_t)(i % 61) * 8;
        ring[k] = malloc(size);
        ring[k][0] = (char)i;
        checksum += (unsigned char)ring[k][0] + size;
    }
    for (int k = 0; k < 16; k++)
        free(ring[k]);
}

static void descend(long n, int depth) {
    if (depth > 0)
        descend(n, depth - 1);
    else
        work(n);
    checksum += (unsigned)depth; /* keeps the recursion from becoming a tail call */
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int depth = argc > 2 ? atoi(argv[2]) : 12;
    descend(n, depth);
    printf("churn: %ld pairs at depth %d, checksum %lu\n", n, depth, checksum);
    return 0;
}
