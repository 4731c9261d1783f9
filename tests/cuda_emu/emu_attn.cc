/* tests/cuda_emu/emu_attn.cc — the emulated GPU attention and SLA2 entries
 * against the CPU reference (a smaller twin of tests/test_cuda_attn.c):
 * outputs and GPU workspace poisoned with NaN, gradients starting nonzero,
 * subsets of gradients requested, FP32 within 1e-5 and BF16 within 2e-2,
 * masks equal (inputs redrawn until the hard top-k has no near-tie).
 *   emu_attn [CASE [ORDER]]   (CASE: index, -1 = all; ORDER: 0 forward, 1 reverse, 2 random) */
#include "kernels/cuda/cuda_common.cuh"
extern "C" {
#include "kernels/cpu/cpu.h"
}
#include <vector>
#include <random>
extern int emu_order_mode;

static CudaPrecision g_prec = CUDA_PREC_FP32;
extern "C" CudaPrecision cuda_get_precision(void) { return g_prec; }
extern "C" {
void cuda_attention_fwd(float *out, float *saved, const float *q, const float *k, const float *v, int B, int H, int N, int hd);
void cuda_attention_bwd(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *saved, const float *q, const float *k, const float *v, int B, int H, int N, int hd);
size_t cuda_sla2_workspace_floats(const Sla2Dims *dm);
void cuda_sla2_fwd(float *out, const Sla2Saved *sv, float *workspace, const float *q, const float *k, const float *v, const float *proj_q, const float *proj_k, const float *alpha_logit, const Sla2Dims *dm);
void cuda_sla2_bwd(float *dq, float *dk, float *dv, float *dproj_q, float *dproj_k, float *dalpha_logit, float *workspace, const float *dout, const Sla2Saved *sv, const float *q, const float *k, const float *v, const float *proj_q, const float *proj_k, const float *alpha_logit, const Sla2Dims *dm);
}
static std::mt19937 R(7);
typedef std::vector<float> V;
static V rnd(size_t n, float lo, float hi) { std::uniform_real_distribution<float> u(lo, hi); V v(n); for (auto &x : v) x = u(R); return v; }
static V nanv(size_t n) { return V(n ? n : 1, NAN); }
static int fails = 0;
static double relerr(const V &g, const V &w) { double mr = 0, me = 0; for (size_t i = 0; i < w.size(); i++) { if (!std::isfinite(g[i]) || !std::isfinite(w[i])) return INFINITY; mr = fmax(mr, fabs(w[i])); me = fmax(me, fabs((double)g[i] - w[i])); } return mr > 0 ? me / mr : me; }
static void cmp(const char *what, const V &g, const V &w, double tol) {
    double e = relerr(g, w);
    bool ok = e <= tol;
    if (!ok) { fails++; size_t wi = 0; double we = -1; for (size_t i = 0; i < w.size(); i++) { double d = std::isfinite(g[i]) ? fabs(g[i] - w[i]) : INFINITY; if (d > we) we = d, wi = i; }
        printf("  FAIL %s: %.3g > %.1g (worst %zu/%zu gpu %.9g cpu %.9g)\n", what, e, tol, wi, w.size(), g[wi], w[wi]); }
    else printf("  ok %s %.2e\n", what, e);
}
static void attention(int B, int H, int N, int hd, double tol) {
    printf("attention B%d H%d N%d hd%d prec %d\n", B, H, N, hd, (int)g_prec);
    size_t nt = (size_t)B * H * N * hd;
    V q = rnd(nt, -2, 2), k = rnd(nt, -2, 2), v = rnd(nt, -1, 1), oc = nanv(nt), og = nanv(nt), P((size_t)B * H * N * N), lse = nanv((size_t)B * H * N);
    cpu_attention_fwd(oc.data(), P.data(), q.data(), k.data(), v.data(), B, H, N, hd);
    cuda_attention_fwd(og.data(), lse.data(), q.data(), k.data(), v.data(), B, H, N, hd);
    cmp("out", og, oc, tol);
    V dout = rnd(nt, -1, 1), g0[3] = {rnd(nt, -.1, .1), rnd(nt, -.1, .1), rnd(nt, -.1, .1)};
    V gc[3] = {g0[0], g0[1], g0[2]}, scr((size_t)B * H * N * N);
    cpu_attention_bwd(gc[0].data(), gc[1].data(), gc[2].data(), scr.data(), dout.data(), P.data(), q.data(), k.data(), v.data(), B, H, N, hd);
    for (int mask : {7, 1, 6}) {
        V gg[3] = {g0[0], g0[1], g0[2]}, s2 = nanv((size_t)B * H * N);
        cuda_attention_bwd(mask & 1 ? gg[0].data() : NULL, mask & 2 ? gg[1].data() : NULL, mask & 4 ? gg[2].data() : NULL, s2.data(), dout.data(), lse.data(), q.data(), k.data(), v.data(), B, H, N, hd);
        const char *nm[3] = {"dq", "dk", "dv"};
        for (int t = 0; t < 3; t++) cmp(nm[t], gg[t], mask >> t & 1 ? gc[t] : g0[t], tol);
    }
}
static int ksel(float r, int nk) { int k = (int)floor((double)r * nk + 0.5); if (k < 1) k = 1; return k > nk ? nk : k; }
static double gap(const V &pc, int rows, int nk, int k) { if (k >= nk) return INFINITY; double w = INFINITY; for (int i = 0; i < rows; i++) { V r(pc.begin() + (size_t)i * nk, pc.begin() + (size_t)(i + 1) * nk); std::sort(r.begin(), r.end(), std::greater<float>()); w = fmin(w, (double)r[k - 1] - r[k]); } return w; }
static void sla2(int N, int d, int bq, int bk, float ratio, int fm, int soft, int qat, double tol) {
    Sla2Dims dm = {};
    dm.B = 2, dm.H = 3, dm.N = N, dm.d = d, dm.block_q = bq, dm.block_k = bk, dm.nq = (N + bq - 1) / bq, dm.nk = (N + bk - 1) / bk;
    dm.feature_map = fm, dm.soft = soft, dm.qat = qat, dm.tau = 0.1f, dm.k_sel = ksel(ratio, dm.nk);
    printf("sla2 N%d d%d blocks %d/%d k %d/%d fm %d soft %d qat %d prec %d\n", N, d, bq, bk, dm.k_sel, dm.nk, fm, soft, qat, (int)g_prec);
    size_t nt = (size_t)6 * N * d, nb = (size_t)6 * dm.nq * dm.nk, nr = (size_t)6 * N, dd = (size_t)d * d;
    V q, k, v, pq, pk, al, outc = nanv(nt), mc = nanv(nb), pcc = nanv(nb), lc = nanv(nr), osc = nanv(nt), ofc = nanv(nt), olc = nanv(nt);
    V wsc(cpu_sla2_workspace_floats(&dm));
    Sla2Saved svc = {mc.data(), pcc.data(), lc.data(), osc.data(), qat ? ofc.data() : NULL, olc.data()};
    for (int at = 0;; at++) {
        q = rnd(nt, -2, 2), k = rnd(nt, -2, 2), v = rnd(nt, -1, 1);
        float s = 0.3f / sqrtf((float)d); pq = rnd(dd, -s, s), pk = rnd(dd, -s, s), al = rnd(3, 1.5, 2.5);
        for (int i = 0; i < d; i++) pq[i * d + i] += 1, pk[i * d + i] += 1;
        cpu_sla2_fwd(outc.data(), &svc, wsc.data(), q.data(), k.data(), v.data(), pq.data(), pk.data(), al.data(), &dm);
        if (soft || gap(pcc, 6 * dm.nq, dm.nk, dm.k_sel) > 1e-5) break;
        if (at > 20) { printf("no gap\n"); fails++; return; }
    }
    V outg = nanv(nt), mg = nanv(nb), pcg = nanv(nb), lg = nanv(nr), osg = nanv(nt), ofg = nanv(nt), olg = nanv(nt), wsg = nanv(cuda_sla2_workspace_floats(&dm));
    Sla2Saved svg = {mg.data(), pcg.data(), lg.data(), osg.data(), qat ? ofg.data() : NULL, olg.data()};
    cuda_sla2_fwd(outg.data(), &svg, wsg.data(), q.data(), k.data(), v.data(), pq.data(), pk.data(), al.data(), &dm);
    cmp("mask", mg, mc, soft ? 1e-5 : 0.0);
    cmp("pc", pcg, pcc, 1e-5);
    cmp("lse", lg, lc, tol);
    cmp("o_s", osg, osc, tol);
    if (qat) cmp("o_s_fp", ofg, ofc, tol);
    cmp("o_l", olg, olc, 1e-5);
    cmp("out", outg, outc, tol);
    V dout = rnd(nt, -1, 1);
    V g0[6] = {rnd(nt, -.1, .1), rnd(nt, -.1, .1), rnd(nt, -.1, .1), rnd(dd, -.1, .1), rnd(dd, -.1, .1), rnd(3, -.1, .1)};
    V gc[6], gg[6];
    for (int t = 0; t < 6; t++) gc[t] = g0[t];
    cpu_sla2_bwd(gc[0].data(), gc[1].data(), gc[2].data(), gc[3].data(), gc[4].data(), gc[5].data(), wsc.data(), dout.data(), &svc, q.data(), k.data(), v.data(), pq.data(), pk.data(), al.data(), &dm);
    for (int which : {15, 4, 9}) {
        for (int t = 0; t < 6; t++) gg[t] = g0[t];
        std::fill(wsg.begin(), wsg.end(), NAN);
        int want[6] = {which & 1, which & 2, which & 4, which & 8, which & 8, which & 8};
        float *p[6];
        for (int t = 0; t < 6; t++) p[t] = want[t] ? gg[t].data() : NULL;
        cuda_sla2_bwd(p[0], p[1], p[2], p[3], p[4], p[5], wsg.data(), dout.data(), &svg, q.data(), k.data(), v.data(), pq.data(), pk.data(), al.data(), &dm);
        const char *nm[6] = {"dq", "dk", "dv", "dWq", "dWk", "dalpha"};
        for (int t = 0; t < 6; t++) cmp(nm[t], gg[t], want[t] ? gc[t] : g0[t], tol);
    }
}
int main(int argc, char **argv) {
    int only = argc > 1 ? atoi(argv[1]) : -1;
    emu_order_mode = argc > 2 ? atoi(argv[2]) : 2;
    int c = 0;
#define CASE(x) if (only < 0 || only == c) { x; } c++;
    CASE(attention(2, 3, 53, 32, 1e-5))
    CASE(attention(1, 2, 37, 128, 1e-5))
    CASE(attention(2, 1, 70, 48, 1e-5))
    CASE(attention(1, 2, 1, 16, 1e-5))
    CASE(attention(1, 2, 100, 64, 1e-5))
    CASE(sla2(100, 32, 16, 12, 0.3f, 0, 0, 0, 1e-5))
    CASE(sla2(53, 32, 8, 8, 0.5f, 2, 0, 0, 1e-5))
    CASE(sla2(100, 64, 64, 32, 0.15f, 1, 0, 0, 1e-5))
    CASE(sla2(53, 32, 16, 16, 1.0f, 0, 0, 0, 1e-5))
    CASE(sla2(100, 32, 16, 12, 0.3f, 0, 1, 0, 1e-5))
    CASE(sla2(53, 64, 8, 8, 0.5f, 1, 1, 0, 1e-5))
    CASE(sla2(53, 32, 16, 16, 1.0f, 0, 1, 0, 1e-5))
    CASE(sla2(100, 32, 16, 12, 0.3f, 0, 0, 1, 1e-5))
    CASE(sla2(150, 32, 16, 100, 0.5f, 1, 0, 1, 1e-5))
    CASE(sla2(150, 16, 128, 32, 0.3f, 2, 0, 1, 1e-5))
    CASE(sla2(53, 32, 8, 8, 0.3f, 0, 0, 1, 1e-5))
    CASE(sla2(100, 32, 16, 12, 0.3f, 2, 1, 1, 1e-5))
    CASE(sla2(40, 128, 16, 16, 0.3f, 0, 0, 0, 1e-5))
    CASE(sla2(40, 128, 16, 16, 0.5f, 0, 1, 1, 1e-5))
    CASE(g_prec = CUDA_PREC_BF16; attention(2, 3, 53, 32, 2e-2); g_prec = CUDA_PREC_FP32)
    CASE(g_prec = CUDA_PREC_BF16; sla2(100, 32, 16, 12, 0.3f, 0, 1, 0, 2e-2); g_prec = CUDA_PREC_FP32)
    CASE(g_prec = CUDA_PREC_BF16; sla2(257, 128, 32, 64, 0.15f, 0, 0, 0, 2e-2); g_prec = CUDA_PREC_FP32)
    CASE(g_prec = CUDA_PREC_BF16; attention(2, 3, 257, 128, 2e-2); g_prec = CUDA_PREC_FP32)
    printf("%d failures\n", fails);
    return fails != 0;
}
