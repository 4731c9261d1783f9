/* tests/cuda_emu/emu_streams.cu — proof that the emulator orders streams
 * only as CUDA does: a kernel on a second stream that consumes a buffer
 * produced on the first is right on every seed when it waits on the
 * producer's event, and fails on every seed when the wait is missing (the
 * race detector names both kernels; a host that waits only for the
 * consumer's stream reads a buffer never written). And the interleaving of
 * unordered streams really varies with EMU_STREAM_SEED, and EMU_ORDER fixes it.
 * The same for the NCCL stand-in's all-reduce on a communication stream of
 * a buffer produced on the compute stream (emu_streams_nccl.cc).
 * Each scenario runs in a child process per seed (the seed is read at the
 * first queued work).
 *   emu_streams                    every scenario on seeds 1-8 (NCCL: 1-3), a table, exit 1 if any is wrong
 *   emu_streams SCENARIO WAIT      one scenario in this process (WAIT: 1 with the event wait, 0 without) */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cuda_emu/emu_child.h"

enum { N = 256, NSEEDS = 8 };

__global__ void k_produce(float *d, int n, float add) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) d[i] = (float)i + add;
}
__global__ void k_consume(const float *d, float *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = 2.0f * d[i];
}
__global__ void k_ticket(unsigned *counter, unsigned *ticket) {
    if (threadIdx.x == 0) *ticket = atomicAdd(counter, 1u);
}

/* Producer on s1 (two kernels: the second finishes the buffer), consumer on
 * s2, the host waiting for the device (sync 'd') or for s2 only ('s').
 * Exit 0 when out == 2 * (i + 1) everywhere, 4 when not. */
static void producer_consumer(int wait, char sync) {
    cudaStream_t s1, s2;
    CK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    cudaEvent_t ready;
    CK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    float *d, *out;
    CK(cudaMalloc(&d, N * sizeof(float)));
    CK(cudaMalloc(&out, N * sizeof(float)));
    k_produce<<<N / 64, 64, 0, s1>>>(d, N, 0.0f);
    k_produce<<<N / 64, 64, 0, s1>>>(d, N, 1.0f);
    CK(cudaEventRecord(ready, s1));
    if (wait) CK(cudaStreamWaitEvent(s2, ready, 0));
    k_consume<<<N / 64, 64, 0, s2>>>(d, out, N);
    CK(cudaGetLastError());
    if (sync == 'd') CK(cudaDeviceSynchronize());
    else CK(cudaStreamSynchronize(s2));
    static float h[N];
    CK(cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost));
    for (int i = 0; i < N; i++)
        if (h[i] != 2.0f * (float)(i + 1)) {
            fprintf(stderr, "emu_streams: out[%d] = %g, expected %g (the consumer ran before its producer)\n", i,
                    h[i], 2.0f * (float)(i + 1));
            exit(4);
        }
}

/* Two unordered streams take a ticket each: exit 10 when s1's kernel ran
 * first, 11 when s2's did. */
static void ticket_order(void) {
    cudaStream_t s1, s2;
    CK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    unsigned *c, *t1, *t2;
    CK(cudaMalloc(&c, sizeof *c));
    CK(cudaMalloc(&t1, sizeof *t1));
    CK(cudaMalloc(&t2, sizeof *t2));
    CK(cudaMemset(c, 0, sizeof *c));
    k_ticket<<<1, 32, 0, s1>>>(c, t1);
    k_ticket<<<1, 32, 0, s2>>>(c, t2);
    CK(cudaDeviceSynchronize());
    unsigned h1, h2;
    CK(cudaMemcpy(&h1, t1, sizeof h1, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(&h2, t2, sizeof h2, cudaMemcpyDeviceToHost));
    exit(h1 < h2 ? 10 : 11);
}

void emu_streams_nccl(int wait); /* emu_streams_nccl.cc */

static void run_scenario(const char *name, int wait) {
    if (!strcmp(name, "device")) producer_consumer(wait, 'd');
    else if (!strcmp(name, "nccl")) emu_streams_nccl(wait);
    else if (!strcmp(name, "stream")) producer_consumer(wait, 's');
    else if (!strcmp(name, "order")) ticket_order();
    else {
        fprintf(stderr, "emu_streams: no scenario %s\n", name);
        exit(2);
    }
}

/* A scenario in a child with EMU_STREAM_SEED=seed (and EMU_ORDER=order
 * when given): its exit status and stderr. */
struct ScenarioRun {
    const char *name;
    int wait, seed;
    const char *order;
};
static void scenario_main(void *arg) {
    const ScenarioRun *r = (const ScenarioRun *)arg;
    char s[16];
    snprintf(s, sizeof s, "%d", r->seed);
    setenv("EMU_STREAM_SEED", s, 1);
    if (r->order) setenv("EMU_ORDER", r->order, 1);
    run_scenario(r->name, r->wait);
}
static int run_child(const char *name, int wait, int seed, const char *order, char *err, size_t len) {
    ScenarioRun r = {name, wait, seed, order};
    return emu_run_child(scenario_main, &r, err, len);
}

int main(int argc, char **argv) {
    if (argc == 3) {
        run_scenario(argv[1], atoi(argv[2]));
        return 0;
    }
    static char err[1 << 16];
    int bad = 0;
    /* With the wait: right on every seed, both ways of waiting. Without:
     * a race report (device sync) or a wrong result (stream sync) on every seed. */
    const struct {
        const char *name;
        const char *expect; /* in the broken run's stderr */
        int seeds;          /* the NCCL one starts MPI in every child: fewer */
    } pc[] = {{"device", "cross-stream race", NSEEDS},
              {"stream", "the consumer ran before its producer", NSEEDS},
              {"nccl", "cross-stream race", 3}};
    for (int k = 0; k < 3; k++) {
        int ok_fixed = 0, ok_broken = 0;
        for (int seed = 1; seed <= pc[k].seeds; seed++) {
            int sf = run_child(pc[k].name, 1, seed, NULL, err, sizeof err);
            if (sf == 0) ok_fixed++;
            else printf("  %s with the wait, seed %d: status %d\n%s\n", pc[k].name, seed, sf, err);
            int sb = run_child(pc[k].name, 0, seed, NULL, err, sizeof err);
            if (sb != 0 && strstr(err, pc[k].expect)) ok_broken++;
            else printf("  %s without the wait, seed %d: status %d, expected \"%s\"\n%s\n", pc[k].name, seed, sb,
                        pc[k].expect, err);
            if (seed == 1 && sb != 0) printf("  %s without the wait: %.*s\n", pc[k].name, (int)strcspn(err, "\n"), err);
        }
        printf("%-8s with cudaStreamWaitEvent: right on %d/%d seeds; without: fails on %d/%d seeds\n", pc[k].name,
               ok_fixed, pc[k].seeds, ok_broken, pc[k].seeds);
        bad += ok_fixed != pc[k].seeds || ok_broken != pc[k].seeds;
    }
    /* The interleaving of unordered streams varies with the seed... */
    int first[2] = {0, 0};
    for (int seed = 1; seed <= NSEEDS; seed++) {
        int s = run_child("order", 0, seed, NULL, err, sizeof err);
        if (s == 10 || s == 11) first[s - 10]++;
        else printf("  order, seed %d: status %d\n%s\n", seed, s, err), bad++;
    }
    printf("order    unordered streams: s1 ran first on %d seeds, s2 on %d\n", first[0], first[1]);
    bad += !first[0] || !first[1];
    /* ...and EMU_ORDER fixes it: queue order, or the latest queued first. */
    int fwd = run_child("order", 0, 1, "forward", err, sizeof err);
    int rev = run_child("order", 0, 1, "reverse", err, sizeof err);
    printf("order    EMU_ORDER=forward: %s first; reverse: %s first\n", fwd == 10 ? "s1" : "s2", rev == 10 ? "s1" : "s2");
    bad += fwd != 10 || rev != 11;
    printf("emu_streams: %s\n", bad ? "FAIL" : "PASS");
    return bad != 0;
}
