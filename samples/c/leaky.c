/* leaky.c: heapscope's C sample. Uses every libc allocation function once
 * or more, frees everything except three blocks leaked from three different
 * call paths, each of a size no other allocation has.
 *
 * Expected numbers (tests/samples.rs checks them, and checks that Valgrind
 * counts the same for this source built natively with gcc):
 *
 *   total_blocks 15, total_bytes 11,022 (15 allocs, 12 frees)
 *   curr_blocks 3, curr_bytes 6,666, leaked at exit:
 *     1,111 bytes in 1 block  malloc   <- make_name  <- load_config <- main
 *     2,222 bytes in 1 block  calloc   <- new_table  <- build_index <- main
 *     3,333 bytes in 1 block  realloc  <- grow_buffer <- read_input <- main
 *   max_bytes 6,666 in 3 blocks: live bytes peak at exit
 *
 *   valgrind --leak-check=full ./leaky (gcc -g -O0 leaky.c -o leaky):
 *     total heap usage: 15 allocs, 12 frees, 11,022 bytes allocated
 *     definitely lost: 6,666 bytes in 3 blocks
 *
 * `main(void)` keeps wasi-libc from allocating argv tables, and unbuffered
 * stdout keeps glibc from allocating a stdio buffer, so native and wasm runs
 * count exactly the same blocks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *make_name(const char *prefix) {
    char *name = malloc(1111); /* leak 1 */
    strcpy(name, prefix);
    return name;
}

static char *load_config(void) { return make_name("config"); }

static int *new_table(void) {
    return calloc(101, 22); /* leak 2: 2,222 bytes */
}

static int build_index(void) {
    int *t = new_table();
    return t[7];
}

static char *grow_buffer(char *buf) {
    return realloc(buf, 3333); /* leak 3; frees the 1,500-byte block */
}

static char *read_input(void) {
    char *buf = malloc(1500);
    memset(buf, 'x', 1500);
    return grow_buffer(buf);
}

static int churn(void) {
    int sum = 0;
    /* 48 + 40 + 512 + 96 + 500 + 700 + 64..320 bytes, all freed. */
    char *a = malloc(48);
    int *b = calloc(10, 4);
    void *c = aligned_alloc(64, 512);
    void *d = NULL;
    if (posix_memalign(&d, 32, 96) != 0)
        return -1;
    char *e = malloc(500);
    e = realloc(e, 700);
    memset(a, 1, 48);
    sum += a[5] + b[3] + (int)((unsigned long)c % 64) + (int)((unsigned long)d % 32);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    for (int i = 1; i <= 5; i++) {
        char *p = malloc(64 * i);
        p[0] = (char)i;
        sum += p[0];
        free(p);
    }
    return sum;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int sum = churn();
    char *config = load_config();
    int first = build_index();
    char *input = read_input();
    printf("leaky: churn=%d config=%s index=%d input=%c\n", sum, config, first, input[0]);
    return 0;
}
