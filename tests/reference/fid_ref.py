#!/usr/bin/python3
"""tests/reference/fid_ref.py — FID and Inception Score written from
torch-fidelity's definitions (toshas/torch-fidelity, torch_fidelity/metric_fid.py
and metric_isc.py; docs/eval.md), in numpy only, for the parity test of
jit-eval fid-features (tests/fid_test.sh).

    fid_ref.py make  OUT_DIR N D L SEED   random features -> OUT_DIR/feats.npz (pool, logits; float32),
                                          OUT_DIR/ref.npz (mu, sigma of another random set; np.savez),
                                          OUT_DIR/ref_z.npz (the same, np.savez_compressed)
    fid_ref.py score OUT_DIR              FID and IS of feats.npz against ref.npz -> stdout as JSON

The definitions:
  statistics  mu = np.mean(features, axis=0), sigma = np.cov(features, rowvar=False)
              (features as torch-fidelity hands them over: float32; np.cov works in float64;
              here mu is taken in float64 too, as jit-eval does: upstream's float32 np.mean
              differs by about 1e-7 relative)
  FID         |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 sum(sqrt(eigvals(sigma1 @ sigma2)).real)
              (torch-fidelity >= 0.3.1; <= 0.3.0 used scipy.linalg.sqrtm(sigma1 @ sigma2) and its trace:
              the same number, the trace of a square root being the sum of the eigenvalues' roots)
  IS          logits in float64, rows permuted by np.random.RandomState(2020).permutation(N),
              10 splits [i*N//10, (i+1)*N//10); per split exp(mean_rows(sum_c p (log p - log q))),
              q = the split's mean of p; mean and np.std over the splits.
"""
import json
import sys

import numpy as np


def stats(feat):
    f = feat.astype(np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fid(mu1, s1, mu2, s2):
    diff = mu1 - mu2
    tr_covmean = np.sum(np.sqrt(np.linalg.eigvals(s1.dot(s2)).astype("complex128")).real)
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def inception_score(logits, splits=10, shuffle=True, rng_seed=2020):
    n = logits.shape[0]
    if shuffle:
        logits = logits[np.random.RandomState(rng_seed).permutation(n), :]
    x = logits.astype(np.float64)
    log_p = log_softmax(x)
    p = np.exp(log_p)
    scores = []
    for i in range(splits):
        pc, lc = p[i * n // splits:(i + 1) * n // splits], log_p[i * n // splits:(i + 1) * n // splits]
        q = pc.mean(axis=0, keepdims=True)
        scores.append(float(np.exp((pc * (lc - np.log(q))).sum(axis=1).mean())))
    return float(np.mean(scores)), float(np.std(scores))


def random_features(rng, n, d):
    """Non-negative, correlated, of mixed scale: like pooled ReLU features."""
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    scale = np.exp(rng.uniform(-1.5, 1.0, size=d))
    return np.maximum(rng.standard_normal((n, d)) @ mix * scale + 0.3, 0).astype(np.float32)


def main():
    if sys.argv[1] == "make":
        out, n, d, L, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        rng = np.random.default_rng(seed)
        pool = random_features(rng, n, d)
        logits = (rng.standard_normal((n, L)) * 3).astype(np.float32)
        mu, sigma = stats(random_features(rng, n + 17, d) * np.float32(1.1))
        np.savez(f"{out}/feats.npz", pool=pool, logits=logits)
        np.savez(f"{out}/ref.npz", mu=mu, sigma=sigma)
        np.savez_compressed(f"{out}/ref_z.npz", mu=mu, sigma=sigma)
    elif sys.argv[1] == "score":
        out = sys.argv[2]
        f, r = np.load(f"{out}/feats.npz"), np.load(f"{out}/ref.npz")
        mu, sigma = stats(f["pool"])
        ism, iss = inception_score(f["logits"])
        print(json.dumps({"fid": fid(mu, sigma, r["mu"], r["sigma"]), "is_mean": ism, "is_std": iss}))
    else:
        sys.exit("usage: fid_ref.py make OUT N D L SEED | score OUT")


if __name__ == "__main__":
    main()
