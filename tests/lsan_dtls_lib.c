/* tests/lsan_dtls_lib.c — a shared library with a thread-local variable for
 * tests/lsan_dtls.c: dlopen'd, its TLS is dynamic (a block glibc mallocs at
 * the first __tls_get_addr of each thread), like libOpenCL's in MPI_Init. */
long *lsan_dtls_var(void);

static __thread long lsan_dtls_block[2]; /* 16 bytes: a 32-byte ASan chunk */

long *lsan_dtls_var(void) { return lsan_dtls_block; }
