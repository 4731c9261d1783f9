/* tests/test_jit_parity.c — the C JiT model against the PyTorch reference
 * (tests/reference/jit_ref.py): loss, output and every parameter's gradient
 * of jit-tiny with fixed weights and inputs, and the exact parameter counts
 * of the named configurations. Fixtures come from make_fixture.py (the
 * ctest fixture "reference_fixtures" writes them into build/fixtures). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "core/ops.h"
#include "h5read.h"
#include "train/model/jit.h"

static const char *fixture_path(const char *file, char *buf, size_t n) {
    const char *dir = getenv("JIT_FIXTURES");
    snprintf(buf, n, "%s/%s", dir ? dir : "build/fixtures", file);
    return buf;
}

/* max |a - b| / max |b|: relative to the tensor's scale, so that tiny
 * elements (where fp32 rounding dominates) do not decide alone. */
static double rel_err(const float *a, const double *b, size_t n, size_t *worst) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > num) num = e, *worst = i;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

/* Load the fixture's weights and inputs into a model of configuration cfg,
 * run forward + v-loss + backward, and compare with PyTorch. */
static void check_model_parity(const char *file, JitConfig *cfg, const char *label) {
    char path[512];
    h5r_file f = h5r_open(fixture_path(file, path, sizeof path));
    cr_assert_eq(h5r_attr_i64(f, "depth"), cfg->depth);
    cr_assert_eq(h5r_attr_i64(f, "hidden"), cfg->hidden);
    cr_assert_eq(h5r_attr_i64(f, "mlp_hidden"), cfg->mlp_hidden);
    cr_assert_eq(h5r_attr_i64(f, "in_context_start"), cfg->in_context_start);
    int B = (int)h5r_attr_i64(f, "batch");

    JitModel m;
    jit_build(&m, cfg, 1);
    char name[256];
    for (int i = 0; i < m.params.n; i++) {
        Tensor *p = params_at(&m.params, i);
        snprintf(name, sizeof name, "params/%s", p->name);
        h5r_read_f32(f, name, p->data, p->numel);
    }

    Graph g;
    graph_init(&g, backend_cpu(), 1 << 20);
    int img = cfg->img_size, C = cfg->in_channels;
    Tensor *x = graph_new(&g, 4, B, C, img, img), *z = graph_new(&g, 4, B, C, img, img), *t = graph_new(&g, 1, B);
    int y[16];
    cr_assert_leq(B, 16);
    h5r_read_f32(f, "inputs/x", x->data, x->numel);
    h5r_read_f32(f, "inputs/z", z->data, z->numel);
    h5r_read_f32(f, "inputs/t", t->data, t->numel);
    h5r_read_i32(f, "inputs/y", y, (size_t)B);

    params_zero_grad(&m.params);
    Tensor *xhat = jit_forward(&m, &g, z, t, y, NULL);
    Tensor *loss = op_vloss(&g, xhat, x, t);
    graph_backward(&g, loss);

    double ref_loss;
    h5r_read_f64(f, "loss", &ref_loss, 1);
    double *ref = malloc(sizeof(double) * 1000000);
    size_t worst = 0;
    cr_assert_lt(xhat->numel, 1000000);
    h5r_read_f64(f, "output/x_hat", ref, xhat->numel);
    double e_out = rel_err(xhat->data, ref, xhat->numel, &worst);
    double e_loss = fabs(loss->data[0] - ref_loss) / fabs(ref_loss);
    printf("%s parity: loss C %.9g torch %.9g (rel %.2e), x_hat rel %.2e\n", label, loss->data[0], ref_loss, e_loss,
           e_out);
    cr_expect_lt(e_loss, 1e-4, "loss differs: C %g vs torch %g", loss->data[0], ref_loss);
    cr_expect_lt(e_out, 1e-4, "x_hat differs: rel %g at %zu", e_out, worst);

    double max_e = 0.0;
    const char *max_name = "";
    for (int i = 0; i < m.params.n; i++) {
        Tensor *p = params_at(&m.params, i);
        snprintf(name, sizeof name, "grads/%s", p->name);
        cr_assert_lt(p->numel, 1000000);
        h5r_read_f64(f, name, ref, p->numel);
        double e = rel_err(p->grad, ref, p->numel, &worst);
        cr_expect_lt(e, 1e-4, "gradient of %s differs: max rel %g at element %zu (C %g, torch %g)", p->name, e, worst,
                     p->grad[worst], ref[worst]);
        if (e > max_e) max_e = e, max_name = p->name;
    }
    printf("%s parity: %d parameter gradients, worst max rel error %.2e (%s)\n", label, m.params.n, max_e, max_name);
    free(ref);
    graph_free(&g);
    jit_free(&m);
    h5r_close(f);
}

Test(jit_parity, tiny_loss_output_and_every_gradient) {
    JitConfig cfg;
    cr_assert_eq(jit_config_named("jit-tiny", &cfg), 0);
    check_model_parity("jit_tiny_fixture.h5", &cfg, "jit-tiny");
}

Test(jit_parity, tiny_sla2_hybrid_loss_output_and_every_gradient) {
    char path[512], fm[32], mode[32];
    h5r_file f = h5r_open(fixture_path("jit_sla2_tiny_fixture.h5", path, sizeof path));
    JitConfig cfg;
    cr_assert_eq(jit_config_named("jit-tiny", &cfg), 0);
    cfg.use_sla2 = (int)h5r_attr_i64(f, "use_sla2");
    cfg.sla2_block_q = (int)h5r_attr_i64(f, "sla2_block_q");
    cfg.sla2_block_k = (int)h5r_attr_i64(f, "sla2_block_k");
    cfg.sla2_topk_ratio = (float)h5r_attr_f64(f, "sla2_topk_ratio");
    h5r_attr_str(f, "sla2_feature_map", fm, sizeof fm);
    h5r_attr_str(f, "sla2_mode", mode, sizeof mode);
    cr_assert_str_eq(fm, "softmax");
    cr_assert_str_eq(mode, "hard");
    hid_t a = H5Aopen((hid_t)f, "sla2_layers", H5P_DEFAULT);
    hid_t sp = H5Aget_space(a);
    cfg.sla2_n_layers = (int)H5Sget_simple_extent_npoints(sp);
    cr_assert(cfg.sla2_n_layers > 0 && cfg.sla2_n_layers <= JIT_MAX_DEPTH);
    H5Aread(a, H5T_NATIVE_INT, cfg.sla2_layers);
    H5Sclose(sp);
    H5Aclose(a);
    h5r_close(f);
    jit_config_finish(&cfg);
    check_model_parity("jit_sla2_tiny_fixture.h5", &cfg, "jit-tiny SLA2 (blocks 1-5)");
}

/* The SLA2 op alone against the dense masked PyTorch formulation. */
Test(jit_parity, sla2_op_cases) {
    char path[512], grp[32], key[64], fm[32], mode[32];
    h5r_file f = h5r_open(fixture_path("sla2_op_fixture.h5", path, sizeof path));
    int n_cases = (int)h5r_attr_i64(f, "n_cases");
    cr_assert_gt(n_cases, 0);
    double worst_all = 0;
    for (int cs = 0; cs < n_cases; cs++) {
        snprintf(grp, sizeof grp, "case_%02d", cs);
#define ATTR(nm) (snprintf(key, sizeof key, "%s/%s", grp, nm), key)
        int B = (int)h5r_attr_i64(f, ATTR("B")), H = (int)h5r_attr_i64(f, ATTR("H"));
        int N = (int)h5r_attr_i64(f, ATTR("N")), d = (int)h5r_attr_i64(f, ATTR("d"));
        Sla2Config c = {.block_q = (int)h5r_attr_i64(f, ATTR("block_q")),
                        .block_k = (int)h5r_attr_i64(f, ATTR("block_k")),
                        .topk_ratio = (float)h5r_attr_f64(f, ATTR("topk_ratio")), .tau = 0.1f};
        h5r_attr_str(f, ATTR("feature_map"), fm, sizeof fm);
        h5r_attr_str(f, ATTR("mode"), mode, sizeof mode);
        c.feature_map = !strcmp(fm, "softmax") ? SLA2_PHI_SOFTMAX : !strcmp(fm, "elu") ? SLA2_PHI_ELU : SLA2_PHI_RELU;
        c.soft = !strcmp(mode, "soft");
        int nk = (N + c.block_k - 1) / c.block_k;
        cr_assert_eq(sla2_k_select(c.topk_ratio, nk), (int)h5r_attr_i64(f, ATTR("k_sel")), "%s: k differs", grp);

        Graph g;
        graph_init(&g, backend_cpu(), 1 << 20);
        Tensor *in[6] = {graph_new(&g, 4, B, H, N, d), graph_new(&g, 4, B, H, N, d), graph_new(&g, 4, B, H, N, d),
                         graph_new(&g, 2, d, d), graph_new(&g, 2, d, d), graph_new(&g, 1, H)};
        const char *names[6] = {"q", "k", "v", "proj_q", "proj_k", "alpha_logit"};
        const char *gnames[6] = {"dq", "dk", "dv", "dproj_q", "dproj_k", "dalpha_logit"};
        for (int i = 0; i < 6; i++) {
            h5r_read_f32(f, ATTR(names[i]), in[i]->data, in[i]->numel);
            in[i]->requires_grad = true;
        }
        Tensor *out = op_sla2(&g, in[0], in[1], in[2], in[3], in[4], in[5], &c, NULL);
        float *dout = malloc(sizeof(float) * out->numel);
        double *ref = malloc(sizeof(double) * out->numel * 4);
        h5r_read_f32(f, ATTR("dout"), dout, out->numel);
        h5r_read_f64(f, ATTR("out"), ref, out->numel);
        size_t worst;
        double e = rel_err(out->data, ref, out->numel, &worst);
        cr_expect_lt(e, 1e-4, "%s (%s, %s, topk %g): output differs by %g", grp, mode, fm, c.topk_ratio, e);
        double case_worst = e;
        graph_backward_from(&g, out, dout);
        for (int i = 0; i < 6; i++) {
            h5r_read_f64(f, ATTR(gnames[i]), ref, in[i]->numel);
            const float *gr = in[i]->grad;
            float *zeros = NULL;
            if (!gr) gr = zeros = calloc(in[i]->numel, sizeof(float)); /* hard mode: no router gradient */
            double eg = rel_err(gr, ref, in[i]->numel, &worst);
            cr_expect_lt(eg, 1e-4, "%s (%s, %s, topk %g): %s differs by %g at %zu (C %g, torch %g)", grp, mode, fm,
                         c.topk_ratio, gnames[i], eg, worst, gr[worst], ref[worst]);
            case_worst = fmax(case_worst, eg);
            free(zeros);
        }
        worst_all = fmax(worst_all, case_worst);
        free(dout);
        free(ref);
        graph_free(&g);
#undef ATTR
    }
    printf("sla2 op parity: %d cases, worst max rel error over outputs and gradients %.2e\n", n_cases, worst_all);
    h5r_close(f);
}

Test(jit_parity, parameter_counts_match_pytorch) {
    char path[512];
    h5r_file f = h5r_open(fixture_path("param_counts.h5", path, sizeof path));
    const char *names[] = {"JiT-B/16", "JiT-L/16", "JiT-H/16", "JiT-B/32", "JiT-L/32", "JiT-H/32", "jit-tiny"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        JitConfig cfg;
        cr_assert_eq(jit_config_named(names[i], &cfg), 0);
        JitModel m;
        jit_register(&m, &cfg); /* counts without allocating the weights */
        char attr[32];
        snprintf(attr, sizeof attr, "%s", names[i]);
        for (char *c = attr; *c; c++)
            if (*c == '/') *c = '_';
        int64_t want = h5r_attr_i64(f, attr);
        printf("%-9s %12zu parameters (PyTorch %lld)\n", names[i], params_count(&m.params), (long long)want);
        cr_expect_eq((int64_t)params_count(&m.params), want, "%s: C counts %zu, PyTorch %lld", names[i],
                     params_count(&m.params), (long long)want);
        if (strcmp(names[i], "JiT-B/16") == 0) cr_expect_eq(params_count(&m.params), 131123712u);
        jit_free(&m);
    }
    h5r_close(f);
}
