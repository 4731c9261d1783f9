/* tests/test_config.c — the YAML run configuration: defaults, every file in
 * configs/ loads and survives config_write -> load unchanged (byte for byte),
 * each kind of mistake gives its message with the right FILE:LINE:COL and
 * key path, model.name is applied first whatever the key order,
 * sla2_compression_ratio sets both block sizes, and command-line overrides
 * (scalars, lists, new keys, errors). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/config/config.h"

static char err[2048];

static int load(Config *c, const char *yaml, int n, char **ov) {
    err[0] = '\0';
    return config_try_load_string(c, "t.yaml", yaml, n, ov, err, sizeof err);
}

/* The load fails with exactly `want`. */
static void expect_error(const char *yaml, const char *want) {
    Config c;
    cr_assert_eq(load(&c, yaml, 0, NULL), -1, "loaded but should fail with: %s\n---\n%s", want, yaml);
    cr_expect(strcmp(err, want) == 0, "for:\n%s\ngot  '%s'\nwant '%s'", yaml, err, want);
}

/* The load fails with a message starting with `want`. */
static void expect_error_prefix(const char *yaml, const char *want) {
    Config c;
    cr_assert_eq(load(&c, yaml, 0, NULL), -1, "loaded but should fail with: %s\n---\n%s", want, yaml);
    cr_expect(strncmp(err, want, strlen(want)) == 0, "got '%s'\nwant '%s...'", err, want);
}

static void expect_override_error(const char *yaml, char *ov, const char *want) {
    Config c;
    cr_assert_eq(load(&c, yaml, 1, &ov), -1, "override %s should fail", ov);
    cr_expect(strcmp(err, want) == 0, "got  '%s'\nwant '%s'", err, want);
}

/* Two configurations equal in every byte except where they came from. */
static void expect_same(const Config *a, const Config *b, const char *what) {
    Config x = *a, y = *b;
    memset(x.source, 0, sizeof x.source);
    memset(y.source, 0, sizeof y.source);
    cr_expect(memcmp(&x, &y, sizeof x) == 0, "%s: configurations differ", what);
}

/* config_write, then load the text back: the same Config. */
static void expect_round_trip(const Config *c, const char *what) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    config_write(c, f);
    fclose(f);
    Config back;
    int rc = config_try_load_string(&back, "written.yaml", text, 0, NULL, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: written config does not load: %s\n%s", what, err, text);
    expect_same(c, &back, what);
    free(text);
}

Test(config, defaults_are_valid_and_equal_an_empty_file) {
    Config d, e;
    config_defaults(&d);
    cr_expect_str_eq(d.model_name, "jit-tiny");
    cr_expect_eq(d.model.hidden, 192);
    cr_expect_eq(d.model.use_sla2, 0);
    cr_expect_str_eq(d.run_name, "run");
    cr_expect_str_eq(d.out_dir, "runs/run");
    cr_expect_str_eq(d.device, "cpu");
    cr_expect_eq(d.precision, PRECISION_AUTO);
    cr_expect_eq(d.batch_size, 32);
    cr_expect_eq(d.n_ema, 1);
    cr_expect_float_eq(d.ema[0], 0.9999f, 0);
    cr_expect_eq(d.progress, -1);
    cr_expect_eq(d.n_callbacks, 0);
    cr_assert_eq(load(&e, "", 0, NULL), 0, "%s", err);
    expect_same(&d, &e, "empty file");
    cr_assert_eq(load(&e, "# only a comment\n", 0, NULL), 0, "%s", err);
    expect_same(&d, &e, "comment only");
    cr_assert_eq(load(&e, "model:\ncallbacks:\n", 0, NULL), 0, "%s", err);
    expect_same(&d, &e, "empty sections");
    cr_expect_str_eq(e.source, "t.yaml");
    expect_round_trip(&d, "defaults");
}

Test(config, every_provided_config_loads_and_round_trips) {
    char dir[512], path[1024];
    snprintf(dir, sizeof dir, "%s/configs", JIT_SOURCE_DIR);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        Config c;
        cr_assert_eq(config_try_load(&c, path, 0, NULL, err, sizeof err), 0, "%s", err);
        cr_expect_str_eq(c.source, path);
        expect_round_trip(&c, e->d_name);
        n++;
    }
    closedir(d);
    cr_expect_geq(n, 9, "only %d configs found in %s", n, dir);
}

static void load_provided(Config *c, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/configs/%s", JIT_SOURCE_DIR, name);
    cr_assert_eq(config_try_load(c, path, 0, NULL, err, sizeof err), 0, "%s", err);
}

Test(config, provided_configs_say_what_they_should) {
    Config c;
    load_provided(&c, "fmnist-tiny.yaml");
    cr_expect_str_eq(c.run_name, "fmnist-tiny");
    cr_expect_eq(c.model.use_sla2, 1);
    cr_expect_eq(c.model.sla2_block_q, 16);
    cr_expect_eq(c.model.sla2_block_k, 16);
    cr_expect_float_eq(c.model.sla2_topk_ratio, 0.5f, 0);
    cr_expect_eq(c.steps, 1500);
    cr_expect_eq(c.n_callbacks, 3);
    cr_expect_eq(c.callbacks[0].type, CB_ROUTER_SCHEDULER);
    cr_expect_eq(c.callbacks[0].ramp, RAMP_COSINE);
    cr_expect_eq(c.callbacks[0].layer, -1);
    cr_expect_eq(c.callbacks[0].warmup_steps, 500);
    cr_expect_eq(c.callbacks[1].type, CB_SLA2_QAT);
    cr_expect_eq(c.callbacks[1].enable_step, 1000);
    cr_expect_eq(c.callbacks[2].type, CB_QUANT_MONITOR);
    cr_expect_eq(c.callbacks[2].every, 100);
    cr_expect_float_eq(c.cfg_scale, 2.0f, 0);
    cr_expect_eq(c.sample_steps, 30);

    Config full;
    load_provided(&full, "fmnist-tiny-full.yaml");
    cr_expect_eq(full.model.use_sla2, 0);
    cr_expect_eq(full.n_callbacks, 0);
    /* The twins differ only in the SLA2 switch, the callbacks and the names. */
    full.model.use_sla2 = 1;
    full.model.sla2_block_q = full.model.sla2_block_k = 16;
    full.model.sla2_topk_ratio = 0.5f;
    memcpy(full.run_name, c.run_name, sizeof c.run_name);
    memcpy(full.out_dir, c.out_dir, sizeof c.out_dir);
    full.n_callbacks = c.n_callbacks;
    memcpy(full.callbacks, c.callbacks, sizeof c.callbacks);
    expect_same(&c, &full, "fmnist-tiny vs fmnist-tiny-full");

    load_provided(&c, "jit-b16.yaml");
    cr_expect_eq(c.model.hidden, 768);
    cr_expect_float_eq(c.lr, 2e-4f, 0);
    cr_expect_eq(c.n_ema, 2);
    cr_expect_float_eq(c.cfg_scale, 2.9f, 0);
    cr_expect_str_eq(c.device, "cuda");
    load_provided(&c, "jit-h16-sla2.yaml");
    cr_expect_eq(c.model.depth, 32);
    cr_expect_float_eq(c.model.dropout, 0.2f, 0);
    cr_expect_eq(c.model.sla2_block_q, 32);
    cr_expect_eq(c.n_callbacks, 3);
}

Test(config, pixelgen_seed_config_trains_all_three_losses, .init = cr_redirect_stderr) {
    Config c;
    load_provided(&c, "jit_b_pixel_bs64_repa_4_adamw_lpips_pdino_sla2.yaml");
    cr_expect_float_eq(c.repa_weight, 0.5f, 0);
    cr_expect_float_eq(c.lpips_weight, 0.1f, 0);
    cr_expect_float_eq(c.pdino_weight, 0.01f, 0);
    cr_expect_eq(c.align_layer, 4, "repa_4: the tokens entering block 4");
    cr_expect_eq(c.model.repa_dim, 768, "the REPA projector aligns to DINOv2-B/14's width");
    cr_expect_eq(c.model.repa_layer, 4);
    cr_expect_eq(c.pdino_gating, PDINO_RELEASED);
    cr_expect_eq(c.adaptive_start, 400000);
    cr_expect_eq(c.adaptive_every, 50);
    cr_expect_eq(c.model.sla2_block_q, 8);
    cr_expect_eq(c.model.sla2_enable_qat, 1);
    cr_expect_str_eq(c.vgg_weights, "models/pixelgen/vgg16.h5");
    cr_expect_str_eq(c.dino_weights, "models/pixelgen/dinov2_vitb14.h5");
    cr_expect_float_eq(c.percept_t_threshold, 0.3f, 0);
    fflush(stderr);
    char buf[2048] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, cr_get_redirected_stderr());
    buf[n] = '\0';
    cr_expect(!strstr(buf, "IGNORED"), "no term is ignored any more: %s", buf);
}

Test(config, repa_off_means_no_projector) {
    Config c;
    load_provided(&c, "jit-b16.yaml");
    cr_expect_eq(c.model.repa_dim, 0);
}

Test(config, yaml_syntax_errors_name_the_place) {
    expect_error_prefix("run:\n  name: [a, b\nmodel:\n  depth: 4\n", "t.yaml:3:6: YAML syntax error: ");
    expect_error_prefix("optim:\n  lr: 1\n lr2: 3\n", "t.yaml:3:2: YAML syntax error: ");
    expect_error_prefix("optim:\n\tlr: 1\n",
                        "t.yaml:2:1: YAML syntax error: found character that cannot start any token");
    expect_error("optim:\n  lr: 1\n  lr: 2\n", "t.yaml:3:3: duplicate key 'optim.lr' (first at line 2, column 3)");
    expect_error("run: &a {name: x}\nmodel: *a\n",
                 "t.yaml:2:8: YAML aliases (*a) are not supported here; write the value out");
    expect_error("a: 1\n---\nb: 2\n", "t.yaml:2:1: a configuration is one YAML document; found a second one (---)");
    expect_error("- 1\n- 2\n",
                 "t.yaml:1:1: a configuration is a map of sections (run:, model:, optim:, ...), got a list");
}

Test(config, unknown_keys_list_the_known_ones) {
    expect_error("optim:\n  lr: 1.0e-4\n  lrr: 3\n",
                 "t.yaml:3:3: unknown key 'optim.lrr' (known under optim: lr, betas, eps, weight_decay, warmup_steps, "
                 "schedule, min_lr, grad_clip, grad_accum, ema, "
                 "ema_warmup, official_warmup, official_decay_set)");
    expect_error("run:\n  name: x\noptimizer:\n  lr: 1\n",
                 "t.yaml:3:1: unknown key 'optimizer' (known at the top level: run, model, data, optim, train, "
                 "diffusion, sampling, logging, losses, dist, eval, callbacks)");
    expect_error("model:\n  use_sla2: true\ncallbacks:\n  - type: SLA2QATCallback\n    enable_step: 5\n    every: 3\n",
                 "t.yaml:6:5: unknown key 'callbacks[0].every' (known for SLA2QATCallback: type, enable_step)");
}

Test(config, wrong_types) {
    expect_error("run:\n  seed: 1\noptim:\n  lr: fast\n", "t.yaml:4:7: optim.lr: expected a number, got 'fast'");
    expect_error("data:\n  batch_size: 1.5\n", "t.yaml:2:15: data.batch_size: expected an integer, got '1.5'");
    expect_error("optim:\n  betas: 0.9\n", "t.yaml:2:10: optim.betas: expected a list [beta1, beta2], got '0.9'");
    expect_error("optim:\n  lr: [1, 2]\n", "t.yaml:2:7: optim.lr: expected a number, got a list");
    expect_error("optim:\n  lr: \"1e-4\"\n",
                 "t.yaml:2:7: optim.lr: expected a number, got the quoted string '1e-4' (write it without quotes)");
    expect_error("model:\n  use_sla2: maybe\n", "t.yaml:2:13: model.use_sla2: expected true or false, got 'maybe'");
    expect_error("optim: 3\n", "t.yaml:1:8: optim: expected a map of settings (lr, betas, eps, weight_decay, "
                               "warmup_steps, schedule, min_lr, grad_clip, grad_accum, ema, "
                 "ema_warmup, official_warmup, official_decay_set), got '3'");
    expect_error("optim:\n  ema: [0.9, [0.5]]\n", "t.yaml:2:14: optim.ema[1]: expected a number, got a list");
    expect_error("run:\n  name:\n", "t.yaml:2:8: run.name: expected a string, got an empty value");
    expect_error("train:\n  steps: 99999999999\n", "t.yaml:2:10: train.steps: integer out of range, got '99999999999'");
    expect_error(
        "callbacks: {type: x}\n",
        "t.yaml:1:12: callbacks: expected a list of callbacks (- type: RouterParameterScheduler, ...), got a map");
}

Test(config, out_of_range_values) {
    expect_error("data:\n  batch_size: 0\n", "t.yaml:2:15: data.batch_size: must be in [1, 65536], got 0");
    expect_error("diffusion:\n  label_drop: 1.0\n", "t.yaml:2:15: diffusion.label_drop: must be in [0, 1), got 1.0");
    expect_error("diffusion:\n  p_std: 0\n", "t.yaml:2:10: diffusion.p_std: must be > 0, got 0");
    expect_error("optim:\n  ema: [0.9999, 1]\n", "t.yaml:2:17: optim.ema[1]: must be in [0, 1), got 1");
    expect_error("optim:\n  ema: []\n", "t.yaml:2:8: optim.ema: expected 1 to 4 entries of EMA decays, got 0");
    expect_error("optim:\n  betas: [0.9, 0.95, 0.99]\n",
                 "t.yaml:2:10: optim.betas: expected 2 entries [beta1, beta2], got 3");
    expect_error("sampling:\n  cfg_interval: [0.5, 0.2]\n",
                 "t.yaml:2:17: sampling.cfg_interval: needs lo < hi, got [0.5, 0.2]");
    expect_error("sampling:\n  cfg_interval: [0.1, 1.5]\n",
                 "t.yaml:2:23: sampling.cfg_interval[1]: must be in [0, 1], got 1.5");
    expect_error("model:\n  depth: 65\n", "t.yaml:2:10: model.depth: must be in [1, 64], got 65");
    expect_error("model:\n  sla2_topk_ratio: 0\n", "t.yaml:2:20: model.sla2_topk_ratio: must be in (0, 1], got 0");
    expect_error("run:\n  seed: -1\n", "t.yaml:2:9: run.seed: expected a non-negative integer, got '-1'");
    expect_error("optim:\n  lr: 1.0e+99\n", "t.yaml:2:7: optim.lr: out of range for a 32-bit float, got '1.0e+99'");
}

/* Values that fit a double but not the float they are stored in, and sizes
 * whose products would overflow: each an error naming its key (before these
 * checks, eps 1e-50 became 0 and the written config.yaml failed to load;
 * img_size 65536 / patch 1 overflowed the token count; per_class 2^31-1
 * failed after the whole run; grad_accum 2^31-1 never ended a step). */
Test(config, floats_and_sizes_within_what_is_stored) {
    expect_error("optim:\n  eps: 1.0e-50\n",
                 "t.yaml:2:8: optim.eps: too small for a 32-bit float (the smallest is 1.17549e-38), got '1.0e-50'");
    expect_error("diffusion:\n  p_std: 1.0e-45\n",
                 "t.yaml:2:10: diffusion.p_std: too small for a 32-bit float (the smallest is 1.17549e-38), got "
                 "'1.0e-45'");
    expect_error("diffusion:\n  label_drop: 0.999999999999\n",
                 "t.yaml:2:15: diffusion.label_drop: '0.999999999999' rounds to 1 as a 32-bit float, outside the "
                 "allowed range");
    expect_error("model:\n  img_size: 65536\n  patch: 1\n",
                 "t.yaml:2:13: model.img_size: must be in [1, 4096], got 65536");
    expect_error_prefix("model:\n  img_size: 4096\n  patch: 1\n",
                        "t.yaml:2:13: model.img_size: (img_size / patch)^2 + in_context_len = 16777248 tokens, above "
                        "65536");
    expect_error("model:\n  hidden: 2147483644\n", "t.yaml:2:11: model.hidden: must be in [1, 16384], got 2147483644");
    expect_error("sampling:\n  per_class: 2147483647\n",
                 "t.yaml:2:14: sampling.per_class: must be in [0, 65536], got 2147483647");
    expect_error_prefix("model:\n  num_classes: 1000\nsampling:\n  per_class: 100\n",
                        "t.yaml:4:14: sampling.per_class: per_class x model.num_classes = 100000 samples per sampling "
                        "event, above 65536");
    expect_error("optim:\n  grad_accum: 2147483647\n",
                 "t.yaml:2:15: optim.grad_accum: must be in [1, 65536], got 2147483647");
    Config c;
    cr_expect_eq(load(&c, "optim:\n  eps: 1.2e-38\n", 0, NULL), 0, "the smallest normal float loads: %s", err);
    cr_expect(c.eps > 0.0f);
    expect_error(
        "optim:\n  ema: [0.9, 0.99]\nsampling:\n  ema_index: 2\n",
        "t.yaml:4:14: sampling.ema_index: must be -1 (raw weights) or an index into optim.ema (2 decays), got 2");
    expect_error("optim:\n  schedule: cosine\n  lr: 1.0e-4\n  min_lr: 1.0e-3\n",
                 "t.yaml:4:11: optim.min_lr: the cosine floor min_lr (0.001) must not exceed lr (0.0001)");
}

Test(config, precision_needs_cuda_for_bf16) {
    expect_error("run:\n  device: cpu\n  precision: bf16\n",
                 "t.yaml:3:14: run.precision: bf16 matrix products need run.device: cuda; the CPU backend computes in "
                 "fp32 (use fp32 or auto)");
    Config c;
    cr_assert_eq(load(&c, "run: {device: cuda, precision: bf16}\n", 0, NULL), 0, "%s", err);
    cr_expect_eq(c.precision, PRECISION_BF16);
    cr_assert_eq(load(&c, "run: {precision: fp32}\n", 0, NULL), 0, "%s", err);
    cr_expect_eq(c.precision, PRECISION_FP32);
}

Test(config, unknown_enum_values) {
    expect_error("optim:\n  schedule: linear\n",
                 "t.yaml:2:13: optim.schedule: expected constant or cosine, got 'linear'");
    expect_error("run:\n  device: gpu\n", "t.yaml:2:11: run.device: expected cpu or cuda, got 'gpu'");
    expect_error("run:\n  precision: fp16\n", "t.yaml:2:14: run.precision: expected auto, fp32 or bf16, got 'fp16'");
    expect_error("model:\n  sla2_feature_map: gelu\n",
                 "t.yaml:2:21: model.sla2_feature_map: expected softmax, elu or relu, got 'gelu'");
    expect_error("logging:\n  progress: sometimes\n",
                 "t.yaml:2:13: logging.progress: expected auto, true or false, got 'sometimes'");
    expect_error("model:\n  name: JiT-X/16\n",
                 "t.yaml:2:9: model.name: unknown model 'JiT-X/16' (known: JiT-B/16, JiT-L/16, JiT-H/16, JiT-B/32, "
                 "JiT-L/32, JiT-H/32, jit-tiny)");
}

Test(config, callbacks) {
    const char *sla2 = "model:\n  use_sla2: true\n  sla2_from_layer: 2\n";
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "%scallbacks:\n  - type: Router\n", sla2);
    expect_error(yaml,
                 "t.yaml:5:11: callbacks[0].type: unknown callback type 'Router' (known: RouterParameterScheduler, "
                 "SLA2QATCallback, QuantizedAttentionMonitor or SLA2Conversion)");
    snprintf(yaml, sizeof yaml, "%scallbacks:\n  - every: 3\n", sla2);
    expect_error(yaml, "t.yaml:5:5: callbacks[0]: missing 'type' (one of RouterParameterScheduler, SLA2QATCallback, "
                       "QuantizedAttentionMonitor or SLA2Conversion)");
    expect_error("model:\n  name: jit-tiny\ncallbacks:\n  - type: QuantizedAttentionMonitor\n    every: 10\n"
                 "  - type: SLA2QATCallback\n",
                 "t.yaml:4:5: callbacks[0]: QuantizedAttentionMonitor needs model.use_sla2: true (the model uses full "
                 "attention)");
    snprintf(yaml, sizeof yaml, "%scallbacks:\n  - type: RouterParameterScheduler\n    layer: 1\n", sla2);
    expect_error(yaml, "t.yaml:6:12: callbacks[0].layer: block 1 does not use SLA2 (see model.sla2_from_layer, "
                       "model.sla2_layers)");
    snprintf(yaml, sizeof yaml, "%scallbacks:\n  - type: RouterParameterScheduler\n    layer: 6\n", sla2);
    expect_error(yaml, "t.yaml:6:12: callbacks[0].layer: must be a block index in [0, 6) (model.depth) or all, got 6");
    snprintf(yaml, sizeof yaml, "%scallbacks:\n  - type: RouterParameterScheduler\n    start_ratio: 1.5\n", sla2);
    expect_error(yaml, "t.yaml:6:18: callbacks[0].start_ratio: must be in (0, 1], got 1.5");
    snprintf(yaml, sizeof yaml, "%scallbacks:\n  - type: SLA2Conversion\n    stage1_steps: 10\n", sla2);
    expect_error(yaml,
                 "t.yaml:5:5: callbacks[0]: SLA2Conversion needs 'from': the full-attention checkpoint to convert");

    Config c;
    snprintf(yaml, sizeof yaml,
             "%s  sla2_topk_ratio: 0.25\ncallbacks:\n  - type: RouterParameterScheduler\n    layer: 3\n"
             "  - {type: SLA2Conversion, from: runs/full/ckpt-1000.h5, stage1_lr: 0.01}\n",
             sla2);
    cr_assert_eq(load(&c, yaml, 0, NULL), 0, "%s", err);
    cr_expect_eq(c.n_callbacks, 2);
    cr_expect_float_eq(c.callbacks[0].start_ratio, 1.0f, 0);
    cr_expect_float_eq(c.callbacks[0].target_ratio, 0.25f, 0); /* the model's ratio by default */
    cr_expect_eq(c.callbacks[0].layer, 3);
    cr_expect_eq(c.callbacks[0].ramp, RAMP_LINEAR);
    cr_expect_str_eq(c.callbacks[1].from, "runs/full/ckpt-1000.h5");
    cr_expect_eq(c.callbacks[1].stage1_steps, 500);
    cr_expect_float_eq(c.callbacks[1].stage1_lr, 0.01f, 0);
    expect_round_trip(&c, "callbacks");
}

Test(config, model_checks_point_at_the_key) {
    expect_error("model:\n  img_size: 30\n  patch: 4\n",
                 "t.yaml:3:10: model.patch: model.img_size (30) must be a multiple of model.patch (4)");
    expect_error("model:\n  img_size: 30\n",
                 "t.yaml:2:13: model.img_size: model.img_size (30) must be a multiple of model.patch (4)");
    expect_error("model:\n  hidden: 100\n  heads: 3\n",
                 "t.yaml:3:10: model.heads: model.hidden (100) must be a multiple of model.heads (3)");
    expect_error("model:\n  hidden: 66\n  heads: 3\n",
                 "t.yaml:2:11: model.hidden: the head dimension hidden/heads = 22 must be divisible by 4 (2D RoPE)");
    expect_error("model:\n  depth: 2\n",
                 "t.yaml:2:10: model.depth: model.in_context_start (2) must be a block index in [0, model.depth = 2)");
    expect_error("model:\n  use_sla2: true\n  sla2_layers: [0, 3, 7]\n",
                 "t.yaml:3:23: model.sla2_layers[2]: must be a block index in [0, model.depth = 6), got 7");
    expect_error(
        "model:\n  use_sla2: true\n  sla2_from_layer: 6\n",
        "t.yaml:3:20: model.sla2_from_layer: model.sla2_from_layer (6) must be a block index in [0, model.depth = 6)");
    expect_error("model:\n  sla2_layers: [1, 1]\n", "t.yaml:2:20: model.sla2_layers[1]: block 1 is listed twice");
    /* The same mistakes with SLA2 off are harmless (jit_config_finish ignores them too). */
    Config c;
    cr_expect_eq(load(&c, "model:\n  sla2_from_layer: 9\n", 0, NULL), 0, "%s", err);
}

Test(config, model_name_applies_first_whatever_the_order) {
    Config a, b;
    cr_assert_eq(load(&a, "model:\n  name: JiT-B/16\n  depth: 4\n  in_context_start: 1\n", 0, NULL), 0, "%s", err);
    cr_assert_eq(load(&b, "model:\n  depth: 4\n  in_context_start: 1\n  name: JiT-B/16\n", 0, NULL), 0, "%s", err);
    expect_same(&a, &b, "name first vs last");
    cr_expect_eq(b.model.depth, 4);
    cr_expect_eq(b.model.hidden, 768);
    cr_expect_str_eq(b.model_name, "JiT-B/16");
    cr_expect_eq(b.model.tokens, 256); /* derived sizes computed */
}

Test(config, compression_ratio_sets_both_blocks) {
    Config c;
    cr_assert_eq(load(&c, "model:\n  sla2_compression_ratio: 12\n", 0, NULL), 0, "%s", err);
    cr_expect_eq(c.model.sla2_block_q, 12);
    cr_expect_eq(c.model.sla2_block_k, 12);
    /* An explicit block size wins, whatever the order; the ratio comes after model.name. */
    cr_assert_eq(load(&c, "model:\n  sla2_block_k: 4\n  sla2_compression_ratio: 12\n  name: jit-tiny\n", 0, NULL), 0,
                 "%s", err);
    cr_expect_eq(c.model.sla2_block_q, 12);
    cr_expect_eq(c.model.sla2_block_k, 4);
    expect_round_trip(&c, "blocks");
}

Test(config, run_out_dir_follows_the_name) {
    Config c;
    cr_assert_eq(load(&c, "run:\n  name: exp7\n", 0, NULL), 0, "%s", err);
    cr_expect_str_eq(c.out_dir, "runs/exp7");
    cr_assert_eq(load(&c, "run:\n  name: exp7\n  out_dir: /scratch/e7\n", 0, NULL), 0, "%s", err);
    cr_expect_str_eq(c.out_dir, "/scratch/e7");
    cr_assert_eq(load(&c, "logging:\n  progress: false\nmodel:\n  use_sla2: yes\n", 0, NULL), 0, "%s", err);
    cr_expect_eq(c.progress, 0);
    cr_expect_eq(c.model.use_sla2, 1);
}

Test(config, overrides) {
    const char *yaml = "optim:\n  lr: 1.0e-4\nmodel:\n  use_sla2: true\ncallbacks:\n"
                       "  - type: QuantizedAttentionMonitor\n    every: 10\n";
    char *ov[] = {"optim.lr=3e-4",          "optim.betas=[0.9,0.99]", "model.sla2_layers=[1, 4]",
                  "data.hflip=true",        "callbacks[0].every=50",  "run.name=ov",
                  "sampling.cfg_interval=[0.2, 0.9]"};
    Config c;
    cr_assert_eq(load(&c, yaml, 7, ov), 0, "%s", err);
    cr_expect_float_eq(c.lr, 3e-4f, 0);
    cr_expect_float_eq(c.beta2, 0.99f, 0);
    cr_expect_eq(c.model.sla2_n_layers, 2);
    cr_expect_eq(c.model.sla2_layers[1], 4);
    cr_expect_eq(c.hflip, 1); /* a key (and section) absent from the file */
    cr_expect_eq(c.callbacks[0].every, 50);
    cr_expect_str_eq(c.out_dir, "runs/ov");
    cr_expect_float_eq(c.cfg_lo, 0.2f, 0);
    char *ov2[] = {"callbacks.0.every=60", "model.name=JiT-B/16", "model.use_sla2=true"};
    cr_assert_eq(load(&c, yaml, 3, ov2), 0, "%s", err);
    cr_expect_eq(c.callbacks[0].every, 60);
    cr_expect_eq(c.model.hidden, 768);
    /* Overrides apply in order: the last one wins. */
    char *ov3[] = {"optim.lr=1e-3", "optim.lr=2e-3"};
    cr_assert_eq(load(&c, "", 2, ov3), 0, "%s", err);
    cr_expect_float_eq(c.lr, 2e-3f, 0);

    expect_override_error(yaml, "optim.lr=abc", "override 'optim.lr=abc': optim.lr: expected a number, got 'abc'");
    expect_override_error(yaml, "optim.lrr=1",
                          "override 'optim.lrr=1': unknown key 'optim.lrr' (known under optim: lr, betas, eps, "
                          "weight_decay, warmup_steps, schedule, min_lr, grad_clip, grad_accum, ema, "
                 "ema_warmup, official_warmup, official_decay_set)");
    expect_override_error(yaml, "optimizer.lr=1",
                          "override 'optimizer.lr=1': unknown key 'optimizer' (known at the top level: run, model, "
                          "data, optim, train, diffusion, sampling, logging, losses, dist, eval, callbacks)");
    expect_override_error(yaml, "optim.betas=[0.9,1.5]",
                          "override 'optim.betas=[0.9,1.5]': optim.betas[1]: must be in [0, 1), got 1.5");
    expect_override_error(yaml, "data.batch_size=0",
                          "override 'data.batch_size=0': data.batch_size: must be in [1, 65536], got 0");
    expect_override_error(yaml, "optim.lr", "override 'optim.lr': expected KEY.PATH=VALUE (e.g. optim.lr=1e-4 or "
                                            "optim.betas=[0.9,0.99])");
    expect_override_error(yaml, "optim..lr=1", "override 'optim..lr=1': expected KEY.PATH=VALUE (e.g. optim.lr=1e-4 "
                                               "or optim.betas=[0.9,0.99])");
    expect_override_error(yaml, "optim.lr.x=1", "override 'optim.lr.x=1': optim.lr is '1.0e-4', not a map: cannot "
                                                "set 'x' in it");
    expect_override_error(yaml, "callbacks[3].every=1", "override 'callbacks[3].every=1': callbacks has 1 items, no "
                                                        "item [3]");
    /* A check across keys points at the place it concerns, here the callback in the file. */
    expect_override_error(yaml, "model.use_sla2=false",
                          "t.yaml:6:5: callbacks[0]: QuantizedAttentionMonitor needs model.use_sla2: true (the model "
                          "uses full attention)");
    Config keep;
    config_defaults(&keep);
    c = keep;
    char *bad[] = {"optim.betas=[0.9"};
    cr_assert_eq(load(&c, yaml, 1, bad), -1);
    cr_expect(strncmp(err, "override 'optim.betas=[0.9': YAML syntax error: ", 48) == 0, "%s", err);
    expect_same(&c, &keep, "unchanged after an error");
}

Test(config, file_errors_name_the_file) {
    Config c;
    cr_assert_eq(config_try_load(&c, "/nonexistent/x.yaml", 0, NULL, err, sizeof err), -1);
    cr_expect_str_eq(err, "/nonexistent/x.yaml: cannot open the configuration: No such file or directory");
}

Test(config, write_is_readable_yaml) {
    Config c;
    config_defaults(&c);
    snprintf(c.run_name, sizeof c.run_name, "a \"quoted\": #name\\");
    c.eps = 1e-8f;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_write(&c, f);
    fclose(f);
    cr_expect(strstr(text, "  name: \"a \\\"quoted\\\": #name\\\\\"\n"), "%s", text);
    cr_expect(strstr(text, "  eps: 1.0e-08\n"), "%s", text);
    cr_expect(strstr(text, "  lr: 0.0005\n"), "%s", text);
    cr_expect(strstr(text, "  sla2_layers: []\n"), "%s", text);
    cr_expect(strstr(text, "callbacks: []\n"), "%s", text);
    cr_expect(!strstr(text, "sla2_compression_ratio"), "an alias is not written");
    free(text);
    expect_round_trip(&c, "special characters");
}

/* A configuration file that says nothing is an error, not a run with every
 * default (--config /dev/null trained before this check; it is now refused
 * earlier, as a device and not a regular file, like /dev/zero). */
Test(config, an_empty_file_is_an_error) {
    char path[] = "/tmp/jit-empty-cfg-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char *text = "  \n# a comment only\n\t\n";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    const char *files[2] = {path, "/dev/null"};
    for (int i = 0; i < 2; i++) {
        Config c;
        err[0] = '\0';
        cr_expect_eq(config_try_load(&c, files[i], 0, NULL, err, sizeof err), -1, "%s loaded", files[i]);
        cr_expect(strstr(err, i == 0 ? "the configuration is empty" : "is a character device, not a regular file") &&
                      strstr(err, files[i]),
                  "got '%s'", err);
    }
    unlink(path);
}

static int n_diff;
static char diff_keys[256];
static void note_diff(const char *key, const char *was, const char *now, void *user) {
    n_diff++;
    strncat(diff_keys, key, sizeof diff_keys - strlen(diff_keys) - 2);
    strcat(diff_keys, " ");
}

/* config_diff names exactly the keys whose values differ (what resume
 * reports), the callbacks' list included. */
Test(config, diff_names_the_keys_that_differ) {
    Config a, b;
    cr_assert_eq(load(&a, "run:\n  seed: 3\noptim:\n  lr: 1.0e-4\n", 0, NULL), 0, "%s", err);
    cr_assert_eq(load(&b, "run:\n  seed: 4\noptim:\n  lr: 2.0e-4\n", 0, NULL), 0, "%s", err);
    cr_expect_eq(config_diff(&a, &a, NULL, NULL), 0);
    n_diff = 0, diff_keys[0] = 0;
    cr_expect_eq(config_diff(&a, &b, note_diff, NULL), 2);
    cr_expect_str_eq(diff_keys, "run.seed optim.lr ");
    cr_assert_eq(load(&b, "run:\n  seed: 3\noptim:\n  lr: 1.0e-4\ncallbacks:\n  - {type: SLA2QATCallback, enable_step: 5}\n"
                          "model:\n  use_sla2: true\n", 0, NULL), 0, "%s", err);
    n_diff = 0, diff_keys[0] = 0;
    config_diff(&a, &b, note_diff, NULL);
    cr_expect(strstr(diff_keys, "model.use_sla2") && strstr(diff_keys, "callbacks"), "got %s", diff_keys);
}
