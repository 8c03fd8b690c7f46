/* wordcount (samples/component/c): a preview-1 C program (wasm32-wasi,
 * wasi-libc) that samples/build.sh adapts into a WASI 0.2 component with
 * wasmtime 48's preview-1 command adapter; its tests compare heapscope's
 * counts for the program's module with the oracle compiled into it
 * (counting.c), and expect the adapter's module reported as a module of
 * its own.
 *
 * It counts the words of a built-in text (ROUNDS copies of TEXT) in a
 * chained hash table whose words are strdup'ed and whose bucket array is
 * grown with realloc, prints the COUNT most frequent words and a total line
 * to stdout, then frees the table. It keeps on purpose:
 *   - LOST_BLOCKS blocks of LOST_BYTES bytes, their pointers dropped
 *     (definitely lost);
 *   - one 256-byte block (calloc) held by the global `history` (still
 *     reachable).
 * Arguments: none, or `--exit N` to return N from main (the exit code a
 * test compares with `wasmtime run`'s).
 *
 * With HEAPSCOPE_ORACLE set in its environment it writes the oracle line
 * (counting.c) to stderr from an atexit handler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 20
#define COUNT 5
#define LOST_BLOCKS 3
#define LOST_BYTES 100

void heapscope_oracle_report(const char *name);

static const char *TEXT =
    "the quick brown fox jumps over the lazy dog while the cat watches the fox "
    "and the dog sleeps under the old oak tree near the river bank where the "
    "water runs quick and cold over stones worn smooth by the river";

struct word {
    char *text;
    int count;
    struct word *next;
};

static struct word **buckets;
static size_t nbuckets, nwords, total;
static char *history;

static unsigned hash(const char *s) {
    unsigned h = 2166136261u;
    while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static void grow(void) {
    size_t n = nbuckets ? nbuckets * 2 : 4;
    struct word **b = realloc(buckets, n * sizeof *b);
    if (!b) abort();
    /* Rehash into the grown array. */
    struct word *all = NULL;
    for (size_t i = 0; i < nbuckets; i++) {
        for (struct word *w = b[i], *next; w; w = next) {
            next = w->next;
            w->next = all;
            all = w;
        }
    }
    memset(b, 0, n * sizeof *b);
    for (struct word *w = all, *next; w; w = next) {
        next = w->next;
        size_t i = hash(w->text) % n;
        w->next = b[i];
        b[i] = w;
    }
    buckets = b;
    nbuckets = n;
}

static void add(const char *text) {
    total++;
    if (nwords >= nbuckets) grow();
    size_t i = hash(text) % nbuckets;
    for (struct word *w = buckets[i]; w; w = w->next) {
        if (strcmp(w->text, text) == 0) {
            w->count++;
            return;
        }
    }
    struct word *w = malloc(sizeof *w);
    if (!w) abort();
    w->text = strdup(text);
    w->count = 1;
    w->next = buckets[i];
    buckets[i] = w;
    nwords++;
}

static void count_text(void) {
    for (int r = 0; r < ROUNDS; r++) {
        char *copy = strdup(TEXT);
        for (char *t = strtok(copy, " "); t; t = strtok(NULL, " ")) add(t);
        free(copy);
    }
}

static int by_count(const void *a, const void *b) {
    const struct word *x = *(const struct word *const *)a, *y = *(const struct word *const *)b;
    if (x->count != y->count) return y->count - x->count;
    return strcmp(x->text, y->text);
}

static void print_top(void) {
    struct word **all = calloc(nwords, sizeof *all);
    if (!all) abort();
    size_t n = 0;
    for (size_t i = 0; i < nbuckets; i++)
        for (struct word *w = buckets[i]; w; w = w->next) all[n++] = w;
    qsort(all, n, sizeof *all, by_count);
    for (int i = 0; i < COUNT && (size_t)i < n; i++) printf("%s %d\n", all[i]->text, all[i]->count);
    printf("words %zu distinct %zu\n", total, n);
    free(all);
}

static void free_table(void) {
    for (size_t i = 0; i < nbuckets; i++) {
        for (struct word *w = buckets[i], *next; w; w = next) {
            next = w->next;
            free(w->text);
            free(w);
        }
    }
    free(buckets);
    buckets = NULL;
}

__attribute__((noinline)) static void lose_blocks(void) {
    for (int i = 0; i < LOST_BLOCKS; i++) {
        char *p = malloc(LOST_BYTES);
        if (!p) abort();
        memset(p, 'a' + i, LOST_BYTES);
    }
}

static void report(void) { heapscope_oracle_report("wordcount"); }

int main(int argc, char **argv) {
    if (getenv("HEAPSCOPE_ORACLE")) atexit(report);
    count_text();
    print_top();
    free_table();
    lose_blocks();
    /* Zeroed: a malloc'd block would reuse freed memory whose stale words
     * can point into the lost blocks, making one of them "possibly lost". */
    history = calloc(1, 256);
    if (!history) abort();
    snprintf(history, 256, "counted %d rounds", ROUNDS);
    if (argc == 3 && strcmp(argv[1], "--exit") == 0) return atoi(argv[2]);
    return 0;
}
