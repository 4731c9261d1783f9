#!/usr/bin/python3
"""PyTorch side of the training-step benchmark (CPU, float32, jit-tiny), and
on a GPU the anchor for the CUDA backend's step (tests/gpu/run_gpu_checks.sh):

    /usr/bin/python3 tests/bench/bench_step_torch.py --batch 32 --iters 10 --warmup 2 --threads 2
    python3 tests/bench/bench_step_torch.py --device cuda --dtype bf16 --sdpa --compile --adamw \
        --config JiT-B/16 --batch 64

On a GPU: --dtype bf16 runs forward and backward under torch.autocast(bf16)
(parameters and optimiser state stay fp32, as ours do), --sdpa takes
attention through F.scaled_dot_product_attention (FlashAttention / cuDNN),
--compile wraps the model in torch.compile (its compilation happens in the
warm-up steps), --adamw adds a fused AdamW update to the timed step. Timing
synchronises the device before reading the clock. Exit 77 when --device cuda
finds no GPU.

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
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--sdpa", action="store_true", help="attention through scaled_dot_product_attention")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--adamw", action="store_true", help="include a fused AdamW step")
    args = ap.parse_args()
    if args.iters < 1 or args.batch < 1 or args.threads < 1 or args.warmup < 0:
        ap.error("batch, iters, threads must be >= 1 and warmup >= 0")

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_step_torch: no CUDA device: nothing to time (run it on a GPU machine)", file=sys.stderr)
        return 77
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    jit_ref.Attention.use_sdpa = args.sdpa
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
    dev = torch.device(args.device)
    model.to(dev)
    fused = {"fused": True} if args.device == "cuda" else {}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **fused) if args.adamw else None
    net = torch.compile(model) if args.compile else model
    amp = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def sync():
        if args.device == "cuda":
            torch.cuda.synchronize()

    B, C, S = args.batch, cfg.in_channels, cfg.img_size
    x = torch.rand(B, C, S, S, generator=gen) * 2 - 1
    z = torch.rand(B, C, S, S, generator=gen) * 2 - 1
    t = torch.rand(B, generator=gen)
    y = torch.randint(0, cfg.num_classes + 1, (B,), generator=gen)
    x, z, t, y = (a.to(dev) for a in (x, z, t, y))

    times = []
    for it in range(args.warmup + args.iters):
        sync()
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        with amp:
            x_hat = net(z, t, y)
            loss = jit_ref.vloss(x_hat.float(), x, z, t)
        loss.backward()
        if opt is not None:
            opt.step()
        sync()
        dt = (time.perf_counter() - t0) * 1e3
        if it >= args.warmup:
            times.append(dt)
    if not torch.isfinite(loss):
        raise SystemExit("non-finite loss")
    print(f"torch_step_ms median={statistics.median(times):.3f} min={min(times):.3f} "
          f"iters={args.iters} batch={args.batch} threads={args.threads} device={args.device} dtype={args.dtype} "
          f"sdpa={int(args.sdpa)} compile={int(args.compile)} adamw={int(args.adamw)} config={args.config}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
