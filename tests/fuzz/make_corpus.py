#!/usr/bin/env python3
"""Writes the seed corpus of the safetensors fuzzer into tests/fuzz/corpus/.

Python standard library only (struct, json); deterministic. Run from anywhere:
    python3 tests/fuzz/make_corpus.py
Seeds (small on purpose; libFuzzer grows its own corpus in build-fuzz/corpus):
    empty.safetensors     "{}" and no data
    plain.safetensors     one F32 tensor and metadata, as Ember writes it
    mixed.safetensors     every Ember dtype, a 0-d and an empty tensor,
                          a non-ASCII name, data ordered by element size
    escapes.safetensors   whitespace, string escapes (\\uXXXX, surrogate pair),
                          an ignored extra key, null metadata, offsets out of
                          header order
    torch_plain.safetensors  a copy of tests/data/torch_plain.safetensors,
                          written by the reference implementation
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def pack(header_text, data):
    raw = header_text.encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def layout(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, bytes); data ordered by element size."""
    size = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "BOOL": 1}
    order = sorted(range(len(tensors)), key=lambda i: -size[tensors[i][1]])
    offsets, data, pos = {}, b"", 0
    for i in order:
        offsets[i] = (pos, pos + len(tensors[i][3]))
        data += tensors[i][3]
        pos += len(tensors[i][3])
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    for i, (name, dtype, shape, _) in enumerate(tensors):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": list(offsets[i])}
    return pack(json.dumps(header, separators=(",", ":"), ensure_ascii=False), data)


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "empty.safetensors": pack("{}", b""),
        "plain.safetensors": layout(
            [("w", "F32", [2, 2], struct.pack("<4f", 1, -2, 0.5, 3))], {"format": "pt"}),
        "mixed.safetensors": layout([
            ("mask", "BOOL", [3], bytes([1, 0, 1])),
            ("f32", "F32", [2, 1], struct.pack("<2f", 1.5, -0.0)),
            ("f64", "F64", [], struct.pack("<d", 1e300)),
            ("f16", "F16", [2], struct.pack("<2H", 0x3C00, 0x7C00)),
            ("bf16", "BF16", [1, 1, 2], struct.pack("<2H", 0x3F80, 0xFFC0)),
            ("i32", "I32", [2], struct.pack("<2i", -1, 2**31 - 1)),
            ("i64", "I64", [1], struct.pack("<q", -2**63)),
            ("empty", "F32", [0, 3], b""),
            ("caf\u00e9.w", "I32", [1], struct.pack("<i", 7)),
        ], {"note": "seed", "k": "v\"\\"}),
        "escapes.safetensors": pack(
            '{ "__metadata__" : null ,\n'
            '  "b\\u00e9\\ud83d\\ude00\\/\\"\\\\\\n" : { "data_offsets" : [ 8 , 10 ] , "extra" : '
            '{"x": [1, -2.5e-3, true, false, null, "s"]}, "shape" : [ 1 ] , "dtype" : "BF16" } ,\n'
            '\t"a" : {"dtype":"I64","shape":[1],"data_offsets":[0,8]},\r\n'
            '  "z" : {"dtype":"F32","shape":[0, 5],"data_offsets":[10,10]} }\n',
            struct.pack("<qH", 42, 0x4000)),
    }
    for name, content in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(content)
    shutil.copyfile(os.path.join(HERE, "..", "data", "torch_plain.safetensors"),
                    os.path.join(OUT, "torch_plain.safetensors"))
    print("wrote", len(seeds) + 1, "seeds into", OUT)


if __name__ == "__main__":
    main()
