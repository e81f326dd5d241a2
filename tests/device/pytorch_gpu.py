#!/usr/bin/env python3
"""pytorch_gpu.py — PyTorch (eager, CUDA) peer of gpu_bench.c and ember-bench-mlp
on the lent GPU, run by run_gpu_checks.sh with the device image's python3.

Prints "key value" lines with the keys gpu_bench.c uses (matmul_f32_4096_tflops
with TF32 off, as Ember's default; bf16/f16 8192; add_256M_gbs; clone_256M_gbs;
add16_us) plus mlp_b{1,32,256}_sps: the MLP 784-256-128-10 training step of
bench/pytorch_mlp.py (SGD lr 0.01, zero_grad(set_to_none=True)) on the GPU.
Each figure: median of timed repeats after warm-up, synchronised.
"""
import sys
import time

import torch

QUICK = "--quick" in sys.argv
REPS = 5 if QUICK else 9


def median_s(f, inner):
    f(); f()
    torch.cuda.synchronize()
    t = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _ in range(inner):
            f()
        torch.cuda.synchronize()
        t.append((time.perf_counter() - t0) / inner)
    t.sort()
    return t[len(t) // 2]


def main():
    if not torch.cuda.is_available():
        print("pytorch_gpu: torch.cuda.is_available() is False", file=sys.stderr)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device("cuda")
    print("torch_version", torch.__version__)
    a = torch.randn(16, device=dev); b = torch.randn(16, device=dev)
    print("add16_us %.2f" % (median_s(lambda: a + b, 2000) * 1e6))
    for dt, n, key in ((torch.float32, 4096, "matmul_f32_4096"),
                       (torch.bfloat16, 8192, "matmul_bf16_8192"),
                       (torch.float16, 8192, "matmul_f16_8192")):
        a = torch.randn(n, n, device=dev).to(dt); b = torch.randn(n, n, device=dev).to(dt)
        t = median_s(lambda: a @ b, 3 if n >= 8192 else 10)
        print("%s_tflops %.2f" % (key, 2.0 * n ** 3 / t * 1e-12))
    del a, b
    n = 256 << 20
    x = torch.randn(n, device=dev); y = torch.randn(n, device=dev)
    print("add_256M_gbs %.1f" % (12.0 * n / median_s(lambda: x + y, 5) * 1e-9))
    print("clone_256M_gbs %.1f" % (8.0 * n / median_s(lambda: x.clone(), 5) * 1e-9))
    del x, y
    for batch in (1, 32, 256):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 10)).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        xb = torch.randn(batch, 784, device=dev)
        yb = torch.randint(0, 10, (batch,), device=dev)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            opt.step()

        print("mlp_b%d_sps %.0f" % (batch, batch / median_s(step, 50)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
