#!/usr/bin/python3
"""pytorch_ops.py — PyTorch peer of ember-bench (bench/ember_bench.c).

ember-bench --pytorch writes the cases it measured to a JSON file (op, dtype,
geometry, input kinds and domains, FLOP and byte counts, tolerance) and runs
this script with Debian's /usr/bin/python3 (python3-torch) or $EMBER_PYTHON,
OPENBLAS_CORETYPE set. For each case it draws inputs in the same domains,
checks one call against the same op computed in float64 by torch on the same
inputs (rounded to the result dtype; max abs/rel error, NMSE and pass/fail
with the same tolerance rule), then times it: warm-up, `repeat` samples of
`inner` calls, median/p10/p90 per call. The `train` suite trains the same
MLP 784-256-128-10 from the same formula-made weights and data as
bench/bench_train.c, so the final losses are comparable. Writes an
"ember-bench/1" report whose rows carry backend "pytorch".

Usage: pytorch_ops.py --cases IN.json --out OUT.json [--threads N] [--progress]
"""
import json
import math
import sys
import time

import torch

DT = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16,
      "i32": torch.int32, "i64": torch.int64, "bool": torch.bool}
MANT = {"f32": (24, -126), "f64": (53, -1022), "f16": (11, -14), "bf16": (8, -126)}


def arg(argv, name, default=None):
    return argv[argv.index(name) + 1] if name in argv else default


def stats(samples):
    s = sorted(samples)
    n = len(s)

    def q(p):
        x = p * (n - 1)
        i = int(x)
        j = min(i + 1, n - 1)
        return s[i] + (s[j] - s[i]) * (x - i)

    med = q(0.5)
    return {"median_s": med, "p10_s": q(0.1), "p90_s": q(0.9),
            "spread": (q(0.9) - q(0.1)) / med if med > 0 else 0.0, "repeats": n}


def make_input(spec, gen):
    shape = spec["shape"]
    dt = DT[spec["dtype"]]
    kind = spec["kind"]
    if kind == "index":
        return torch.randint(0, int(spec["index_max"]), shape, generator=gen, dtype=torch.int64)
    if kind == "mask" or dt == torch.bool:
        return torch.randint(0, 2, shape, generator=gen).to(torch.bool)
    if dt in (torch.int32, torch.int64):
        return torch.randint(-8, 9, shape, generator=gen, dtype=dt)
    if kind == "divisor":
        m = torch.rand(shape, generator=gen, dtype=torch.float64) * 1.5 + 0.5
        sign = torch.randint(0, 2, shape, generator=gen) * 2 - 1
        return (m * sign).to(dt)
    lo, hi = spec["lo"], spec["hi"]
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo).to(dt)


def op_fn(name, out_dtype):
    """The torch call for an ember-bench op; inputs as ember-bench orders them."""
    table = {
        "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b, "pow": torch.pow, "maximum": torch.maximum, "minimum": torch.minimum,
        "eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge,
        "where": lambda c, a, b: torch.where(c, a, b),
        "masked_fill": lambda t, m: t.masked_fill(m, 2.0),
        "axpy": lambda a, b: a.add_(b, alpha=0.5),
        "add_scalar": lambda a: a + 3, "mul_scalar": lambda a: a * 3,
        "neg": torch.neg, "abs": torch.abs, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt,
        "rsqrt": torch.rsqrt, "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh,
        "sigmoid": torch.sigmoid, "relu": torch.relu,
        "gelu": lambda x: torch.nn.functional.gelu(x),
        "gelu_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
        "silu": torch.nn.functional.silu, "softplus": lambda x: torch.nn.functional.softplus(x, 1.0, 20.0),
        "square": torch.square, "reciprocal": torch.reciprocal, "erf": torch.erf, "sign": torch.sign,
        "sum": lambda x: x.sum(1), "mean": lambda x: x.mean(1), "max": lambda x: x.amax(1),
        "min": lambda x: x.amin(1), "argmax": lambda x: x.argmax(1), "argmin": lambda x: x.argmin(1),
        "var": lambda x: x.var(1), "std": lambda x: x.std(1), "logsumexp": lambda x: x.logsumexp(1),
        "softmax": lambda x: x.softmax(1), "log_softmax": lambda x: x.log_softmax(1),
        "matmul": torch.matmul, "linear": torch.nn.functional.linear,
        "addmm": torch.addmm,
        "cast": lambda x: x.to(DT[out_dtype]),
        "copy_t": lambda x: x.t().contiguous(),
        "cat": lambda a, b: torch.cat((a, b), 0),
        "index_select": lambda t, i: t.index_select(0, i),
        "gather": lambda t, i: t.gather(0, i),
        "scatter_add": lambda t, i, s: t.scatter_add(0, i, s),
        "embedding": lambda w, i: torch.nn.functional.embedding(i, w),
    }
    if name == "clamp":
        return lambda x: x.clamp(-3, 3) if not x.is_floating_point() else x.clamp(-0.5, 0.5)
    return table.get(name)


def ulp(ref, dt_name):
    mant, emin = MANT[dt_name]
    a = ref.abs()
    _, e = torch.frexp(torch.where(a == 0, torch.ones_like(a), a))
    e = torch.where(a == 0, torch.full_like(e, emin + 1), e)
    e = torch.clamp(e, min=emin + 1)
    return torch.pow(2.0, (e - mant).to(torch.float64))


def check(case, fn, inputs):
    """One checked call vs float64 torch on the same inputs: error metrics and pass/fail."""
    name = case["op"]
    x64 = [t.double() if t.is_floating_point() else t for t in inputs]
    x64abs = [t.abs() if t.is_floating_point() else t for t in x64]
    ins = [t.clone() for t in inputs] if name == "axpy" else inputs
    got = fn(*ins)
    if name == "axpy":
        x64 = [t.clone() for t in x64]
    ref = fn(*x64)
    out_dt = case["out_dtype"]
    ref = ref.to(DT[out_dt]).double()  # rounded to the result dtype, as ember-bench does
    got = got.double()
    scale = None
    if case.get("scale_abs") and name != "axpy":
        scale = fn(*[t.clone() for t in x64abs]).double().abs()
    atol, rtol, ulps = case["tol"]
    fin = torch.isfinite(ref) & torch.isfinite(got)
    diff = (got - ref).abs()
    m = ref.abs() if scale is None else torch.maximum(ref.abs(), scale)
    bound = atol + rtol * m
    if ulps and out_dt in MANT:
        bound = bound + ulps * ulp(ref, out_dt)
    ok = (diff <= bound) & fin
    ok |= torch.isnan(ref) & torch.isnan(got)
    ok |= torch.isinf(ref) & (got == ref)
    d = diff[fin]
    r = ref[fin]
    max_abs = float(d.max()) if d.numel() else 0.0
    nz = r != 0
    max_rel = float((d[nz] / r[nz].abs()).max()) if nz.any() else 0.0
    sr = float((r * r).sum())
    se = float((d * d).sum())
    nmse = se / sr if sr > 0 else se
    if bool((~fin & ~ok).any()):
        max_abs = float("inf")
    return {"max_abs_err": max_abs, "max_rel_err": max_rel, "nmse": nmse, "pass": bool(ok.all())}


def time_case(fn, inputs, repeat, share):
    t0 = time.perf_counter()
    fn(*inputs)
    one = max(time.perf_counter() - t0, 1e-9)
    if one > share:
        return stats([one]), 1
    per_sample = min(0.02, (share - one) / repeat)
    inner = max(1, int(per_sample / one))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn(*inputs)
        samples.append((time.perf_counter() - t0) / inner)
    return stats(samples), inner


def train_mlp(batch, warmup, steps, repeat):
    dims = (784, 256, 128, 10)
    layers = []
    for l in range(1, 4):
        fan_in, fan_out = dims[l - 1], dims[l]
        lin = torch.nn.Linear(fan_in, fan_out)
        j = torch.arange(fan_out * fan_in, dtype=torch.float64)
        o = torch.arange(fan_out, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_((torch.sin(0.731 * j + 1.3 * l) / math.sqrt(fan_in)).float().view(fan_out, fan_in))
            lin.bias.copy_((0.1 * torch.cos(0.37 * o + l) / math.sqrt(fan_in)).float())
        layers += [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    x = torch.sin(0.013 * torch.arange(batch * 784, dtype=torch.float64) + 0.5).float().view(batch, 784)
    y = (torch.arange(batch) * 7 + 3) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    inner = max(1, steps // max(1, repeat))
    samples, loss = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            loss = step()
        samples.append((time.perf_counter() - t0) / inner)
    s = stats(samples)
    return {"backend": "pytorch", "batch": batch, "steps": warmup + repeat * inner, "ok": True,
            "step_median_s": s["median_s"], "step_p10_s": s["p10_s"], "step_p90_s": s["p90_s"],
            "spread": s["spread"], "repeats": s["repeats"], "steps_per_s": 1.0 / s["median_s"],
            "final_loss": float(loss), "note": ""}


def main():
    argv = sys.argv[1:]
    cases_path, out_path = arg(argv, "--cases"), arg(argv, "--out")
    if not cases_path or not out_path:
        sys.stderr.write("usage: pytorch_ops.py --cases IN.json --out OUT.json [--threads N]\n")
        return 2
    threads = int(arg(argv, "--threads", "2"))
    progress = "--progress" in argv and sys.stdout.isatty()
    torch.set_num_threads(threads)
    spec = json.load(open(cases_path))
    repeat = int(spec.get("repeat", 7))
    cases = spec.get("cases", [])
    budget = float(spec.get("budget_s", 60)) * 0.3
    gen = torch.Generator().manual_seed(1)
    rows = []
    t_start = time.perf_counter()
    for k, case in enumerate(cases):
        row = {k2: case[k2] for k2 in ("op", "dtype", "size", "shape", "flops", "bytes", "metric")}
        row.update({"backend": "pytorch", "fallback": False, "inner": 1, "note": "",
                    "tol_atol": case["tol"][0], "tol_rtol": case["tol"][1], "tol_ulps": case["tol"][2]})
        if progress:
            sys.stdout.write("\r\033[KPyTorch [%d/%d] %s %s %s" % (k + 1, len(cases), case["op"], case["dtype"], case["size"]))
            sys.stdout.flush()
        fn = op_fn(case["op"], case["out_dtype"])
        left = budget - (time.perf_counter() - t_start)
        share = max(0.002, left / max(1, len(cases) - k))
        try:
            if fn is None:
                raise NotImplementedError("no PyTorch peer for op " + case["op"])
            inputs = [make_input(s, gen) for s in case["inputs"]]
            every = case.get("equal_every", 0)
            if every:
                inputs[1].view(-1)[::every] = inputs[0].view(-1)[::every]
            row.update(check(case, fn, inputs))
            # the better of 1 and N intra-op threads (a busy machine gives N threads long tails)
            best = None
            for nt in sorted({1, threads}):
                torch.set_num_threads(nt)
                t, inner = time_case(fn, inputs, repeat, share / 2)
                if best is None or t["median_s"] < best[0]["median_s"]:
                    best = (t, inner, nt)
            torch.set_num_threads(threads)
            row.update(best[0])
            row["inner"] = best[1]
            row["note"] = "%d thread%s" % (best[2], "" if best[2] == 1 else "s")
            row["status"] = "ok"
        except (RuntimeError, NotImplementedError, TypeError) as e:
            row["status"] = "unsupported"
            row["note"] = str(e).split("\n")[0][:150]
        rows.append(row)
    if progress:
        sys.stdout.write("\r\033[K")
    train = []
    tspec = spec.get("train")
    if "train" in spec.get("suites", []) and tspec:
        for b in tspec["batches"]:
            train.append(train_mlp(b, tspec["warmup"], tspec["steps"], tspec["repeat"]))
    precision = "torch.backends.cuda.matmul.allow_tf32=%s; float32_matmul_precision=%s" % (
        torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()
        if hasattr(torch, "get_float32_matmul_precision") else "n/a")
    out = {"format": "ember-bench/1", "created": "", "command": " ".join(sys.argv),
           "pytorch": {"version": torch.__version__,
                       "settings": "CPU, the better of 1 and %d intra-op threads per op (training: %d), %s; "
                                   "inputs from torch's generator in the same domains"
                                   % (threads, threads, precision)},
           "ops": rows, "train": train}
    with open(out_path, "w") as f:
        json.dump(finite(out), f, indent=1, allow_nan=False)
    return 0


def finite(v):
    """NaN and inf become null (JSON has no such numbers)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


if __name__ == "__main__":
    sys.exit(main())
