/*
 * wasteful.c: the allocation patterns heapscope's advice is about, on purpose.
 *
 *   append()  grows one buffer 16 bytes at a time with realloc: one malloc of
 *             16 bytes, then 100 reallocations of the same buffer, up to
 *             1,616 bytes (advice: reserve the capacity up front).
 *   scratch() allocates a 256-byte buffer, uses it and frees it, 5,000 times
 *             in a loop (advice: allocate it once and reuse it).
 *
 * Exact numbers (memcheck counting: a reallocation is a free and a new
 * block): 5,101 allocations, 5,101 frees, nothing live at exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *append(char *buf, size_t *len, const char *piece, size_t n) {
    buf = realloc(buf, *len + n);
    memcpy(buf + *len, piece, n);
    *len += n;
    return buf;
}

static unsigned scratch(int i) {
    unsigned char *tmp = malloc(256);
    memset(tmp, i & 0xff, 256);
    unsigned v = tmp[i % 256];
    free(tmp);
    return v;
}

int main(void) {
    size_t len = 16;
    char *buf = malloc(16);
    memset(buf, 'x', 16);
    for (int i = 0; i < 100; i++) {
        buf = append(buf, &len, "0123456789abcdef", 16);
    }
    unsigned sum = 0;
    for (int i = 0; i < 5000; i++) {
        sum += scratch(i);
    }
    printf("wasteful: buffer of %zu bytes, checksum %u\n", len, sum + (unsigned char)buf[len - 1]);
    free(buf);
    return 0;
}
