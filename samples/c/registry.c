/* registry.c: a global list that keeps every request's node, and a lost
 * cycle.
 *
 *   500 requests each append a 44-byte node to the global list
 *     `g_registry`: 22,000 bytes in 500 blocks still reachable;
 *   lose_cycle() makes two 56-byte blocks that point only at each other
 *     and drops them: one definitely lost, one indirectly lost.
 *
 *   valgrind --leak-check=full ./registry (gcc -g -O0 registry.c):
 *     definitely lost: 56 bytes in 1 blocks
 *     indirectly lost: 56 bytes in 1 blocks
 *     still reachable: 22,000 bytes in 500 blocks
 *
 * tests/samples.rs checks that heapscope counts what Valgrind counts.
 * Nothing scrubs the stack: the cycle's pointers stay in lose_cycle's dead
 * frame, which is no root. `main(void)` and unbuffered stdout keep libc
 * from allocating blocks of its own, natively and in wasm.
 */
#include <stdio.h>
#include <stdlib.h>

/* Each node is a 44-byte block, on wasm32 and natively (where the struct
 * alone would round up to 48). */
#define NODE_BYTES 44
struct entry {
    struct entry *next;
    int id;
    char name[24];
};
_Static_assert(sizeof(struct entry) <= NODE_BYTES, "an entry fits its block");

struct entry *g_registry;

__attribute__((noinline)) static void handle(int id) {
    struct entry *e = malloc(NODE_BYTES);
    e->next = g_registry;
    e->id = id;
    snprintf(e->name, sizeof e->name, "request %d", id);
    g_registry = e;
}

struct pair {
    struct pair *other;
    char payload[56 - sizeof(void *)]; /* 56 bytes in all */
};

__attribute__((noinline)) static void lose_cycle(void) {
    struct pair *a = malloc(sizeof *a);
    struct pair *b = malloc(sizeof *b);
    a->other = b;
    b->other = a;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 0; i < 500; i++)
        handle(i);
    lose_cycle();
    printf("%d requests registered\n", g_registry->id + 1);
    return 0;
}
