/* kinds.c: one block or chain of blocks for each of Valgrind's leak kinds.
 *
 *   a lost list: its head (40 bytes) definitely lost, the 4 nodes it
 *     reaches (4 x 40 bytes) indirectly lost;
 *   a lost cycle of two 56-byte nodes: one definitely, one indirectly lost;
 *   a 72-byte block only a pointer into its middle reaches: possibly lost;
 *   a 88-byte block a global points to: still reachable.
 *
 *   valgrind --leak-check=full ./kinds (gcc -g -O0 kinds.c -o kinds):
 *     definitely lost: 96 bytes in 2 blocks
 *     indirectly lost: 216 bytes in 5 blocks
 *       possibly lost: 72 bytes in 1 blocks
 *     still reachable: 88 bytes in 1 blocks
 *
 * tests/allocators.rs checks that heapscope counts what Valgrind counts.
 * `main(void)` and unbuffered stdout keep libc from allocating blocks of
 * its own, natively and in wasm.
 */
#include <stdio.h>
#include <stdlib.h>

struct node {
    struct node *next;
    char payload[40 - sizeof(void *)]; /* 40 bytes in all, wasm32 or 64-bit */
};

struct pair {
    struct pair *other;
    char payload[56 - sizeof(void *)]; /* 56 bytes in all */
};

static char *middle;    /* points 8 bytes into a block */
static char *kept;      /* points at the start of a block */

__attribute__((noinline)) static struct node *make_list(int n) {
    struct node *head = NULL;
    for (int i = 0; i < n; i++) {
        struct node *x = malloc(sizeof *x);
        x->next = head;
        head = x;
    }
    return head;
}

__attribute__((noinline)) static void lose_list(void) {
    struct node *head = make_list(5);
    head->payload[0] = 1;
    /* `head` dies here: the list is lost. */
}

__attribute__((noinline)) static void lose_cycle(void) {
    struct pair *a = malloc(sizeof *a);
    struct pair *b = malloc(sizeof *b);
    a->other = b;
    b->other = a;
}

__attribute__((noinline)) static void keep_middle(void) {
    middle = (char *)malloc(72) + 8;
}

__attribute__((noinline)) static void keep_start(void) { kept = malloc(88); }

/* Overwrite the stack the helpers used, so no stale pointer survives. */
__attribute__((noinline)) static void scrub(void) {
    volatile char junk[4096];
    for (int i = 0; i < (int)sizeof junk; i++) junk[i] = 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    lose_list();
    lose_cycle();
    keep_middle();
    keep_start();
    scrub();
    printf("kept %p, middle %p\n", (void *)kept, (void *)middle);
    return 0;
}
