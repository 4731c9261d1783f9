#!/usr/bin/env python3
"""tests/bench/bench_sdpa.py — PyTorch's scaled_dot_product_attention, forward
and backward, at the sizes of bench_cuda_attn (N = 256 ... 16384, d = 64,
B*H = tokens / N, H = min(16, B*H)), printing lines in the same format:
  sdpa N=1024 B=4 H=16 d=64 prec=bf16 backend=flash fwd_ms=... bwd_ms=... total_ms=... total_tflops=...
bf16/fp16 use the FlashAttention backend; fp32 (which flash does not take)
the memory-efficient one. Medians of CUDA-event timings after two warm-ups.
Exit 77 without torch or a GPU.
  bench_sdpa.py [--iters 10] [--max-n 16384] [--tokens 65536] [--dtype bf16|fp16|fp32]
"""
import argparse
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--max-n", type=int, default=16384)
    ap.add_argument("--tokens", type=int, default=65536)
    ap.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16")
    args = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError as e:
        print(f"bench_sdpa: PyTorch with torch.nn.attention is not available ({e}): nothing to time", file=sys.stderr)
        return 77
    if not torch.cuda.is_available():
        print("bench_sdpa: no CUDA device: nothing to time (run it on a GPU machine)", file=sys.stderr)
        return 77
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    backend, bname = (SDPBackend.FLASH_ATTENTION, "flash") if dtype != torch.float32 else \
        (SDPBackend.EFFICIENT_ATTENTION, "efficient")
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, {args.iters} iterations (median), "
          f"B*H = {args.tokens} / N, d = 64")
    d = 64
    for N in (256, 1024, 4096, 16384):
        if N > args.max_n:
            break
        BH = max(1, args.tokens // N)
        H = min(16, BH)
        B = BH // H
        g = torch.Generator(device="cuda").manual_seed(0)
        q, k, v = (torch.randn(B, H, N, d, device="cuda", dtype=dtype, generator=g).requires_grad_() for _ in range(3))
        dout = torch.randn(B, H, N, d, device="cuda", dtype=dtype, generator=g)
        tf, tb = [], []
        with sdpa_kernel(backend):
            for it in range(args.iters + 2):
                e0, e1, e2 = (torch.cuda.Event(enable_timing=True) for _ in range(3))
                q.grad = k.grad = v.grad = None
                e0.record()
                o = F.scaled_dot_product_attention(q, k, v)
                e1.record()
                o.backward(dout)
                e2.record()
                torch.cuda.synchronize()
                if it >= 2:
                    tf.append(e0.elapsed_time(e1))
                    tb.append(e1.elapsed_time(e2))
        tf.sort()
        tb.sort()
        f, b = tf[len(tf) // 2], tb[len(tb) // 2]
        fl = 4.0 * B * H * N * N * d
        print(f"sdpa N={N} B={B} H={H} d={d} prec={args.dtype} backend={bname} fwd_ms={f:.3f} bwd_ms={b:.3f} "
              f"total_ms={f + b:.3f} fwd_tflops={fl / f * 1e-9:.2f} bwd_tflops={2.5 * fl / b * 1e-9:.2f} "
              f"total_tflops={3.5 * fl / (f + b) * 1e-9:.2f}", flush=True)
        del q, k, v, dout, o
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
