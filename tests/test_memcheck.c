/* tests/test_memcheck.c — a plain (non-Criterion) test binary for valgrind:
 * two training steps of a small JiT (every model op forward and backward,
 * the arena growing on the first step and reused on the second, AdamW),
 * plus the Philox known-answer vector. Criterion's sandboxed children do not
 * run under valgrind, hence a standalone binary; ctest runs it as
 * `valgrind --error-exitcode=1 test_memcheck`. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/rng.h"
#include "train/model/jit.h"

int main(void) {
    uint32_t out[4];
    rng_philox4x32_10((const uint32_t[4]){0, 0, 0, 0}, (const uint32_t[2]){0, 0}, out);
    CHECK(out[0] == 0x6627e8d5u && out[3] == 0x9b00dbd8u, "Philox known-answer vector");

    JitConfig cfg;
    CHECK(jit_config_named("jit-tiny", &cfg) == 0, "jit-tiny exists");
    cfg.depth = 2, cfg.hidden = 24, cfg.heads = 2, cfg.in_context_len = 4, cfg.in_context_start = 1;
    cfg.img_size = 8, cfg.patch = 2, cfg.bottleneck = 6, cfg.dropout = 0.1f;
    JitModel m;
    jit_build(&m, &cfg, 5);
    rng_fill_normal(m.params.data, m.params.padded, 1, RNG_STREAM_TEST, 0, 0.0f, 0.1f);
    AdamW opt;
    adamw_init(&opt, &m.params, 0.9f, 0.95f, 1e-8f, 0.01f);
    Graph g;
    graph_init(&g, backend_cpu(), 256);
    g.training = true; /* exercise dropout too */
    const int B = 3;
    int y[3] = {0, 5, cfg.num_classes};
    float losses[2];
    for (int step = 0; step < 2; step++) {
        g.step = (uint64_t)step;
        Tensor *x = graph_new(&g, 4, B, 1, 8, 8), *z = graph_new(&g, 4, B, 1, 8, 8), *t = graph_new(&g, 1, B);
        rng_fill_uniform(x->data, x->numel, 2, RNG_STREAM_TEST, 0, -1, 1);
        rng_fill_normal(z->data, z->numel, 3, RNG_STREAM_TEST, 0, 0, 1);
        t->data[0] = 0.2f, t->data[1] = 0.7f, t->data[2] = 0.99f;
        params_zero_grad(&m.params);
        Tensor *loss = op_vloss(&g, jit_forward(&m, &g, z, t, y, NULL), x, t);
        graph_backward(&g, loss);
        adamw_step(&opt, &m.params, 1e-3f);
        losses[step] = loss->data[0];
        graph_reset(&g);
    }
    CHECK(isfinite(losses[0]) && isfinite(losses[1]), "finite losses");
    graph_free(&g);
    adamw_free(&opt);
    jit_free(&m);
    printf("test_memcheck: losses %.6f %.6f\n1 passed, 0 failed\n", losses[0], losses[1]);
    return 0;
}
