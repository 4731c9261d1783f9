/* kernels/cpu/sla2.c — SLA2 sparse-linear attention on the CPU: the
 * reference implementation of docs/sla2.md, forward and hand-written
 * backward. One (batch, head) pair per OpenMP iteration, each with its own
 * workspace slice; tiles of block_q x block_k go through sgemm.
 *
 * The tile path serves hard and soft selection alike: the block mask M
 * weights the sparse branch (w * exp(s)) and 1 - M weights the linear
 * branch; with a hard mask, blocks of weight 0 are simply not visited. A
 * hard mask takes the gather path by default (kernels/cpu/sla2_gather.c:
 * fewer, larger products), the dense masked path when asked
 * (kernels/cpu/sla2_dense.c); sla2_cpu_path says which. */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/sla2_internal.h"

#define SLA2_LINEAR_EPS 1e-6f

static size_t r16(size_t n) { return (n + 15) / 16 * 16; }

/* Slice sizes in the order sla2_ws_map lays them out. */
#define SLA2_WS_FIELDS(X)                                                                                       \
    X(phi_q, N * d) X(phi_k, N * d) X(h, nk * d * d) X(z, nk * d) X(Hi, d * d) X(Zi, d) X(S, bq * bk)           \
    X(P2, bq * bk) X(acc, bq * d) X(m, bq) X(l, bq) X(qbar, nq * d) X(kbar, nk * d) X(qt, nq * d) X(kt, nk * d)  \
    X(kmean, d) X(dphi_q, N * d) X(dphi_k, N * d) X(dH, nq * d * d) X(dZ, nq * d) X(dh, nk * d * d) X(dz, nk * d) \
    X(dmask, nq * nk) X(dWq, d * d) X(dWk, d * d) X(gs, N * d) X(gl, N * d) X(qi8, N * d) X(ki8, N * d)          \
    X(vq, N * d) X(sq, nq) X(sk, nk) X(dqt, nq * d) X(dkt, nk * d)

size_t sla2_ws_per_pair(const Sla2Dims *dm) {
    size_t N = dm->N, d = dm->d, nq = dm->nq, nk = dm->nk, bq = dm->block_q, bk = dm->block_k, n = 0;
#define X(name, size) n += r16(size);
    SLA2_WS_FIELDS(X)
#undef X
    n += r16(2 * (nk + d + 16)); /* rowtmp (doubles) and the pair's d alpha */
    return n;
}

void sla2_ws_map(Sla2Ws *w, float *base, const Sla2Dims *dm) {
    size_t N = dm->N, d = dm->d, nq = dm->nq, nk = dm->nk, bq = dm->block_q, bk = dm->block_k;
    float *p = base;
#define X(name, size) w->name = p, p += r16(size);
    SLA2_WS_FIELDS(X)
#undef X
    w->rowtmp = (double *)p; /* 64-byte aligned: every slice is a multiple of 16 floats */
}

int sla2_cpu_path(const Sla2Dims *dm) {
    if (dm->cpu_path != SLA2_CPU_AUTO) return dm->cpu_path;
    return dm->soft ? SLA2_CPU_BLOCKS : SLA2_CPU_GATHER;
}

static size_t thread_scratch_floats(const Sla2Dims *dm) {
    int path = sla2_cpu_path(dm);
    return path == SLA2_CPU_DENSE ? sla2_dense_scratch_floats(dm)
           : path == SLA2_CPU_GATHER ? sla2_gather_scratch_floats(dm)
                                     : 0;
}

/* The pairs' slices, then one scratch per thread (dense and gather paths). */
size_t cpu_sla2_workspace_floats(const Sla2Dims *dm) {
    return (size_t)dm->B * dm->H * sla2_ws_per_pair(dm) + (size_t)cpu_max_threads() * thread_scratch_floats(dm);
}

static float *thread_scratch(float *workspace, const Sla2Dims *dm) {
    return workspace + (size_t)dm->B * dm->H * sla2_ws_per_pair(dm) +
           (size_t)cpu_thread_num() * thread_scratch_floats(dm);
}

/* The gather path keeps its probabilities from forward to backward. */
size_t cpu_sla2_saved_floats(const Sla2Dims *dm) {
    if (sla2_cpu_path(dm) != SLA2_CPU_GATHER) return 0;
    return (size_t)dm->B * dm->H * sla2_gather_kept_per_pair(dm);
}

/* The pair's alpha gradient lives after rowtmp's nk + d doubles. */
static float *ws_dalpha(Sla2Ws *w, const Sla2Dims *dm) { return (float *)(w->rowtmp + dm->nk + dm->d); }

/* --- feature maps phi (applied per token over its d channels) --- */

void sla2_phi_fwd(float *y, const float *x, int rows, int d, int fm) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * d;
        float *yr = y + (size_t)r * d;
        if (fm == SLA2_PHI_SOFTMAX) {
            float mx = cpu_max_f32(xr, d);
            for (int c = 0; c < d; c++) yr[c] = cpu_expf(xr[c] - mx); /* apart from the sum: vectorises */
            float inv = (float)(1.0 / cpu_sum_f64(yr, d));
            for (int c = 0; c < d; c++) yr[c] *= inv;
        } else if (fm == SLA2_PHI_ELU) {
            for (int c = 0; c < d; c++) yr[c] = xr[c] > 0.0f ? xr[c] + 1.0f : cpu_expf(xr[c]);
        } else {
            for (int c = 0; c < d; c++) yr[c] = xr[c] > 0.0f ? xr[c] : 0.0f;
        }
    }
}

/* dx += J^T dy for phi at x (y = phi(x)). */
void sla2_phi_bwd(float *dx, const float *dy, const float *x, const float *y, int rows, int d, int fm) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * d, *yr = y + (size_t)r * d, *g = dy + (size_t)r * d;
        float *o = dx + (size_t)r * d;
        if (fm == SLA2_PHI_SOFTMAX) {
            float dot = (float)cpu_dot_f64(yr, g, d);
            for (int c = 0; c < d; c++) o[c] += yr[c] * (g[c] - dot);
        } else if (fm == SLA2_PHI_ELU) {
            for (int c = 0; c < d; c++) o[c] += xr[c] > 0.0f ? g[c] : g[c] * yr[c];
        } else {
            for (int c = 0; c < d; c++) o[c] += xr[c] > 0.0f ? g[c] : 0.0f;
        }
    }
}

/* --- sparse branch, full precision: online softmax over the weighted blocks --- */

static void sparse_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                       float *o, float *lse, Sla2Ws *w) {
    int N = dm->N, d = dm->d, bq = dm->block_q, bk = dm->block_k;
    float scale = 1.0f / sqrtf((float)d);
    for (int i = 0; i < dm->nq; i++) {
        int a0 = i * bq, na = sla2_block_len(i, bq, N);
        for (int a = 0; a < na; a++) w->m[a] = -INFINITY, w->l[a] = 0.0f;
        memset(w->acc, 0, sizeof(float) * (size_t)na * d);
        for (int j = 0; j < dm->nk; j++) {
            float wgt = mask[(size_t)i * dm->nk + j];
            if (wgt == 0.0f) continue;
            int b0 = j * bk, nb = sla2_block_len(j, bk, N);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, nb, d, scale, q + (size_t)a0 * d, d,
                        k + (size_t)b0 * d, d, 0.0f, w->S, nb);
            for (int a = 0; a < na; a++) {
                float *row = w->S + (size_t)a * nb, mx = w->m[a];
                for (int b = 0; b < nb; b++) mx = row[b] > mx ? row[b] : mx;
                float corr = cpu_expf(w->m[a] - mx), sum = 0.0f;
                for (int b = 0; b < nb; b++) {
                    float p = cpu_expf(row[b] - mx);
                    sum += p;
                    row[b] = wgt * p;
                }
                w->l[a] = w->l[a] * corr + wgt * sum;
                w->m[a] = mx;
                float *acc = w->acc + (size_t)a * d;
                for (int c = 0; c < d; c++) acc[c] *= corr;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, na, d, nb, 1.0f, w->S, nb, v + (size_t)b0 * d, d,
                        1.0f, w->acc, d);
        }
        for (int a = 0; a < na; a++) {
            float inv = 1.0f / w->l[a];
            for (int c = 0; c < d; c++) o[(size_t)(a0 + a) * d + c] = w->acc[(size_t)a * d + c] * inv;
            lse[a0 + a] = w->m[a] + logf(w->l[a]);
        }
    }
}

/* --- linear branch --- */

/* h_j = phi(K_j)^T V_j, z_j = colsum phi(K_j) for every key block. */
static void linear_block_sums(const Sla2Dims *dm, const float *v, Sla2Ws *w) {
    int N = dm->N, d = dm->d, bk = dm->block_k;
    for (int j = 0; j < dm->nk; j++) {
        int b0 = j * bk, nb = sla2_block_len(j, bk, N);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, nb, 1.0f, w->phi_k + (size_t)b0 * d, d,
                    v + (size_t)b0 * d, d, 0.0f, w->h + (size_t)j * d * d, d);
        float *z = w->z + (size_t)j * d;
        memset(z, 0, sizeof(float) * (size_t)d);
        for (int b = b0; b < b0 + nb; b++)
            for (int c = 0; c < d; c++) z[c] += w->phi_k[(size_t)b * d + c];
    }
}

/* H_i = sum_j (1 - M_ij) h_j into w->Hi, w->Zi. A hard mask sums whichever
 * side has fewer blocks: the linear blocks directly, or the totals minus the
 * selected ones (fewer terms, less cancellation). Returns 0 when query block
 * i has no linear block (the branch is then exactly 0). */
static int linear_query_sums(const Sla2Dims *dm, const float *mrow, Sla2Ws *w) {
    int d = dm->d, nk = dm->nk;
    size_t dd = (size_t)d * d;
    memset(w->Hi, 0, sizeof(float) * dd);
    memset(w->Zi, 0, sizeof(float) * (size_t)d);
    if (dm->soft) {
        for (int j = 0; j < nk; j++) {
            float u = 1.0f - mrow[j];
            cblas_saxpy((int)dd, u, w->h + j * dd, 1, w->Hi, 1);
            cblas_saxpy(d, u, w->z + (size_t)j * d, 1, w->Zi, 1);
        }
        return 1;
    }
    int n_sel = 0;
    for (int j = 0; j < nk; j++) n_sel += mrow[j] != 0.0f;
    if (n_sel == nk) return 0;
    if (nk - n_sel <= n_sel) { /* the linear blocks directly */
        for (int j = 0; j < nk; j++)
            if (mrow[j] == 0.0f) {
                cblas_saxpy((int)dd, 1.0f, w->h + j * dd, 1, w->Hi, 1);
                cblas_saxpy(d, 1.0f, w->z + (size_t)j * d, 1, w->Zi, 1);
            }
    } else { /* the totals minus the selected blocks */
        for (int j = 0; j < nk; j++) {
            cblas_saxpy((int)dd, 1.0f, w->h + j * dd, 1, w->Hi, 1);
            cblas_saxpy(d, 1.0f, w->z + (size_t)j * d, 1, w->Zi, 1);
        }
        for (int j = 0; j < nk; j++)
            if (mrow[j] != 0.0f) {
                cblas_saxpy((int)dd, -1.0f, w->h + j * dd, 1, w->Hi, 1);
                cblas_saxpy(d, -1.0f, w->z + (size_t)j * d, 1, w->Zi, 1);
            }
    }
    return 1;
}

static void linear_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                       float *o, Sla2Ws *w) {
    int N = dm->N, d = dm->d, bq = dm->block_q;
    sla2_phi_fwd(w->phi_q, q, N, d, dm->feature_map);
    sla2_phi_fwd(w->phi_k, k, N, d, dm->feature_map);
    linear_block_sums(dm, v, w);
    for (int i = 0; i < dm->nq; i++) {
        int a0 = i * bq, na = sla2_block_len(i, bq, N);
        float *oi = o + (size_t)a0 * d;
        if (!linear_query_sums(dm, mask + (size_t)i * dm->nk, w)) {
            memset(oi, 0, sizeof(float) * (size_t)na * d);
            continue;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, na, d, d, 1.0f, w->phi_q + (size_t)a0 * d, d, w->Hi,
                    d, 0.0f, oi, d);
        for (int a = 0; a < na; a++) {
            float den = cblas_sdot(d, w->phi_q + (size_t)(a0 + a) * d, 1, w->Zi, 1) + SLA2_LINEAR_EPS;
            for (int c = 0; c < d; c++) oi[(size_t)a * d + c] /= den;
        }
    }
}

/* --- forward --- */

void cpu_sla2_fwd(float *out, const Sla2Saved *sv, float *workspace, const float *q, const float *k,
                  const float *v, const float *Wq, const float *Wk, const float *alpha_logit, const Sla2Dims *dm) {
    int B = dm->B, H = dm->H, N = dm->N, d = dm->d, path = sla2_cpu_path(dm);
    size_t per = sla2_ws_per_pair(dm);
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        Sla2Ws w;
        sla2_ws_map(&w, workspace + (size_t)bh * per, dm);
        size_t off = (size_t)bh * N * d, moff = (size_t)bh * dm->nq * dm->nk;
        const float *qb = q + off, *kb = k + off, *vb = v + off;
        float *mask = sv->mask + moff, *os = sv->o_s + off, *ol = sv->o_l + off;
        sla2_router_fwd(dm, qb, kb, Wq, Wk, mask, sv->pc + moff, &w);
        float *o_fp = dm->qat ? sv->o_s_fp + off : os, *lse = sv->lse + (size_t)bh * N;
        int quadratic = path == SLA2_CPU_GATHER && sla2_cpu_linear_quadratic(dm);
        if (path == SLA2_CPU_GATHER)
            sla2_gather_fwd(dm, qb, kb, vb, mask, o_fp, lse, quadratic ? ol : NULL,
                            sv->kept + (size_t)bh * sla2_gather_kept_per_pair(dm), &w, thread_scratch(workspace, dm));
        else if (path == SLA2_CPU_DENSE)
            sla2_sparse_fwd_dense(dm, qb, kb, vb, mask, o_fp, lse, thread_scratch(workspace, dm));
        else sparse_fwd(dm, qb, kb, vb, mask, o_fp, lse, &w);
        if (dm->qat) sla2_qat_sparse_fwd(dm, qb, kb, vb, mask, os, &w);
        if (!quadratic) linear_fwd(dm, qb, kb, vb, mask, ol, &w);
        float alpha = 1.0f / (1.0f + expf(-alpha_logit[h]));
        for (int n = 0; n < N; n++) {
            float *o = out + ((size_t)b * N + n) * H * d + (size_t)h * d;
            for (int c = 0; c < d; c++) o[c] = alpha * os[(size_t)n * d + c] + (1.0f - alpha) * ol[(size_t)n * d + c];
        }
    }
}

/* --- backward --- */

static void sparse_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                       const float *o_ref, const float *lse, float *dq, float *dk, float *dv, Sla2Ws *w) {
    int N = dm->N, d = dm->d, bq = dm->block_q, bk = dm->block_k, nk = dm->nk;
    float scale = 1.0f / sqrtf((float)d);
    for (int i = 0; i < dm->nq; i++) {
        int a0 = i * bq, na = sla2_block_len(i, bq, N);
        float *D = w->m; /* D_a = gs_a . O_s,a (the full-precision O_s) */
        for (int a = 0; a < na; a++)
            D[a] = cblas_sdot(d, w->gs + (size_t)(a0 + a) * d, 1, o_ref + (size_t)(a0 + a) * d, 1);
        for (int j = 0; j < nk; j++) {
            float wgt = mask[(size_t)i * nk + j];
            if (wgt == 0.0f) continue;
            int b0 = j * bk, nb = sla2_block_len(j, bk, N);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, nb, d, scale, q + (size_t)a0 * d, d,
                        k + (size_t)b0 * d, d, 0.0f, w->S, nb);
            /* dP = gs_i V_j^T into P2 */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, nb, d, 1.0f, w->gs + (size_t)a0 * d, d,
                        v + (size_t)b0 * d, d, 0.0f, w->P2, nb);
            double dmij = 0.0;
            for (int a = 0; a < na; a++)
                for (int b = 0; b < nb; b++) {
                    size_t t = (size_t)a * nb + b;
                    float p = cpu_expf(w->S[t] - lse[a0 + a]); /* unweighted: P = wgt * p */
                    float g = p * (w->P2[t] - D[a]);
                    dmij += g;
                    w->S[t] = wgt * g;  /* dS */
                    w->P2[t] = wgt * p; /* P */
                }
            if (dm->soft) w->dmask[(size_t)i * nk + j] += (float)dmij;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nb, d, na, 1.0f, w->P2, nb, w->gs + (size_t)a0 * d, d,
                        1.0f, dv + (size_t)b0 * d, d);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, na, d, nb, scale, w->S, nb, k + (size_t)b0 * d, d,
                        1.0f, dq + (size_t)a0 * d, d);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nb, d, na, scale, w->S, nb, q + (size_t)a0 * d, d,
                        1.0f, dk + (size_t)b0 * d, d);
        }
    }
}

/* O_l,a = A_a / den_a, A_a = phi(q_a) H_i, den_a = phi(q_a).Z_i + eps, H_i = sum_j (1 - M_ij) h_j. */
static void linear_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                       const float *o_l, float *dq, float *dk, float *dv, Sla2Ws *w) {
    int N = dm->N, d = dm->d, bq = dm->block_q, bk = dm->block_k, nq = dm->nq, nk = dm->nk;
    size_t dd = (size_t)d * d;
    sla2_phi_fwd(w->phi_q, q, N, d, dm->feature_map);
    sla2_phi_fwd(w->phi_k, k, N, d, dm->feature_map);
    linear_block_sums(dm, v, w);
    memset(w->dphi_q, 0, sizeof(float) * (size_t)N * d);
    memset(w->dphi_k, 0, sizeof(float) * (size_t)N * d);
    memset(w->dH, 0, sizeof(float) * nq * dd);
    memset(w->dZ, 0, sizeof(float) * (size_t)nq * d);
    for (int i = 0; i < nq; i++) {
        int a0 = i * bq, na = sla2_block_len(i, bq, N);
        if (!linear_query_sums(dm, mask + (size_t)i * nk, w)) continue; /* O_l = 0: constant */
        float *dA = w->acc, *dden = w->l;
        for (int a = 0; a < na; a++) {
            const float *pq = w->phi_q + (size_t)(a0 + a) * d, *g = w->gl + (size_t)(a0 + a) * d;
            float den = cblas_sdot(d, pq, 1, w->Zi, 1) + SLA2_LINEAR_EPS;
            dden[a] = -cblas_sdot(d, g, 1, o_l + (size_t)(a0 + a) * d, 1) / den;
            for (int c = 0; c < d; c++) dA[(size_t)a * d + c] = g[c] / den;
        }
        /* dphi_q = dA H_i^T + dden Z_i;  dH_i = phi_q^T dA;  dZ_i = phi_q^T dden */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, d, d, 1.0f, dA, d, w->Hi, d, 1.0f,
                    w->dphi_q + (size_t)a0 * d, d);
        cblas_sger(CblasRowMajor, na, d, 1.0f, dden, 1, w->Zi, 1, w->dphi_q + (size_t)a0 * d, d);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, na, 1.0f, w->phi_q + (size_t)a0 * d, d, dA, d, 0.0f,
                    w->dH + i * dd, d);
        cblas_sgemv(CblasRowMajor, CblasTrans, na, d, 1.0f, w->phi_q + (size_t)a0 * d, d, dden, 1, 0.0f,
                    w->dZ + (size_t)i * d, 1);
        if (dm->soft)
            for (int j = 0; j < nk; j++)
                w->dmask[(size_t)i * nk + j] -= cblas_sdot((int)dd, w->dH + i * dd, 1, w->h + j * dd, 1) +
                                                cblas_sdot(d, w->dZ + (size_t)i * d, 1, w->z + (size_t)j * d, 1);
    }
    /* dh_j = sum_i (1 - M_ij) dH_i, then back through h_j = phi(K_j)^T V_j and z_j. */
    for (int j = 0; j < nk; j++) {
        float *dh = w->dh + j * dd, *dz = w->dz + (size_t)j * d;
        memset(dh, 0, sizeof(float) * dd);
        memset(dz, 0, sizeof(float) * (size_t)d);
        for (int i = 0; i < nq; i++) {
            float u = 1.0f - mask[(size_t)i * nk + j];
            if (u == 0.0f) continue;
            cblas_saxpy((int)dd, u, w->dH + i * dd, 1, dh, 1);
            cblas_saxpy(d, u, w->dZ + (size_t)i * d, 1, dz, 1);
        }
        int b0 = j * bk, nb = sla2_block_len(j, bk, N);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, d, d, 1.0f, v + (size_t)b0 * d, d, dh, d, 1.0f,
                    w->dphi_k + (size_t)b0 * d, d);
        for (int b = b0; b < b0 + nb; b++)
            for (int c = 0; c < d; c++) w->dphi_k[(size_t)b * d + c] += dz[c];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, d, d, 1.0f, w->phi_k + (size_t)b0 * d, d, dh, d,
                    1.0f, dv + (size_t)b0 * d, d);
    }
    sla2_phi_bwd(dq, w->dphi_q, q, w->phi_q, N, d, dm->feature_map);
    sla2_phi_bwd(dk, w->dphi_k, k, w->phi_k, N, d, dm->feature_map);
}

/* sum over the rows of g . (O_s - O_l): alpha's gradient before the
 * sigmoid's. g: rows ldg apart; diff: d floats of scratch. */
static double dalpha_sum(const float *restrict g, int ldg, const float *restrict os, const float *restrict ol,
                         float *restrict diff, int N, int d) {
    double da = 0.0;
    for (int n = 0; n < N; n++) {
        size_t t = (size_t)n * d;
        for (int c = 0; c < d; c++) diff[c] = os[t + c] - ol[t + c];
        da += cpu_dot_f64(g + (size_t)n * ldg, diff, d);
    }
    return da;
}

/* The gradients reaching O_s (alpha g) and O_l ((1 - alpha) g), contiguous. */
static void branch_grads(float *restrict gs, float *restrict gl, const float *restrict g, int ldg, float alpha, int N,
                         int d) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < d; c++) {
            gs[(size_t)n * d + c] = alpha * g[(size_t)n * ldg + c];
            gl[(size_t)n * d + c] = (1.0f - alpha) * g[(size_t)n * ldg + c];
        }
}

void cpu_sla2_bwd(float *dq, float *dk, float *dv, float *dWq, float *dWk, float *dalpha_logit, float *workspace,
                  const float *dout, const Sla2Saved *sv, const float *q, const float *k, const float *v,
                  const float *Wq, const float *Wk, const float *alpha_logit, const Sla2Dims *dm) {
    int B = dm->B, H = dm->H, N = dm->N, d = dm->d, path = sla2_cpu_path(dm);
    size_t per = sla2_ws_per_pair(dm);
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        Sla2Ws w;
        sla2_ws_map(&w, workspace + (size_t)bh * per, dm);
        size_t off = (size_t)bh * N * d, moff = (size_t)bh * dm->nq * dm->nk;
        const float *qb = q + off, *kb = k + off, *vb = v + off, *mask = sv->mask + moff;
        const float *os = sv->o_s + off, *ol = sv->o_l + off;
        float alpha = 1.0f / (1.0f + expf(-alpha_logit[h]));
        const float *g = dout + (size_t)b * N * H * d + (size_t)h * d; /* this head's rows, H * d apart */
        *ws_dalpha(&w, dm) = (float)(dalpha_sum(g, H * d, os, ol, w.acc, N, d) * alpha * (1.0f - alpha));
        int quadratic = path == SLA2_CPU_GATHER && sla2_cpu_linear_quadratic(dm);
        if (!quadratic) branch_grads(w.gs, w.gl, g, H * d, alpha, N, d); /* the gather path reads g itself */
        if (dm->soft) memset(w.dmask, 0, sizeof(float) * (size_t)dm->nq * dm->nk);
        const float *o_fp = dm->qat ? sv->o_s_fp + off : os, *lse = sv->lse + (size_t)bh * N;
        if (path == SLA2_CPU_GATHER)
            sla2_gather_bwd(dm, qb, kb, vb, mask, sv->kept + (size_t)bh * sla2_gather_kept_per_pair(dm), g, H * d,
                            alpha, dq + off, dk + off, dv + off, quadratic, &w, thread_scratch(workspace, dm));
        else if (path == SLA2_CPU_DENSE)
            sla2_sparse_bwd_dense(dm, qb, kb, vb, mask, o_fp, lse, w.gs, dq + off, dk + off, dv + off, w.dmask,
                                  w.rowtmp, thread_scratch(workspace, dm));
        else sparse_bwd(dm, qb, kb, vb, mask, o_fp, lse, dq + off, dk + off, dv + off, &w);
        if (!quadratic) linear_bwd(dm, qb, kb, vb, mask, ol, dq + off, dk + off, dv + off, &w);
        if (dm->soft)
            sla2_router_bwd(dm, qb, kb, Wq, Wk, mask, sv->pc + moff, w.dmask, dq + off, dk + off, &w);
    }
    /* Reduce the per-pair shares in a fixed order: reproducible. */
    for (int bh = 0; bh < B * H; bh++) {
        Sla2Ws w;
        sla2_ws_map(&w, workspace + (size_t)bh * per, dm);
        if (dalpha_logit) dalpha_logit[bh % H] += *ws_dalpha(&w, dm);
        if (dm->soft && dWq) cpu_accumulate(dWq, w.dWq, (size_t)d * d);
        if (dm->soft && dWk) cpu_accumulate(dWk, w.dWk, (size_t)d * d);
    }
}
