/* million.c: 1,800,000 live blocks linked in lists, for the heap graph's
 * bench row (graph, dominators and paths in <= 3 s and <= 1 GB extra).
 *
 *   g_lists[1000] heads 1,000 lists of 1,800 24-byte nodes each; every
 *   node's `other` points at a node of the next list, so most nodes are
 *   reached by two paths and the dominator tree is not just the lists.
 *   All 1,800,000 blocks (43,200,000 bytes) are still reachable at exit.
 */
#include <stdlib.h>

#define LISTS 1000
#define PER_LIST 1800

struct node {
    struct node *next;
    struct node *other;
    int value;
};
_Static_assert(sizeof(struct node) <= 24, "a node fits 24 bytes");

struct node *g_lists[LISTS];

__attribute__((noinline)) static struct node *make_node(struct node *next, int value) {
    struct node *n = malloc(24);
    n->next = next;
    n->other = 0;
    n->value = value;
    return n;
}

int main(void) {
    for (int l = 0; l < LISTS; l++) {
        struct node *head = 0;
        for (int i = 0; i < PER_LIST; i++) head = make_node(head, l * PER_LIST + i);
        g_lists[l] = head;
    }
    for (int l = 0; l < LISTS; l++) {
        struct node *a = g_lists[l], *b = g_lists[(l + 1) % LISTS];
        for (; a && b; a = a->next, b = b->next) a->other = b;
    }
    return 0;
}
