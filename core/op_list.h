/* core/op_list.h — the one list of the op table's entries: every kernel a
 * backend provides, with its signature and contract. Adding an op is one
 * OP entry here (a forward and its backward are two) plus its kernels:
 * cpu_<name> in kernels/cpu and cuda_<name> in kernels/cuda. Everything else
 * that names the entries is generated from this list:
 *   core/op_table.h          the OpTable struct (one function pointer each)
 *   kernels/cpu/cpu.h        the declarations of the cpu_* kernels
 *   kernels/cpu/ops_cpu.c    the table ops_cpu
 *   kernels/cuda/ops_cuda.h  the declarations of the cuda_* kernels
 *   kernels/cuda/ops_cuda.cu the table ops_cuda
 *   tests/test_cuda_ops.c    the check that ops_cuda holds cuda_<name> in each
 *
 * An X-macro: each entry is OP(return type, name, (parameters)); the file
 * that includes this one defines OP to what it needs from an entry and
 * #undefs it after, for example
 *   #define OP(ret, op, params) ret cpu_##op params;   (a declaration)
 *   #define OP(ret, op, params) .op = cpu_##op,        (a table entry)
 * The order of the entries is the order of the struct's fields. The
 * conventions every entry follows (layouts, backward accumulates, NULL
 * gradients) and the types the signatures use (Sla2Dims, ...) are in
 * core/op_table.h, which must be included first. No include guard: it is
 * read once per use. */
#ifndef OP
#error "core/op_list.h: define OP(ret, op, params) before including it"
#endif

/* out[M,OC] = inp[M,IC] w[OC,IC]^T (+ b[OC]) */
OP(void, linear_fwd, (float *out, const float *inp, const float *w, const float *b, int M, int IC, int OC))
OP(void, linear_bwd, (float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int M,
                      int IC, int OC))

/* out = inp * rstd * w over rows of C; rstd[rows] saved for backward */
OP(void, rmsnorm_fwd, (float *out, float *rstd, const float *inp, const float *w, int rows, int C, float eps))
OP(void, rmsnorm_bwd, (float *dinp, float *dw, const float *dout, const float *inp, const float *w, const float *rstd,
                       int rows, int C))

/* 2D RoPE on [BH, N, hd]: the first n_ctx tokens are not rotated; token
 * n_ctx + i uses row i of the angle tables cos/sin [N - n_ctx, hd/2]
 * (one angle per interleaved pair (2j, 2j+1)). */
OP(void, rope_fwd, (float *out, const float *inp, const float *cos, const float *sin, int BH, int N, int hd, int n_ctx))
OP(void, rope_bwd, (float *dinp, const float *dout, const float *cos, const float *sin, int BH, int N, int hd,
                    int n_ctx))

/* out[b,n,c] = x[b,n,c] * (1 + scale[b,c]) + shift[b,c] */
OP(void, modulate_fwd, (float *out, const float *x, const float *shift, const float *scale, int B, int N, int C))
OP(void, modulate_bwd, (float *dx, float *dshift, float *dscale, const float *dout, const float *x, const float *scale,
                        int B, int N, int C))

/* out[b,n,c] = x[b,n,c] + gate[b,c] * y[b,n,c] */
OP(void, gated_add_fwd, (float *out, const float *x, const float *gate, const float *y, int B, int N, int C))
OP(void, gated_add_bwd, (float *dx, float *dgate, float *dy, const float *dout, const float *gate, const float *y,
                         int B, int N, int C))

/* inp [M, 2h] = (a | b) -> out [M, h] = silu(a) * b */
OP(void, swiglu_fwd, (float *out, const float *inp, int M, int h))
OP(void, swiglu_bwd, (float *dinp, const float *dout, const float *inp, int M, int h))

OP(void, silu_fwd, (float *out, const float *inp, size_t n))
OP(void, silu_bwd, (float *dinp, const float *dout, const float *inp, size_t n))

/* qkv [B, N, 3, H, hd] -> q, k, v [B, H, N, hd] */
OP(void, qkv_split_fwd, (float *q, float *k, float *v, const float *qkv, int B, int N, int H, int hd))
OP(void, qkv_split_bwd, (float *dqkv, const float *dq, const float *dk, const float *dv, int B, int N, int H, int hd))

/* Fused chains of a JiT block (docs/cuda_kernels.md): one pass instead of
 * three. norm_modulate: r = x + gate[b,c] * y[b,n,c] when gate is given
 * (the gated residual, written to res), else r = x (res unused, may be
 * NULL); out = (r * rstd * w[c]) * (1 + scale[b,c]) + shift[b,c], i.e.
 * gated_add, rmsnorm and modulate in turn; rstd [B*N] saved. Backward:
 * dres is res's own incoming gradient (NULL: none), r is res (or x); the
 * total gradient of r goes to dx, and through the residual to dy and
 * dgate (gate given only). */
OP(void, norm_modulate_fwd, (float *out, float *res, float *rstd, const float *x, const float *gate, const float *y,
                             const float *w, const float *shift, const float *scale, int B, int N, int C, float eps))
OP(void, norm_modulate_bwd, (float *dx, float *dgate, float *dy, float *dw, float *dshift, float *dscale,
                             const float *dout, const float *dres, const float *r, const float *gate, const float *y,
                             const float *w, const float *scale, const float *rstd, int B, int N, int C))
/* qkv [B, N, 3, H, hd] -> q, k, v [B, H, N, hd], q and k RMS-normalised
 * per head row (weights qw, kw [hd]) and then rotated as rope_fwd (tokens
 * before n_ctx not rotated, cos/sin [N - n_ctx, hd/2]): qkv_split, rmsnorm
 * and rope in one pass. rstd [2, B*H*N] (q's rows, then k's) saved;
 * hd % 4 == 0 and hd <= QKV_NORM_ROPE_MAX_HD. */
OP(void, qkv_norm_rope_fwd, (float *q, float *k, float *v, float *rstd, const float *qkv, const float *qw,
                             const float *kw, const float *cos, const float *sin, int B, int N, int H, int hd,
                             int n_ctx, float eps))
OP(void, qkv_norm_rope_bwd, (float *dqkv, float *dqw, float *dkw, const float *dq, const float *dk, const float *dv,
                             const float *qkv, const float *qw, const float *kw, const float *rstd, const float *cos,
                             const float *sin, int B, int N, int H, int hd, int n_ctx))

/* softmax(q k^T / sqrt(hd)) v with fp32 logits; q, k, v [B, H, N, hd] ->
 * out [B, N, H*hd] (heads merged). `saved` keeps what backward needs, in
 * a backend's own format and size (attention_saved_floats): the CPU keeps
 * the probabilities [B, H, N, N], the GPU only the log-sum-exp [B, H, N]
 * (flash-style: no N x N matrix in memory). Backward gets
 * attention_scratch_floats of scratch and the forward's output `out` (the GPU
 * takes D = rowsum(dout . out) from it; the CPU does not need it). */
OP(void, attention_fwd, (float *out, float *saved, const float *q, const float *k, const float *v, int B, int H, int N,
                         int hd))
OP(void, attention_bwd, (float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *out,
                         const float *saved, const float *q, const float *k, const float *v, int B, int H, int N, int hd))
OP(size_t, attention_saved_floats, (int B, int H, int N, int hd))
OP(size_t, attention_scratch_floats, (int B, int H, int N, int hd))

/* img [B, C, H, W] -> patches [B, (H/p)*(W/p), C*p*p] in (channel, row, col) order */
OP(void, patchify_fwd, (float *out, const float *img, int B, int C, int H, int W, int p))
OP(void, patchify_bwd, (float *dimg, const float *dout, int B, int C, int H, int W, int p))
/* tokens [B, (H/p)*(W/p), p*p*C] in (row, col, channel) order -> img [B, C, H, W] */
OP(void, unpatchify_fwd, (float *img, const float *tok, int B, int C, int H, int W, int p))
OP(void, unpatchify_bwd, (float *dtok, const float *dimg, int B, int C, int H, int W, int p))

/* t [B] -> [B, dim]: [cos(t f_j) for j < dim/2, then sin], f_j = exp(-ln(1e4) j / (dim/2)) */
OP(void, timestep_embed_fwd, (float *out, const float *t, int B, int dim))
OP(void, timestep_embed_bwd, (float *dt, const float *dout, const float *t, int B, int dim))

/* out[b,:] = table[idx[b], :] */
OP(void, embedding_fwd, (float *out, const float *table, const int *idx, int B, int C))
OP(void, embedding_bwd, (float *dtable, const float *dout, const int *idx, int B, int C))

/* out[b,n,c] = x[b,n,c] + y[n,c] (position tables) */
OP(void, add_rows_fwd, (float *out, const float *x, const float *y, int B, int N, int C))
OP(void, add_rows_bwd, (float *dx, float *dy, const float *dout, int B, int N, int C))

/* out = a + b, elementwise */
OP(void, add_fwd, (float *out, const float *a, const float *b, size_t n))

/* out [B, L+N, C]: rows l < L are yemb[b] + pos[l], then x[b] */
OP(void, incontext_prepend_fwd, (float *out, const float *x, const float *yemb, const float *pos, int B, int N, int L,
                                 int C))
OP(void, incontext_prepend_bwd, (float *dx, float *dyemb, float *dpos, const float *dout, int B, int N, int L, int C))
/* out [B, N, C] = x[B, L+N, C] without its first L rows */
OP(void, incontext_strip_fwd, (float *out, const float *x, int B, int N, int L, int C))
OP(void, incontext_strip_bwd, (float *dx, const float *dout, int B, int N, int L, int C))

/* out [B, C] = columns [j*C, (j+1)*C) of x [B, k*C] */
OP(void, chunk_fwd, (float *out, const float *x, int B, int k, int C, int j))
OP(void, chunk_bwd, (float *dx, const float *dout, int B, int k, int C, int j))

/* JiT v-loss: d_b = max(1 - t_b, 0.05); loss = mean((x - xhat)^2 / d_b^2)
 * over B * per elements (per = C*H*W). loss is a 1-element array. */
OP(void, vloss_fwd, (float *loss, const float *xhat, const float *x, const float *t, int B, int per))
OP(void, vloss_bwd, (float *dxhat, const float *dloss, const float *xhat, const float *x, const float *t, int B,
                     int per))

/* inverted dropout with a Philox mask: element i is kept when
 * uniform(seed, stream, i) >= p, and scaled by 1/(1-p) */
OP(void, dropout_fwd, (float *out, const float *x, size_t n, float p, uint64_t seed, uint64_t stream))
OP(void, dropout_bwd, (float *dx, const float *dout, size_t n, float p, uint64_t seed, uint64_t stream))

/* SLA2: q, k, v [B, H, N, d], proj_q, proj_k [d, d], alpha_logit [H] ->
 * out [B, N, H*d]. workspace: sla2_workspace_floats(dm) floats. Backward
 * writes router gradients only in soft mode. */
OP(void, sla2_fwd, (float *out, const Sla2Saved *sv, float *workspace, const float *q, const float *k, const float *v,
                    const float *proj_q, const float *proj_k, const float *alpha_logit, const Sla2Dims *dm))
OP(void, sla2_bwd, (float *dq, float *dk, float *dv, float *dproj_q, float *dproj_k, float *dalpha_logit,
                    float *workspace, const float *dout, const Sla2Saved *sv, const float *q, const float *k,
                    const float *v, const float *proj_q, const float *proj_k, const float *alpha_logit,
                    const Sla2Dims *dm))

/* Workspace (floats) the backend's SLA2 kernels need for one call, and
 * what its forward keeps for backward in Sla2Saved.kept. */
OP(size_t, sla2_workspace_floats, (const Sla2Dims *dm))
OP(size_t, sla2_saved_floats, (const Sla2Dims *dm))
/* Per-head diagnostics st[H] (host memory) from a finished forward whose
 * inputs and saved fields are in the backend's memory. A few times per
 * run: the GPU copies to the host and uses the CPU's reference. */
OP(void, sla2_stats, (Sla2Stats *st, const float *out, const Sla2Saved *sv, const float *q, const float *k,
                      const float *v, const float *alpha_logit, const Sla2Dims *dm))

/* loss = mean((a - b)^2) over n elements (router distillation) */
OP(void, mse_fwd, (float *loss, const float *a, const float *b, size_t n))
OP(void, mse_bwd, (float *da, float *db, const float *dloss, const float *a, const float *b, size_t n))

/* Softmax cross-entropy over class logits [B, K] with labels [B] in [0, K):
 * loss = mean_b (logsumexp(logits[b]) - logits[b, labels[b]]) (1 element);
 * probs [B, K] keeps the softmax for backward. */
OP(void, xent_fwd, (float *loss, float *probs, const float *logits, const int *labels, int B, int K))
OP(void, xent_bwd, (float *dlogits, const float *dloss, const float *probs, const int *labels, int B, int K))

/* Overlapping patches (im2col): img [B, C, H, W], or [B, H, W, C] when
 * channels_last -> [B, Ho*Wo, C*k*k], token (oy, ox) = the k x k window
 * at (oy*s - pad, ox*s - pad) in (channel, row, col) order either way
 * (so a PyTorch conv weight [OC, C, k, k] is the linear weight as it
 * is), zero outside; Ho = (H + 2 pad - k)/s + 1 (Wo alike). */
OP(void, unfold_fwd, (float *out, const float *img, int B, int C, int H, int W, int k, int s, int pad,
                      int channels_last))
OP(void, unfold_bwd, (float *dimg, const float *dout, int B, int C, int H, int W, int k, int s, int pad,
                      int channels_last))

/* The convolutional networks' ops (VGG16 and LPIPS, kernels/cpu/vision.c),
 * on channels-last images [B, H*W, C]:
 * relu: out = max(x, 0); its backward passes dout where out > 0. */
OP(void, relu_fwd, (float *out, const float *x, size_t n))
OP(void, relu_bwd, (float *dx, const float *dout, const float *out, size_t n))
/* 2x2 max pooling at stride 2 (floor: a last odd row or column is
 * dropped): x [B, H*W, C] -> [B, (H/2)*(W/2), C]; backward routes each
 * output gradient to the first maximum of its window in row-major order
 * (PyTorch's choice), found again from x. */
OP(void, maxpool2_fwd, (float *out, const float *x, int B, int H, int W, int C))
OP(void, maxpool2_bwd, (float *dx, const float *dout, const float *x, int B, int H, int W, int C))
/* LPIPS's distance of one layer: out[b] = mean over the N pixels of
 * sum_c w[c] (a[c]/(|a| + 1e-10) - f[c]/(|f| + 1e-10))^2, with a, f the
 * pixel's C-vectors of a, f [B, N, C] and |.| the L2 norm. A zero
 * vector has a zero gradient (PyTorch's is NaN there). da, df may be NULL. */
OP(void, lpips_dist_fwd, (float *out, const float *a, const float *f, const float *w, int B, int N, int C))
OP(void, lpips_dist_bwd, (float *da, float *df, const float *dout, const float *a, const float *f, const float *w,
                          int B, int N, int C))

/* out [B, C] = mean over the N tokens of x [B, N, C] */
OP(void, mean_tokens_fwd, (float *out, const float *x, int B, int N, int C))
OP(void, mean_tokens_bwd, (float *dx, const float *dout, int B, int N, int C))

/* The ViT ops of DINOv2 (PixelGen's REPA and P-DINO):
 * LayerNorm over the last dimension with weight and bias: mean, rstd
 * [rows] keep the row statistics for backward (biased variance). */
OP(void, layernorm_fwd, (float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                         int rows, int C, float eps))
OP(void, layernorm_bwd, (float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                         const float *mean, const float *rstd, int rows, int C))
/* exact GELU: x/2 (1 + erf(x / sqrt 2)) */
OP(void, gelu_fwd, (float *out, const float *inp, size_t n))
OP(void, gelu_bwd, (float *dinp, const float *dout, const float *inp, size_t n))
/* Cosine similarity of rows: out[r] = a.b / (max(|a|, 1e-8) max(|b|, 1e-8))
 * (PyTorch's rule), a, b [rows, C]; da, db may be NULL. */
OP(void, cosine_fwd, (float *out, const float *a, const float *b, int rows, int C))
OP(void, cosine_bwd, (float *da, float *db, const float *dout, const float *a, const float *b, int rows, int C))

/* Bicubic resize of P planes [P, Hi, Wi] -> [P, Ho, Wo] with source steps
 * ry, rx (kernels/bicubic.h: PyTorch's interpolate, align_corners
 * False, no antialias); backward is its transpose. */
OP(void, resize_bicubic_fwd, (float *out, const float *inp, int P, int Hi, int Wi, int Ho, int Wo, float ry, float rx))
OP(void, resize_bicubic_bwd, (float *dinp, const float *dout, int P, int Hi, int Wi, int Ho, int Wo, float ry,
                              float rx))

/* The FID Inception-v3's ops (train/eval/inception.c), forward only.
 * unfold2d: unfold with rectangular kh x kw windows at stride s and zero
 * padding ph rows, pw columns (Ho = (H + 2 ph - kh)/s + 1, Wo alike), same
 * layouts and (channel, row, col) order; unfold is its square case. A conv
 * weight [OC, C, kh, kw] is then the linear weight as it is. */
OP(void, unfold2d_fwd, (float *out, const float *img, int B, int C, int H, int W, int kh, int kw, int s, int ph,
                        int pw, int channels_last))
/* k x k pooling at stride s with padding pad (floor, PyTorch's ceil_mode
 * False) of x [B, H*W, C] -> [B, Ho*Wo, C]: avg 0 is the maximum over the
 * window's pixels inside the image (padding is -inf), avg 1 their mean
 * (padding not counted: count_include_pad False). */
OP(void, pool2d_fwd, (float *out, const float *x, int B, int H, int W, int C, int k, int s, int pad, int avg))
/* Channel concatenation, one part at a time: x [rows, C] into columns
 * [off, off + C) of out [rows, Cout]. */
OP(void, concat_cols_fwd, (float *out, const float *x, int rows, int Cout, int off, int C))
/* Bilinear resize of P planes [P, Hi, Wi] -> [P, Ho, Wo] as TensorFlow 1.x
 * (kernels/bilinear_tf.h: torch-fidelity's resize, align_corners False, no
 * half-pixel offset, no antialias). */
OP(void, resize_bilinear_tf_fwd, (float *out, const float *inp, int P, int Hi, int Wi, int Ho, int Wo))

/* dst += src */
OP(void, accumulate, (float *dst, const float *src, size_t n))
