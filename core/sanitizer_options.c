/* core/sanitizer_options.c — the AddressSanitizer runtime's defaults in the
 * sanitizer build (-DJIT_SANITIZE=ON). CMakeLists.txt compiles this file into
 * every program and test (a source of the `jitcore` interface target, not of
 * an archive, whose member nothing would pull in); the runtime reads the
 * string at start-up, before main, and ASAN_OPTIONS still overrides it.
 *
 * intercept_tls_get_addr=0: LeakSanitizer's fatal error at exit.
 *
 * The runtime intercepts __tls_get_addr to note, per thread, where each
 * dlopen'd module's dynamic TLS block lies, and LeakSanitizer scans those
 * ranges for heap pointers at exit. To size a block it guesses the glibc
 * layout: a block that starts 16 bytes past a 4096-byte boundary is taken to
 * begin with glibc 2.19-2.24's header {start, size}, and the two words before
 * it are read as the block's range. Since glibc 2.25 the block is a plain
 * malloc (Debian 12: glibc 2.36), so those two words are ASan's own chunk
 * header, and the "range" is garbage (seen: {0xbd4, 0x400001d02}). At exit,
 * LeakSanitizer's stop-the-world tracer scans it and dies:
 *   Tracer caught signal 11: addr=0xbd8 ... (in __lsan::ScanRangeForPointers)
 *   LeakSanitizer has encountered a fatal error.
 * and the program exits 1 after doing all its work. GCC 12's libasan (Debian
 * 12's libasan8) has the guess; later compiler-rt asks the allocator for the
 * block's bounds instead. Known upstream: github.com/google/sanitizers/issues/1322.
 *
 * In our programs the block is libOpenCL's (the OpenCL ICD loader): Open
 * MPI's topology discovery in MPI_Init (hwloc) loads hwloc's OpenCL plugin
 * (Debian's libhwloc-plugins), whose call of clGetPlatformIDs touches the
 * loader's 4-byte TLS, so the main thread gets one dynamic TLS block, a
 * 32-byte ASan chunk like any allocation of up to 16 bytes. One position in
 * 128 of such chunks is fatal, and where the block lands depends on how many
 * allocations of that size came before it: that differs between machines
 * (what hwloc and Open MPI find there) and can differ between runs (Open
 * MPI's threads allocate at the same time). So one machine never fails, and
 * another failed one run in four (issue 24); here, about 120 extra 16-byte
 * allocations before MPI_Init (the exact count shifts with the build) make
 * jit-train fail every time. Threads alive at exit play no part: the tracer
 * stops them (jit-train joins its prefetch thread before exit, Open MPI joins
 * its threads in MPI_Finalize; only OpenMP's idle pool workers remain).
 *
 * Nothing is lost with the interception off. This runtime cannot size
 * glibc >= 2.25's blocks anyway: it records them with size 0 ("Can't guess
 * glibc version") unless it misreads them as above. LeakSanitizer reaches
 * the blocks as heap chunks all the same (glibc's DTV points to them): a heap
 * pointer held only in a dlopen'd library's __thread variable is not reported
 * as leaked, with the interception on or off, and the same allocation
 * dropped is (checked by hand with GCC 12.2 and glibc 2.36).
 * tests/lsan_dtls.c places such a block on the fatal offset and exits under
 * LeakSanitizer: it fails without this line. */
const char *__asan_default_options(void);

const char *__asan_default_options(void) { return "intercept_tls_get_addr=0"; }
