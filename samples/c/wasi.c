/* wasi.c: what `heapscope run` must pass through exactly as `wasmtime run`
 * does: arguments (argv[0] is the module's file name), the environment,
 * stdin, stdout, stderr, preopened directories and the exit code.
 *
 * Usage: wasi [FILE]   prints its arguments, $HEAPSCOPE_SAMPLE, the first
 * line of stdin and FILE's contents, writes a line to stderr, exits 7 (3
 * when FILE cannot be opened). Everything it allocates is freed; what
 * wasi-libc keeps (argv, environment and preopen tables) is suppressed by
 * heapscope's defaults, so nothing is reported as lost or reachable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    const char *v = getenv("HEAPSCOPE_SAMPLE");
    printf("env=%s\n", v ? v : "(unset)");
    char line[256];
    if (fgets(line, sizeof line, stdin))
        printf("stdin=%s", line);
    if (argc > 1) {
        FILE *f = fopen(argv[1], "r");
        if (!f) {
            fprintf(stderr, "wasi: cannot open %s\n", argv[1]);
            return 3;
        }
        char *buf = malloc(4096);
        size_t n = fread(buf, 1, 4095, f);
        buf[n] = 0;
        printf("file=%s", buf);
        free(buf);
        fclose(f);
    }
    fprintf(stderr, "wasi: done\n");
    return 7;
}
