#!/usr/bin/env python3
"""Checks a GPTQ Hugging Face folder with numpy alone, independently of SwiftQuant's code.

The folder's tensors are unpacked following the GPTQ checkpoint layout as AutoGPTQ,
GPTQModel, transformers/optimum and vLLM read it:

  <module>.qweight  int32 [in*bits/32, out]   codes packed along the input dimension as one
                                              little-endian bit stream per output column
                                              (32/bits codes per word, lowest bits first; at
                                              3 bits, 32 codes fill 3 words)
  <module>.qzeros   int32 [groups, out*bits/32] zero points, the same bit stream along the
                                              output dimension; checkpoint_format "gptq"
                                              (v1) stores zero - 1, "gptq_v2" the zero itself
  <module>.scales   f16   [groups, out]
  <module>.g_idx    int32 [in]                the group of each input column
  weight[o, i] = (code[i, o] - zero[g_idx[i], o]) * scale[g_idx[i], o]

and checked for shapes, dtypes, ranges and the config (bits, group_size, sym, desc_act).

  --reference FILE   f32 safetensors of the expected dequantized weights under
                     `<module>.weight` (what `swiftquant export-hf --dump-reference` writes):
                     every quantized module must match it exactly.
  --original FOLDER  a floating-point Hugging Face folder of the same model (e.g.
                     .cache/fixtures/hf-smollm2): each dequantized weight must be close to
                     the original (this catches rows in the wrong order, e.g. Q/K left in
                     llama.cpp's permuted order), and the non-quantized tensors must match
                     it to f16 precision; with the `tokenizers` package, both tokenizer.json
                     files must encode a sample text identically.
  --transformers     also load the folder with transformers (needs torch, transformers and
                     a GPTQ backend such as gptqmodel; not needed otherwise) and compare its
                     logits on a few tokens with a float model holding the unpacked weights.

Prints one line per finding and exits 1 if anything is wrong.

  python3 scripts/check_gptq_checkpoint.py OUT --reference REF.safetensors --original .cache/fixtures/hf-smollm2
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hf_check_common import (Checker, has_tensors, check_original, check_reference, check_transformers,  # noqa: E402
                             dequantize_all, load_folder)

# Largest relative RMS error of a dequantized weight against the original, by bits: a
# generous bound for round-to-nearest; a misordered weight is far above it (about 1.4).
REL_ERROR_LIMIT = {2: 0.9, 3: 0.5, 4: 0.3, 8: 0.05}


def unpack_stream(words: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Values of `bits` bits from the little-endian bit stream of `words` along the last
    axis: bit s of the stream is bit s % 32 of word s // 32."""
    as_bytes = np.ascontiguousarray(words.astype("<i4")).view(np.uint8)
    stream = np.unpackbits(as_bytes, axis=-1, bitorder="little")
    stream = stream[..., : count * bits].reshape(*words.shape[:-1], count, bits).astype(np.int64)
    return (stream << np.arange(bits, dtype=np.int64)).sum(axis=-1)


def dequantize(t: dict, module: str, q: dict, out_f: int, in_f: int, c: Checker):
    bits, group = q["bits"], q["group_size"]
    fmt = q.get("checkpoint_format", "gptq")
    groups = 1 if group == -1 else -(-in_f // group)
    expect = {"qweight": ((in_f // 32 * bits, out_f), np.int32), "qzeros": ((groups, out_f // 32 * bits), np.int32),
              "scales": ((groups, out_f), np.float16), "g_idx": ((in_f,), np.int32)}
    if not has_tensors(t, module, expect, c):
        return None
    if f"{module}.weight" in t:
        c.fail(f"{module} has both qweight and weight")
    codes = unpack_stream(t[f"{module}.qweight"].T, bits, in_f).T                 # [in, out]
    zeros = unpack_stream(t[f"{module}.qzeros"], bits, out_f)                     # [groups, out]
    if fmt == "gptq":
        zeros = zeros + 1
    g_idx = t[f"{module}.g_idx"].astype(np.int64)
    if g_idx.min() < 0 or g_idx.max() >= groups:
        c.fail(f"{module}.g_idx outside 0..<{groups}")
        return None
    if not q.get("desc_act", False) and group != -1 and not np.array_equal(g_idx, np.arange(in_f) // group):
        c.fail(f"{module}.g_idx is not i // group_size although desc_act is false")
    if group != -1 and np.bincount(g_idx, minlength=groups).max() > group:
        c.fail(f"{module}.g_idx puts more than group_size columns in a group")
    if zeros.max() >= 1 << bits:
        c.fail(f"{module}: a zero point is {zeros.max()}, outside the {bits}-bit grid")
    if q.get("sym", True) and not np.all(zeros == 1 << (bits - 1)):
        c.fail(f"{module}: sym is true but zero points are not {1 << (bits - 1)}")
    scales = t[f"{module}.scales"].astype(np.float32)
    if not np.all(np.isfinite(scales)):
        c.fail(f"{module}.scales has non-finite values")
    w = (codes - zeros[g_idx, :]).astype(np.float32) * scales[g_idx, :]            # [in, out]
    return np.ascontiguousarray(w.T)                                              # [out, in]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--reference", type=Path, help="f32 safetensors of the expected dequantized weights")
    parser.add_argument("--original", type=Path, help="floating-point Hugging Face folder of the same model")
    parser.add_argument("--transformers", action="store_true", help="also load the folder with transformers")
    args = parser.parse_args()
    c = Checker()

    config = json.loads((args.folder / "config.json").read_text())
    q = config.get("quantization_config")
    if not q or q.get("quant_method") != "gptq":
        c.fail("config.json has no GPTQ quantization_config")
        return 1
    if q.get("checkpoint_format", "gptq") not in ("gptq", "gptq_v2"):
        c.fail(f"checkpoint_format {q.get('checkpoint_format')} is not gptq or gptq_v2")
    if q["bits"] not in (2, 3, 4, 8):
        c.fail(f"bits {q['bits']}")
    qc_path = args.folder / "quantize_config.json"
    if qc_path.is_file():
        qc = json.loads(qc_path.read_text())
        for key in ("bits", "group_size", "desc_act", "sym", "checkpoint_format"):
            if qc.get(key) != q.get(key):
                c.fail(f"quantize_config.json {key}={qc.get(key)!r} differs from config.json's {q.get(key)!r}")
    c.ok(f"config: {q['bits']}-bit, group_size {q['group_size']}, sym {q.get('sym')}, desc_act {q.get('desc_act')}, "
         f"checkpoint_format {q.get('checkpoint_format', 'gptq')}")

    t = load_folder(args.folder)
    weights = dequantize_all(config, t, lambda module, out_f, in_f: dequantize(t, module, q, out_f, in_f, c), c)
    if args.reference:
        check_reference(args.reference, weights, c)
    if args.original:
        check_original(args.original, args.folder, t, weights, REL_ERROR_LIMIT[q["bits"]], c)
    if args.transformers:
        check_transformers(args.folder, t, weights, c)
    print(f"{len(weights)} modules checked, {c.failures} failures")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
