/* tests/trainer_fixture.c — the trainer tests' toy data and tiny model (see
 * trainer_fixture.h). */
#include "trainer_fixture.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/rng.h"
#include "io/shards.h"

char fixture_dir[256];

void fixture_make_toy_data(const char *prefix) {
    snprintf(fixture_dir, sizeof fixture_dir, "/tmp/%s-XXXXXX", prefix);
    cr_assert(mkdtemp(fixture_dir) != NULL);
    const int n = 320, S = 16;
    uint8_t *img = malloc((size_t)n * S * S);
    int *lab = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) {
        int c = i % 4;
        lab[i] = c;
        for (int p = 0; p < S * S; p++) {
            int r = p / S, col = p % S;
            int in = r >= (c / 2) * 8 + 2 && r < (c / 2) * 8 + 6 && col >= (c % 2) * 8 + 2 && col < (c % 2) * 8 + 6;
            img[(size_t)i * S * S + p] =
                (uint8_t)(in ? 220 : 20 + (int)(30 * rng_uniform(3, RNG_STREAM_TEST, (uint64_t)(i * 256 + p))));
        }
    }
    const char *names[4] = {"tl", "tr", "bl", "br"};
    char dir[300];
    snprintf(dir, sizeof dir, "%s/data", fixture_dir);
    shards_write(dir, "toy", img, lab, n, 1, S, S, 128, 4, names);
    free(img);
    free(lab);
}

/* The toy data in RGB (the frozen networks read three channels): the
 * grey image in every channel, scaled differently, under fixture_dir/rgb. */
void fixture_make_rgb_data(const char *prefix) {
    fixture_make_toy_data(prefix);
    const int n = 64, S = 16;
    uint8_t *img = malloc((size_t)n * 3 * S * S);
    int *lab = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) {
        lab[i] = i % 4;
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < S * S; p++)
                img[((size_t)i * 3 + c) * S * S + p] =
                    (uint8_t)(255 * rng_uniform(5, RNG_STREAM_TEST, (uint64_t)((i * 3 + c) * 256 + p)) * (c + 1) / 3);
    }
    const char *names[4] = {"a", "b", "c", "d"};
    char dir[300];
    snprintf(dir, sizeof dir, "%s/rgb", fixture_dir);
    shards_write(dir, "rgb", img, lab, n, 3, S, S, 32, 4, names);
    free(img);
    free(lab);
}

Config fixture_tiny_config(const char *name, int sla2, const FixtureRun *o, int n_ov, char **ov) {
    static const FixtureRun none = {0};
    if (!o) o = &none;
    char run_extra[160] = "", dropout[64] = "";
    if (o->device) snprintf(run_extra, sizeof run_extra, ", device: %s, precision: %s", o->device,
                            o->precision ? o->precision : "auto");
    if (o->dropout) snprintf(dropout, sizeof dropout, ", dropout: %s", o->dropout);
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "run: {name: %s, out_dir: %s/%s, seed: 7%s}\n"
             "model: {name: jit-tiny, img_size: 16, patch: 4, depth: 2, hidden: 64, heads: 2, bottleneck: 16,\n"
             "        in_context_len: 4, in_context_start: 1, num_classes: 4, use_sla2: %s,\n"
             "        sla2_compression_ratio: 4, sla2_topk_ratio: 0.5%s}\n"
             "data: {train: %s/data, batch_size: %d, prefetch: 2}\n"
             "optim: %s\n"
             "train: {steps: 200, log_every: 50}\n"
             "sampling: {steps: %d, per_class: 2, cfg: 2.0}\n"
             "logging: {progress: false}\n%s",
             name, fixture_dir, name, run_extra, sla2 ? "true" : "false", dropout, fixture_dir,
             o->batch ? o->batch : 16, o->optim ? o->optim : "{lr: 2.0e-3, warmup_steps: 10, ema: [0.99]}",
             o->sampling_steps ? o->sampling_steps : 4, o->extra ? o->extra : "");
    Config c;
    config_load_string(&c, name, yaml, n_ov, ov);
    return c;
}
