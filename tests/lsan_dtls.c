/* tests/lsan_dtls.c — LeakSanitizer survives a dynamic TLS block that starts
 * 16 bytes past a page boundary (the sanitizer build only; why it would not:
 * core/sanitizer_options.c). Each try is a forked child that makes k
 * allocations of the block's size, dlopens LIB, touches its TLS variable (so
 * glibc mallocs the block just after them), reports the block's address and
 * exits normally, running LeakSanitizer's check at exit. k goes up from 0
 * until a block lands on the offset; that child must have exited 0. Without
 * intercept_tls_get_addr=0 the GCC 12 runtime's tracer dies there ("Tracer
 * caught signal 11 ... LeakSanitizer has encountered a fatal error", exit 1).
 *   usage: lsan_dtls LIB     exit 0: passed, 1: failed, 77: never placed */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_K 512 /* 4 turns of the 128 positions of a 32-byte chunk in a page */
#define FATAL_OFFSET 16 /* sizeof glibc 2.19's TLS header, the runtime's guess */

/* The child: returns from main, so the leak check at exit runs. */
static int child(const char *lib, int k, int fd) {
    void **keep = malloc(sizeof(void *) * (k + 1));
    for (int i = 0; i < k; i++) keep[i] = malloc(16);
    void *h = dlopen(lib, RTLD_NOW);
    if (!h) {
        fprintf(stderr, "lsan_dtls: dlopen %s: %s\n", lib, dlerror());
        for (int i = 0; i < k; i++) free(keep[i]);
        free(keep);
        return 3;
    }
    long *(*var)(void) = (long *(*)(void))dlsym(h, "lsan_dtls_var");
    uintptr_t at = var ? (uintptr_t)var() : 0;
    if (write(fd, &at, sizeof at) != (ssize_t)sizeof at) return 4;
    close(fd);
    for (int i = 0; i < k; i++) free(keep[i]);
    free(keep);
    return 0; /* the module stays loaded: its block is in this thread's DTLS at exit */
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: lsan_dtls LIB\n");
        return 2;
    }
    for (int k = 0; k < MAX_K; k++) {
        int fds[2];
        if (pipe(fds) != 0) return 2;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) return 2;
        if (pid == 0) {
            close(fds[0]);
            return child(argv[1], k, fds[1]);
        }
        close(fds[1]);
        uintptr_t at = 0;
        ssize_t got = read(fds[0], &at, sizeof at);
        close(fds[0]);
        int status;
        if (waitpid(pid, &status, 0) != pid) return 2;
        int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (got != (ssize_t)sizeof at || at == 0) {
            fprintf(stderr, "lsan_dtls: the child (k = %d) reported no block\n", k);
            return 1;
        }
        if (at % 4096 != FATAL_OFFSET) {
            if (!ok) {
                fprintf(stderr, "lsan_dtls: the child (k = %d, block %p) failed\n", k, (void *)at);
                return 1;
            }
            continue;
        }
        if (!ok) {
            fprintf(stderr,
                    "lsan_dtls: FAIL: with the dynamic TLS block at %p (4096 n + %d, after %d allocations), the "
                    "child's exit failed (%s %d): LeakSanitizer's tracer died reading the block's guessed range\n",
                    (void *)at, FATAL_OFFSET, k, WIFEXITED(status) ? "exit" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            return 1;
        }
        printf("lsan_dtls: ok, a dynamic TLS block at %p (4096 n + %d, after %d allocations) and a clean exit under "
               "LeakSanitizer\n",
               (void *)at, FATAL_OFFSET, k);
        return 0;
    }
    printf("lsan_dtls: no block landed on 4096 n + %d in %d tries (the allocator differs): nothing checked\n",
           FATAL_OFFSET, MAX_K);
    return 77;
}
