/* fragment.c: memory that never shrinks. Allocates 100,000 small blocks
 * (about 6 MB), frees all but every 1,000th, and ends with a small live set
 * held in a global: linear memory stays at its peak size although almost all
 * of it is free.
 *
 * Expected numbers (tests/samples.rs checks them, and checks that Valgrind
 * counts the same for this source built natively with gcc):
 *
 *   total_blocks 100,001, total_bytes 7,200,000
 *     (100,000 blocks of 64 bytes + one 800,000-byte pointer array)
 *   curr_blocks 100, curr_bytes 6,400 (kept[], reachable from a global)
 *   max_bytes 7,200,000 in 100,001 blocks
 *
 *   valgrind --leak-check=full ./fragment (gcc -g -O0 fragment.c -o fragment):
 *     total heap usage: 100,001 allocs, 99,901 frees, 7,200,000 bytes allocated
 *     still reachable: 6,400 bytes in 100 blocks
 */
#include <stdio.h>
#include <stdlib.h>

#define BLOCKS 100000
#define KEEP_EVERY 1000

static char *kept[BLOCKS / KEEP_EVERY];

static char *small_block(int i) {
    char *p = malloc(64);
    p[0] = (char)i;
    return p;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    /* 800,000 bytes: room for 100,000 pointers on 64-bit hosts (and twice
     * that on wasm32), so native and wasm runs allocate the same bytes. */
    char **all = malloc(800000);
    for (int i = 0; i < BLOCKS; i++)
        all[i] = small_block(i);
    int k = 0;
    for (int i = 0; i < BLOCKS; i++) {
        if (i % KEEP_EVERY == 0)
            kept[k++] = all[i];
        else
            free(all[i]);
    }
    free(all);
    printf("fragment: kept %d blocks\n", k);
    return 0;
}
