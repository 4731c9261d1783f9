/* train/losses/dinov2.c — DINOv2 ViT-B/14 (dinov2.h). */
#include "train/losses/dinov2.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/ops.h"
#include "kernels/bicubic.h"
#include "train/losses/frozen.h"

/* timm's ImageNet mean and std (RGB), DINOv2's input normalisation. */
static const float dino_mean[3] = {0.485f, 0.456f, 0.406f};
static const float dino_std[3] = {0.229f, 0.224f, 0.225f};

#define PE_K (3 * DINO_PATCH * DINO_PATCH)


void dino_init(DinoNet *n, int div) {
    CHECK(div >= 1 && div <= 64 && (div & (div - 1)) == 0, "DINOv2: width divisor %d is not a power of two in [1, 64]",
          div);
    memset(n, 0, sizeof *n);
    n->div = div;
    int D = n->dim = DINO_WIDTH / div, P = DINO_POS_GRID * DINO_POS_GRID + 1;
    ParamStore *ps = &n->w;
    params_create(ps);
    float lin = 1.0f / sqrtf((float)D), lin4 = 1.0f / sqrtf(4.0f * D);
    params_add(ps, "cls_token", 3, (const int[]){1, 1, D}, INIT_NORMAL, 0.02f, false);
    params_add(ps, "pos_embed", 3, (const int[]){1, P, D}, INIT_NORMAL, 0.02f, false);
    params_add(ps, "patch_embed.proj.weight", 4, (const int[]){D, 3, DINO_PATCH, DINO_PATCH}, INIT_NORMAL,
               1.0f / sqrtf((float)PE_K), false);
    params_add(ps, "patch_embed.proj.bias", 1, (const int[]){D}, INIT_NORMAL, 0.02f, false);
    char name[PARAM_NAME_MAX];
    struct {
        const char *key;
        int rows, cols; /* cols 0: a vector */
        ParamInit init;
        float arg;
    } parts[] = {
        {"norm1.weight", D, 0, INIT_ONE, 0},         {"norm1.bias", D, 0, INIT_ZERO, 0},
        {"attn.qkv.weight", 3 * D, D, INIT_NORMAL, lin}, {"attn.qkv.bias", 3 * D, 0, INIT_NORMAL, 0.02f},
        {"attn.proj.weight", D, D, INIT_NORMAL, lin}, {"attn.proj.bias", D, 0, INIT_NORMAL, 0.02f},
        {"ls1.gamma", D, 0, INIT_CONSTANT, 0.1f},     {"norm2.weight", D, 0, INIT_ONE, 0},
        {"norm2.bias", D, 0, INIT_ZERO, 0},           {"mlp.fc1.weight", 4 * D, D, INIT_NORMAL, lin},
        {"mlp.fc1.bias", 4 * D, 0, INIT_NORMAL, 0.02f}, {"mlp.fc2.weight", D, 4 * D, INIT_NORMAL, lin4},
        {"mlp.fc2.bias", D, 0, INIT_NORMAL, 0.02f},   {"ls2.gamma", D, 0, INIT_CONSTANT, 0.1f},
    };
    for (int i = 0; i < DINO_DEPTH; i++)
        for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
            snprintf(name, sizeof name, "blocks.%d.%s", i, parts[k].key);
            int nd = parts[k].cols ? 2 : 1;
            params_add(ps, name, nd, (const int[]){parts[k].rows, parts[k].cols}, parts[k].init, parts[k].arg, false);
        }
    params_add(ps, "norm.weight", 1, (const int[]){D}, INIT_ONE, 0, false);
    params_add(ps, "norm.bias", 1, (const int[]){D}, INIT_ZERO, 0, false);
    params_alloc(ps);
}

/* Point the block and table tensors at the stores' views (after params_alloc
 * and again after moving to a device). */
static void dino_views(DinoNet *n) {
    ParamStore *ps = &n->w;
    char name[PARAM_NAME_MAX];
#define DINO_GET(field, key)                                     \
    snprintf(name, sizeof name, "blocks.%d." key, i);            \
    b->field = params_get(ps, name)
    for (int i = 0; i < DINO_DEPTH; i++) {
        DinoBlock *b = &n->blk[i];
        DINO_GET(norm1_w, "norm1.weight"); DINO_GET(norm1_b, "norm1.bias");
        DINO_GET(qkv_w, "attn.qkv.weight"); DINO_GET(qkv_b, "attn.qkv.bias");
        DINO_GET(proj_w, "attn.proj.weight"); DINO_GET(proj_b, "attn.proj.bias");
        DINO_GET(ls1, "ls1.gamma");
        DINO_GET(norm2_w, "norm2.weight"); DINO_GET(norm2_b, "norm2.bias");
        DINO_GET(fc1_w, "mlp.fc1.weight"); DINO_GET(fc1_b, "mlp.fc1.bias");
        DINO_GET(fc2_w, "mlp.fc2.weight"); DINO_GET(fc2_b, "mlp.fc2.bias");
        DINO_GET(ls2, "ls2.gamma");
    }
#undef DINO_GET
    n->norm_w = params_get(ps, "norm.weight");
    n->norm_b = params_get(ps, "norm.bias");
    frozen_views(ps);
    if (n->grid) {
        n->pe_w = params_get(&n->prep, "pe_weight");
        n->pe_b = params_get(&n->prep, "pe_bias");
        n->cls_pos = params_get(&n->prep, "cls_pos");
        n->patch_pos = params_get(&n->prep, "patch_pos");
        frozen_views(&n->prep);
    }
}

int dino_file_div(const char *path, const char *what) {
    int dims[8];
    int nd = frozen_dataset_shape(path, what, "dinov2/cls_token", dims, "is it the right file?");
    int D = nd == 3 ? dims[2] : 0;
    int div = D > 0 && DINO_WIDTH % D == 0 ? DINO_WIDTH / D : 0;
    CHECK(div > 0 && div <= 64 && (div & (div - 1)) == 0 && D % DINO_HEADS == 0,
          "%s = %s: dinov2/cls_token has width %d: DINOv2 ViT-B/14 has 768 (or 768 / a power of two)", what, path, D);
    return div;
}

void dino_load(DinoNet *n, const char *path, const char *what) { frozen_load_group(&n->w, path, what, "dinov2"); }

void dino_init_random(DinoNet *n, uint64_t seed) { params_init(&n->w, seed); }

/* The folded patch embedding and the position tables, on the host, from
 * the loaded weights (double sums: the tables are made once). */
static void dino_derive(DinoNet *n) {
    const ParamStore *ps = &n->w;
    int D = n->dim, G = n->grid, M = DINO_POS_GRID;
    const float *W = ps->host + ps->info[params_find(ps, "patch_embed.proj.weight")].offset;
    const float *bias = ps->host + ps->info[params_find(ps, "patch_embed.proj.bias")].offset;
    const float *cls = ps->host + ps->info[params_find(ps, "cls_token")].offset;
    const float *pos = ps->host + ps->info[params_find(ps, "pos_embed")].offset;
    ParamStore *pp = &n->prep;
    float *pw = pp->host + pp->info[0].offset, *pb = pp->host + pp->info[1].offset;
    float *cp = pp->host + pp->info[2].offset, *tp = pp->host + pp->info[3].offset;
    /* conv((v - m) / s) with v = (x + 1) / 2 = conv'(x): weight W / (2 s_c),
     * bias b + sum_c (0.5 - m_c) / s_c sum_k W[o, c, k] */
    for (int o = 0; o < D; o++) {
        double b = bias[o];
        for (int c = 0; c < 3; c++) {
            double sum = 0.0;
            for (int k = 0; k < DINO_PATCH * DINO_PATCH; k++) {
                size_t i = (size_t)o * PE_K + (size_t)c * DINO_PATCH * DINO_PATCH + k;
                pw[i] = (float)(W[i] / (2.0 * dino_std[c]));
                sum += W[i];
            }
            b += sum * (0.5 - dino_mean[c]) / dino_std[c];
        }
        pb[o] = (float)b;
    }
    for (int d = 0; d < D; d++) cp[d] = cls[d] + pos[d];
    /* interpolate(scale_factor=(G + 0.1) / M): source step M / (G + 0.1) */
    float r = (float)(1.0 / ((G + 0.1) / M));
    for (int i = 0; i < G; i++) {
        int iy[4], ix[4];
        float wy[4], wx[4];
        bicubic_taps(i, r, M, iy, wy);
        for (int j = 0; j < G; j++) {
            bicubic_taps(j, r, M, ix, wx);
            float *out = tp + ((size_t)i * G + j) * D;
            for (int d = 0; d < D; d++) {
                double s = 0.0;
                for (int a = 0; a < 4; a++)
                    for (int b = 0; b < 4; b++)
                        s += (double)wy[a] * wx[b] * pos[(size_t)(1 + iy[a] * M + ix[b]) * D + d];
                out[d] = (float)s;
            }
        }
    }
}

void dino_prepare(DinoNet *n, int grid, const Backend *be) {
    CHECK(grid >= 1 && grid <= 64, "DINOv2: an output grid of %d x %d tokens is outside 1..64", grid, grid);
    CHECK(n->grid == 0, "DINOv2: dino_prepare runs once");
    n->grid = grid;
    int D = n->dim;
    params_create(&n->prep);
    params_add(&n->prep, "pe_weight", 2, (const int[]){D, PE_K}, INIT_ZERO, 0, false);
    params_add(&n->prep, "pe_bias", 1, (const int[]){D}, INIT_ZERO, 0, false);
    params_add(&n->prep, "cls_pos", 2, (const int[]){1, D}, INIT_ZERO, 0, false);
    params_add(&n->prep, "patch_pos", 2, (const int[]){grid * grid, D}, INIT_ZERO, 0, false);
    params_alloc(&n->prep);
    dino_derive(n);
    params_to_device(&n->w, be->mem);
    params_to_device(&n->prep, be->mem);
    dino_views(n);
}

void dino_free(DinoNet *n) {
    params_destroy(&n->w);
    if (n->grid) params_destroy(&n->prep);
    memset(n, 0, sizeof *n);
}

/* LayerScale's gamma [D] as op_gated_add's per-sample gate [B, D]. */
static Tensor *rows_of(Graph *g, const Tensor *v, int B) {
    int D = (int)v->numel;
    Tensor *r = graph_new(g, 2, B, D);
    for (int b = 0; b < B; b++) g->be->mem->copy(r->data + (size_t)b * D, v->data, sizeof(float) * (size_t)D);
    return r;
}

static Tensor *dino_block(Graph *g, const DinoBlock *b, Tensor *x) {
    int B = x->shape[0];
    Tensor *h = op_layernorm(g, x, b->norm1_w, b->norm1_b, DINO_LN_EPS);
    Tensor *q, *k, *v;
    op_qkv_split(g, op_linear(g, h, b->qkv_w, b->qkv_b), DINO_HEADS, &q, &k, &v);
    Tensor *a = op_linear(g, op_attention(g, q, k, v), b->proj_w, b->proj_b);
    x = op_gated_add(g, x, rows_of(g, b->ls1, B), a);
    h = op_layernorm(g, x, b->norm2_w, b->norm2_b, DINO_LN_EPS);
    h = op_linear(g, op_gelu(g, op_linear(g, h, b->fc1_w, b->fc1_b)), b->fc2_w, b->fc2_b);
    return op_gated_add(g, x, rows_of(g, b->ls2, B), h);
}

Tensor *dino_features(Graph *g, const DinoNet *n, Tensor *img) {
    CHECK(n->grid > 0, "DINOv2: dino_prepare before dino_features");
    CHECK_SHAPE(img, 4, -1, 3, -1, -1);
    int B = img->shape[0], R = DINO_PATCH * n->grid, D = n->dim;
    Tensor *x = op_resize_bicubic(g, img, R, R, 0.0f, 0.0f);
    x = op_linear(g, op_unfold(g, x, DINO_PATCH, DINO_PATCH, 0), n->pe_w, n->pe_b);
    x = op_add_rows(g, x, n->patch_pos);
    Tensor *zero = graph_new(g, 2, B, D); /* the CLS token is the same for every sample */
    g->be->mem->zero(zero->data, sizeof(float) * (size_t)B * D);
    x = op_incontext_prepend(g, x, zero, n->cls_pos);
    for (int i = 0; i < DINO_DEPTH; i++) x = dino_block(g, &n->blk[i], x);
    return op_incontext_strip(g, op_layernorm(g, x, n->norm_w, n->norm_b, DINO_LN_EPS), 1);
}
