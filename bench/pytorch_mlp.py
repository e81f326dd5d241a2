#!/usr/bin/python3
"""pytorch_mlp.py — PyTorch eager peer of bench/bench_mlp.c (ember-bench-mlp).

The same training step as the C side: MLP 784-256-128-10 (Linear, ReLU,
Linear, ReLU, Linear), cross-entropy on integer targets, SGD (lr 0.01),
zero_grad(set_to_none=True) + forward + backward + step, on random inputs fixed before timing.
For each batch size: samples per second, median over repeats after warm-up,
with p10/p90. Prints one JSON object on stdout and nothing else.

Run with Debian's interpreter (/usr/bin/python3, package python3-torch);
ember-bench-mlp --pytorch runs it with OPENBLAS_CORETYPE set, in two
configurations on the 2 cores — torch 2 threads with OpenBLAS 1, and torch
1 thread with OpenBLAS 2 (two pools of 2 threads each give PyTorch a heavy
tail of slow steps here) — and keeps the better figure per batch size.
--threads N sets torch's intra-op threads (default 2).
"""
import json
import sys
import time

import torch

QUICK = "--quick" in sys.argv
THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2


def stats(samples):
    s = sorted(samples)
    n = len(s)

    def q(p):
        x = p * (n - 1)
        i = int(x)
        j = min(i + 1, n - 1)
        return s[i] + (s[j] - s[i]) * (x - i)

    return {"median": q(0.5), "p10": q(0.1), "p90": q(0.9)}


def bench(batch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(batch, 784)
    y = torch.randint(0, 10, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    # steps per sample: about 50 ms of work
    t0 = time.perf_counter()
    for _ in range(5):
        step()
    per = (time.perf_counter() - t0) / 5
    inner = max(3, int(0.05 / max(per, 1e-6)))
    reps = 5 if QUICK else 11
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            step()
        dt = (time.perf_counter() - t0) / inner
        samples.append(batch / dt)
    return stats(samples)


def main():
    torch.set_num_threads(THREADS)
    res = {"torch_version": torch.__version__, "threads": torch.get_num_threads()}
    for b in (1, 32, 256):
        res["mlp_b%d_sps" % b] = bench(b)
    json.dump(res, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
