#!/usr/bin/python3
"""PyTorch side of the training-step benchmark (CPU, float32, jit-tiny).

    /usr/bin/python3 tests/bench/bench_step_torch.py --batch 32 --iters 10 --warmup 2 --threads 2

Times one training step's compute, forward + v-loss + backward (no optimizer
update), with grads zeroed by zero_grad(set_to_none=True) at the start of every
iteration (included in the timed region).  The model uses the real
init_weights, after which the zero-initialised adaLN linears and final linear
are perturbed with N(0, 0.02) values so no work is trivially zero.  Inputs:
x, z ~ uniform[-1, 1], t ~ uniform[0, 1), y ~ randint(0, num_classes + 1).
Prints one line:
    torch_step_ms median=<float> min=<float> iters=<n> batch=<b> threads=<t>
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.dont_write_bytecode = True   # keep tests/reference free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import jit_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="time jit-tiny forward+vloss+backward in PyTorch")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", default="jit-tiny")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.iters < 1 or args.batch < 1 or args.threads < 1 or args.warmup < 0:
        ap.error("batch, iters, threads must be >= 1 and warmup >= 0")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = jit_ref.named_config(args.config)
    model = jit_ref.JiT(cfg)                     # float32
    gen = torch.Generator().manual_seed(args.seed)
    jit_ref.init_weights(model, gen)
    with torch.no_grad():
        lins = [b.adaLN_modulation[1] for b in model.blocks]
        lins += [model.final_layer.adaLN_modulation[1], model.final_layer.linear]
        for lin in lins:
            lin.weight.normal_(0.0, 0.02, generator=gen)
            lin.bias.normal_(0.0, 0.02, generator=gen)
    model.train()

    B, C, S = args.batch, cfg.in_channels, cfg.img_size
    x = torch.rand(B, C, S, S, generator=gen) * 2 - 1
    z = torch.rand(B, C, S, S, generator=gen) * 2 - 1
    t = torch.rand(B, generator=gen)
    y = torch.randint(0, cfg.num_classes + 1, (B,), generator=gen)

    times = []
    for it in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        x_hat = model(z, t, y)
        loss = jit_ref.vloss(x_hat, x, z, t)
        loss.backward()
        dt = (time.perf_counter() - t0) * 1e3
        if it >= args.warmup:
            times.append(dt)
    if not torch.isfinite(loss):
        raise SystemExit("non-finite loss")
    print(f"torch_step_ms median={statistics.median(times):.3f} min={min(times):.3f} "
          f"iters={args.iters} batch={args.batch} threads={args.threads}")


if __name__ == "__main__":
    main()
