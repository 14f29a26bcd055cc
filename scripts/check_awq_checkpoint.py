#!/usr/bin/env python3
"""Checks an AWQ (GEMM) Hugging Face folder with numpy alone, independently of SwiftQuant's code.

The folder's tensors are unpacked following AutoAWQ's GEMM layout as AutoAWQ,
transformers and vLLM read it:

  <module>.qweight  int32 [in, out/8]      4-bit codes packed along the output dimension,
                                          8 per word, interleaved: the nibble at bits
                                          4k..4k+3 of word j holds output column
                                          8j + [0, 2, 4, 6, 1, 3, 5, 7][k] (readers undo it
                                          with the reverse order [0, 4, 1, 5, 2, 6, 3, 7])
  <module>.qzeros   int32 [groups, out/8]  zero points, packed the same way, stored as they are
  <module>.scales   f16   [groups, out]
  weight[o, i] = (code[i, o] - zero[i // group_size, o]) * scale[i // group_size, o]

and checked for shapes, dtypes and the config (quant_method awq, version gemm, 4 bits,
zero_point, modules_to_not_convert).

  --reference FILE   f32 safetensors of the expected dequantized weights under
                     `<module>.weight` (`swiftquant export-hf --dump-reference`): every
                     quantized module must match it exactly.
  --original FOLDER  a floating-point Hugging Face folder of the same model: each
                     dequantized weight must be close to the original, the non-quantized
                     tensors must match it to f16 precision.
  --transformers     also load the folder with transformers (needs torch, transformers and an
                     AWQ backend such as gptqmodel) and compare its logits on a few tokens
                     with a float model holding the unpacked weights.

Prints one line per finding and exits 1 if anything is wrong.

  python3 scripts/check_awq_checkpoint.py OUT --reference REF.safetensors --original .cache/fixtures/hf-smollm2
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hf_check_common import (Checker, parse_arguments, has_tensors, check_original, check_reference, check_transformers,  # noqa: E402
                             dequantize_all, load_folder)

REVERSE_ORDER = np.array([0, 4, 1, 5, 2, 6, 3, 7])
REL_ERROR_LIMIT = 0.3  # 4-bit round-to-nearest; a misordered weight is near 1.4


def unpack_awq(packed: np.ndarray) -> np.ndarray:
    """[n, m/8] int32 -> [n, m] values in column order."""
    words = packed.astype(np.int64) & 0xFFFFFFFF
    nibbles = (words[:, :, None] >> (4 * np.arange(8))) & 0xF          # [n, m/8, 8], nibble k
    return nibbles[:, :, REVERSE_ORDER].reshape(packed.shape[0], -1)    # column 8j + c <- nibble REVERSE[c]


def dequantize(t: dict, module: str, group: int, out_f: int, in_f: int, c: Checker):
    group = in_f if group == -1 else group
    if in_f % group:
        c.fail(f"{module}: {in_f} inputs are not a multiple of group_size {group}")
        return None
    groups = in_f // group
    expect = {"qweight": ((in_f, out_f // 8), np.int32), "qzeros": ((groups, out_f // 8), np.int32),
              "scales": ((groups, out_f), np.float16)}
    if not has_tensors(t, module, expect, c):
        return None
    if f"{module}.g_idx" in t or f"{module}.weight" in t:
        c.fail(f"{module} has a g_idx or a weight beside its qweight")
    codes = unpack_awq(t[f"{module}.qweight"])                        # [in, out]
    zeros = unpack_awq(t[f"{module}.qzeros"])                         # [groups, out]
    scales = t[f"{module}.scales"].astype(np.float32)
    if not np.all(np.isfinite(scales)):
        c.fail(f"{module}.scales has non-finite values")
    g = np.arange(in_f) // group
    w = (codes - zeros[g, :]).astype(np.float32) * scales[g, :]
    return np.ascontiguousarray(w.T)


def main() -> int:
    args = parse_arguments(__doc__)
    c = Checker()

    config = json.loads((args.folder / "config.json").read_text())
    q = config.get("quantization_config") or {}
    if q.get("quant_method") != "awq":
        c.fail("config.json has no AWQ quantization_config")
        return 1
    if str(q.get("version", "")).lower() != "gemm" or q.get("bits") != 4 or q.get("zero_point") is not True:
        c.fail(f"quantization_config {q} is not AWQ GEMM 4-bit with zero points")
    skipped = q.get("modules_to_not_convert") or []
    c.ok(f"config: AWQ gemm, 4-bit, group_size {q.get('group_size')}, {len(skipped)} modules not converted")

    t = load_folder(args.folder)
    weights = dequantize_all(config, t, lambda module, out_f, in_f: dequantize(t, module, q["group_size"], out_f, in_f, c),
                             c, not_converted=skipped)
    if args.reference:
        check_reference(args.reference, weights, c)
    if args.original:
        check_original(args.original, args.folder, t, weights, REL_ERROR_LIMIT, c)
    if args.transformers:
        check_transformers(args.folder, t, weights, c)
    print(f"{len(weights)} modules checked, {c.failures} failures")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
