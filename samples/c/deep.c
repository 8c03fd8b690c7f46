/* deep.c: a leak at every level of a deep recursion. `deep DEPTH` recurses
 * DEPTH levels; each level allocates one block of a `long` (4 bytes on
 * wasm32) and drops the pointer, so every block is lost, each from a stack
 * one frame deeper than the last.
 *
 * Expected numbers (tests/engine.rs checks them): DEPTH blocks of 4 bytes,
 * all live at exit, from DEPTH distinct stacks (plus
 * wasi-libc's two argv blocks, suppressed by default). It prints
 * "DEPTH levels, checksum C" where C = DEPTH * (DEPTH + 1) (each level adds
 * its depth twice).
 */
#include <stdio.h>
#include <stdlib.h>

static unsigned long checksum;

static void level(long depth) {
    long *p = malloc(sizeof *p);
    *p = depth;
    checksum += (unsigned long)*p;
    if (depth > 1)
        level(depth - 1);
    checksum += (unsigned long)depth; /* keeps the recursion from becoming a tail call */
}

int main(int argc, char **argv) {
    long depth = argc > 1 ? atol(argv[1]) : 1000;
    level(depth);
    printf("%ld levels, checksum %lu\n", depth, checksum);
    return 0;
}
