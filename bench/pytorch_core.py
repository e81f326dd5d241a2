#!/usr/bin/python3
"""pytorch_core.py — PyTorch eager peer of bench/bench_core.c (ember-bench-core).

Measures the same things the same way (median over repeats after warm-up, with
p10/p90): 16-element f32 add (us per op), the same add + backward (us per
step), f32 matmul (GFLOP/s) at 256..2048, and
16M-element f32 add / add_ (GB/s, counting 3 x 64 MiB of traffic). Prints one
JSON object on stdout and nothing else. Not a test; it asserts nothing.

Run with Debian's interpreter (/usr/bin/python3, package python3-torch).
ember-bench-core --pytorch runs it with OPENBLAS_CORETYPE set so that Debian's
OpenBLAS picks its best kernels on this CPU.
"""
import json
import os
import sys
import time

import torch

QUICK = "--quick" in sys.argv
THREADS = 2


def stats(samples):
    s = sorted(samples)
    n = len(s)

    def q(p):
        x = p * (n - 1)
        i = int(x)
        j = min(i + 1, n - 1)
        return s[i] + (s[j] - s[i]) * (x - i)

    return {"median": q(0.5), "p10": q(0.1), "p90": q(0.9)}


def bench_add16():
    a = torch.rand(16)
    b = torch.rand(16)
    iters = 20000 if QUICK else 50000
    reps = 7 if QUICK else 21
    for _ in range(iters):  # warm-up
        torch.add(a, b)
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            torch.add(a, b)
        samples.append((time.perf_counter() - t0) / iters * 1e6)
    return stats(samples)


def bench_add16_backward():
    a = torch.rand(16, requires_grad=True)
    b = torch.rand(16, requires_grad=True)
    g = torch.ones(16)
    iters = 2000 if QUICK else 5000
    reps = 7 if QUICK else 21
    for _ in range(iters):  # warm-up
        torch.add(a, b).backward(g)
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            torch.add(a, b).backward(g)
        samples.append((time.perf_counter() - t0) / iters * 1e6)
    return stats(samples)


def bench_matmul(n):
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    flops = 2.0 * n * n * n
    # enough calls per sample to last ~20 ms
    inner = max(1, int(4e8 / flops))
    reps = 5 if QUICK else 15
    for _ in range(2 * inner):
        torch.matmul(a, b)
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            torch.matmul(a, b)
        dt = (time.perf_counter() - t0) / inner
        samples.append(flops / dt / 1e9)
    return stats(samples)


def bench_add16m():
    n = 16 * 1024 * 1024
    traffic = 3.0 * n * 4
    a = torch.rand(n)
    b = torch.rand(n)
    reps = 5 if QUICK else 15
    for _ in range(2):
        torch.add(a, b)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        c = torch.add(a, b)
        dt = time.perf_counter() - t0
        del c
        out.append(traffic / dt / 1e9)
    inplace = []
    for _ in range(2):
        a.add_(b)
    for _ in range(reps):
        t0 = time.perf_counter()
        a.add_(b)
        dt = time.perf_counter() - t0
        inplace.append(traffic / dt / 1e9)
    return stats(out), stats(inplace)


def main():
    torch.set_num_threads(THREADS)
    res = {
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", ""),
    }
    res["add16_us"] = bench_add16()
    res["add16_backward_us"] = bench_add16_backward()
    for n in (256, 512, 1024, 2048):
        res["matmul%d_gflops" % n] = bench_matmul(n)
    res["add16m_gbs"], res["add16m_inplace_gbs"] = bench_add16m()
    json.dump(res, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
