#!/usr/bin/env python3
"""Safetensors fixtures for tests/test_safetensors.c, written by the reference
implementation (the `safetensors` Python package, Hugging Face's Rust code).

Two modes:

  generate (default)
      python3 tests/data/make_safetensors_fixtures.py [OUT_DIR]
      Writes the fixture files into OUT_DIR (default: this script's folder):
        torch_mixed.safetensors   every dtype Ember has, 0-d and empty tensors,
                                  names with dots and non-ASCII, metadata with
                                  escapes and non-ASCII text
        torch_plain.safetensors   one tensor, no metadata
      test_safetensors.c checks the exact values listed in EXPECTED below (the
      same numbers are written out in the C test) and that Ember, re-saving
      a loaded fixture, produces the same bytes as the reference writer.

  check FILE
      python3 tests/data/make_safetensors_fixtures.py check FILE
      Loads FILE with the reference implementation and checks that it holds
      exactly EXPECTED (values, dtypes, shapes) and METADATA. This is the
      reverse direction, run by hand (CI does not run Python):
        build/tests/test_safetensors --write /tmp/ember_written.safetensors
        python3 tests/data/make_safetensors_fixtures.py check /tmp/ember_written.safetensors
      The test's --write mode builds the tensors from its own C tables (not
      from the fixtures), some of them non-contiguous, and saves them with
      em_save_safetensors.

Requirements: torch and safetensors, e.g.
  /usr/bin/python3 -m venv --system-site-packages /tmp/stvenv
  /tmp/stvenv/bin/pip install safetensors
  /tmp/stvenv/bin/python tests/data/make_safetensors_fixtures.py
Generated with safetensors 0.8.0 and torch 1.13.
"""
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

# name -> (dtype, shape, values in row-major order). Every value is exact in
# its dtype, so the C test compares bit for bit.
EXPECTED = {
    "weight": (torch.float32, [2, 3], [0.5, -1.25, 3.0, 100.0, -0.0625, 65504.0]),
    "bias": (torch.float64, [3], [0.1, -2.5, 1e300]),
    "half": (torch.float16, [4], [1.0, -2.0, 0.333251953125, 65504.0]),
    "bhalf": (torch.bfloat16, [2, 2], [1.0, -3.0, 0.333984375, 256.0]),
    "ids": (torch.int64, [5], [0, -1, 2**40, -(2**63), 2**63 - 1]),
    "counts": (torch.int32, [2, 2], [7, -8, 2147483647, -2147483648]),
    "mask": (torch.bool, [3], [True, False, True]),
    "scalar": (torch.float32, [], [42.0]),
    "empty": (torch.float32, [0, 4], []),
    "layers.0.attn.w": (torch.float32, [1, 1], [-7.5]),
    "poids_\u00e9t\u00e9": (torch.int32, [1], [2024]),
}
METADATA = {"format": "pt", "note": 'Ember fixture \u2713 "quoted" back\\slash\ttab'}

PLAIN = {"x": (torch.float64, [2, 2], [1.0, 2.0, 3.0, 4.0])}


def make(spec):
    out = {}
    for name, (dtype, shape, values) in spec.items():
        out[name] = torch.tensor(values, dtype=dtype).reshape(shape)
    return out


def generate(out_dir):
    save_file(make(EXPECTED), os.path.join(out_dir, "torch_mixed.safetensors"), metadata=METADATA)
    save_file(make(PLAIN), os.path.join(out_dir, "torch_plain.safetensors"))
    # Verify what was written with the reference loader.
    check(os.path.join(out_dir, "torch_mixed.safetensors"))
    print("wrote", os.path.join(out_dir, "torch_mixed.safetensors"), "and torch_plain.safetensors")


def check(path, spec=EXPECTED, metadata=METADATA):
    got = load_file(path)
    if sorted(got) != sorted(spec):
        sys.exit(f"{path}: tensors {sorted(got)}, want {sorted(spec)}")
    want = make(spec)
    for name, t in want.items():
        g = got[name]
        if g.dtype != t.dtype or list(g.shape) != list(t.shape):
            sys.exit(f"{path}: {name}: {g.dtype}{list(g.shape)}, want {t.dtype}{list(t.shape)}")
        # Bitwise comparison (also tells -0.0 from 0.0).
        if t.dtype.is_floating_point:
            bits = {torch.float64: torch.int64, torch.float32: torch.int32,
                    torch.float16: torch.int16, torch.bfloat16: torch.int16}[t.dtype]
            same = torch.equal(g.contiguous().view(bits), t.contiguous().view(bits))
        else:
            same = torch.equal(g, t)
        if not same:
            sys.exit(f"{path}: {name}: values {g.tolist()}, want {t.tolist()}")
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    if meta != metadata:
        sys.exit(f"{path}: metadata {meta}, want {metadata}")
    print(f"{path}: OK ({len(want)} tensors and {len(metadata)} metadata entries match)")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "check":
        if len(args) != 2:
            sys.exit("usage: make_safetensors_fixtures.py check FILE")
        check(args[1])
    else:
        generate(args[0] if args else os.path.dirname(os.path.abspath(__file__)))
