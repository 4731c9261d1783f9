/* train/model/jit_configs.c — the named JiT configurations (jit.md's table) and
 * the tiny CPU configuration, plus the derived sizes and their checks. */
#include <string.h>

#include "core/check.h"
#include "train/model/jit.h"

typedef struct {
    const char *name;
    JitConfig cfg;
} NamedJit;

/* name, img, C, p, depth, D, H, d', ctx len, ctx start, classes, dropout */
#define JIT_ROW(nm, img_, c_, p_, depth_, d_, h_, bn_, start_, classes_, drop_)                            \
    {nm, {.img_size = img_, .in_channels = c_, .patch = p_, .depth = depth_, .hidden = d_, .heads = h_,       \
          .bottleneck = bn_, .in_context_len = 32, .in_context_start = start_, .num_classes = classes_,      \
          .dropout = drop_, .sla2_topk_ratio = 0.15f, .sla2_block_q = 8, .sla2_block_k = 8}}

static const NamedJit jit_named[] = {
    JIT_ROW("JiT-B/16", 256, 3, 16, 12, 768, 12, 128, 4, 1000, 0.0f),
    JIT_ROW("JiT-L/16", 256, 3, 16, 24, 1024, 16, 128, 8, 1000, 0.0f),
    JIT_ROW("JiT-H/16", 256, 3, 16, 32, 1280, 16, 256, 10, 1000, 0.2f),
    JIT_ROW("JiT-B/32", 512, 3, 32, 12, 768, 12, 128, 4, 1000, 0.0f),
    JIT_ROW("JiT-L/32", 512, 3, 32, 24, 1024, 16, 128, 8, 1000, 0.0f),
    JIT_ROW("JiT-H/32", 512, 3, 32, 32, 1280, 16, 256, 10, 1000, 0.2f),
    /* Ours, for the CPU: Fashion-MNIST padded to 32x32, 8x8 = 64 image tokens. */
    JIT_ROW("jit-tiny", 32, 1, 4, 6, 192, 3, 32, 2, 10, 0.0f),
};

int jit_config_named(const char *name, JitConfig *cfg) {
    for (size_t i = 0; i < sizeof jit_named / sizeof jit_named[0]; i++)
        if (strcmp(jit_named[i].name, name) == 0) {
            *cfg = jit_named[i].cfg;
            snprintf(cfg->name, sizeof cfg->name, "%s", name);
            jit_config_finish(cfg);
            return 0;
        }
    return -1;
}

const char *jit_config_list(void) { return "JiT-B/16, JiT-L/16, JiT-H/16, JiT-B/32, JiT-L/32, JiT-H/32, jit-tiny"; }

void jit_config_finish(JitConfig *c) {
    CHECK(c->img_size > 0 && c->patch > 0 && c->img_size % c->patch == 0,
          "model.img_size (%d) must be a positive multiple of model.patch (%d)", c->img_size, c->patch);
    CHECK(c->in_channels > 0, "model.in_channels must be positive, got %d", c->in_channels);
    CHECK(c->depth > 0, "model.depth must be positive, got %d", c->depth);
    CHECK(c->heads > 0 && c->hidden > 0 && c->hidden % c->heads == 0,
          "model.hidden (%d) must be a positive multiple of model.heads (%d)", c->hidden, c->heads);
    c->head_dim = c->hidden / c->heads;
    CHECK(c->head_dim % 4 == 0, "head dimension %d (hidden/heads) must be divisible by 4 for 2D RoPE", c->head_dim);
    CHECK(c->hidden % 4 == 0, "model.hidden (%d) must be divisible by 4 for the 2D sin-cos table", c->hidden);
    CHECK(c->bottleneck > 0, "model.bottleneck must be positive, got %d", c->bottleneck);
    CHECK(c->num_classes > 0, "model.num_classes must be positive, got %d", c->num_classes);
    CHECK(c->in_context_len >= 0, "model.in_context_len must be >= 0, got %d", c->in_context_len);
    CHECK(c->in_context_len == 0 || (c->in_context_start >= 0 && c->in_context_start < c->depth),
          "model.in_context_start (%d) must be a block index in [0, %d)", c->in_context_start, c->depth);
    CHECK(c->dropout >= 0.0f && c->dropout < 1.0f, "model.dropout must be in [0, 1), got %g", c->dropout);
    CHECK(c->depth <= JIT_MAX_DEPTH, "model.depth %d exceeds the supported %d", c->depth, JIT_MAX_DEPTH);
    if (c->use_sla2) {
        Sla2Config s = {.block_q = c->sla2_block_q, .block_k = c->sla2_block_k, .topk_ratio = c->sla2_topk_ratio,
                        .feature_map = c->sla2_feature_map};
        const char *err = sla2_config_error(&s);
        CHECK(err == NULL, "model: %s (sla2_topk_ratio %g, sla2 blocks %d/%d)", err, c->sla2_topk_ratio,
              c->sla2_block_q, c->sla2_block_k);
        CHECK(c->sla2_from_layer >= 0 && c->sla2_from_layer < c->depth,
              "model.sla2_from_layer (%d) must be a block index in [0, %d)", c->sla2_from_layer, c->depth);
        CHECK(c->sla2_n_layers >= 0 && c->sla2_n_layers <= c->depth, "model.sla2_layers lists %d blocks of %d",
              c->sla2_n_layers, c->depth);
        for (int i = 0; i < c->sla2_n_layers; i++)
            CHECK(c->sla2_layers[i] >= 0 && c->sla2_layers[i] < c->depth,
                  "model.sla2_layers[%d] = %d is not a block index in [0, %d)", i, c->sla2_layers[i], c->depth);
    }
    c->mlp_hidden = (int)(2.0 / 3.0 * 4 * c->hidden);
    c->grid = c->img_size / c->patch;
    c->tokens = c->grid * c->grid;
}

int jit_layer_uses_sla2(const JitConfig *c, int i) {
    if (!c->use_sla2) return 0;
    if (c->sla2_n_layers == 0) return i >= c->sla2_from_layer;
    for (int j = 0; j < c->sla2_n_layers; j++)
        if (c->sla2_layers[j] == i) return 1;
    return 0;
}
