#!/usr/bin/env python3
"""Checks a bitsandbytes 8-bit (LLM.int8()) Hugging Face folder with numpy alone,
independently of SwiftQuant's code.

The layout is what transformers saves for bitsandbytes `Linear8bitLt` modules
(`load_in_8bit`):

  <module>.weight         int8  [out, in]   vector-wise int8 rows, values in -127..127
  <module>.SCB            f32   [out]       each row's max |w| before rounding
  <module>.weight_format  uint8 []          0: row-major ("row")
  weight[o, i] = int8[o, i] * SCB[o] / 127

with `quantization_config` {quant_method: bitsandbytes, load_in_8bit: true,
llm_int8_threshold, llm_int8_skip_modules}. Outlier input columns (|x| >= threshold) are
chosen at run time by the reader, so nothing else is stored.

  --reference FILE   f32 safetensors of the expected dequantized weights (`swiftquant
                     export-hf --dump-reference`): every module must match it to f32
                     rounding (bitsandbytes multiplies by SCB and 1/127 in another order).
  --original FOLDER  the floating-point Hugging Face folder the file was made from: every
                     int8 row must be exactly bitsandbytes' rounding of the original row
                     (round-half-even of w * 127 / max|w|), SCB its max |w| (to one ulp),
                     and the non-quantized tensors must match to f16 precision.
  --transformers     also load the folder with transformers and bitsandbytes (needs torch,
                     transformers, bitsandbytes; its CPU backend runs LLM.int8()) and
                     compare its logits with a float model holding the unpacked weights
                     (top-1 agreement only: LLM.int8() also rounds the activations).
                     Measured by hand (torch 2.15, transformers 5.24, bitsandbytes 0.50.2,
                     CPU): SmolLM2 written by `quantize --method llm-int8` loads and runs;
                     wikitext-2 test, 20 chunks of 512: PPL 23.391 in transformers against
                     23.414 in SwiftQuant's LLM.int8() runtime (f32 folder: 23.0116 in both).

Prints one line per finding and exits 1 if anything is wrong.

  python3 scripts/check_bnb_checkpoint.py OUT --reference REF.safetensors --original .cache/fixtures/hf-smollm2
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hf_check_common import (Checker, parse_arguments, check_original, check_reference, check_transformers, dequantize_all,  # noqa: E402
                             has_tensors, load_folder)

REL_ERROR_LIMIT = 0.02  # int8 rows; a transposed or misread weight is near 1.4


def dequantize(t: dict, module: str, out_f: int, in_f: int, c: Checker):
    expect = {"weight": ((out_f, in_f), np.int8), "SCB": ((out_f,), np.float32)}
    if not has_tensors(t, module, expect, c):
        return None
    fmt = t.get(f"{module}.weight_format")
    if fmt is not None and (fmt.shape != () or fmt.dtype != np.uint8 or int(fmt) != 0):
        c.fail(f"{module}.weight_format is {fmt.dtype}{list(fmt.shape)} = {fmt}, expected uint8 scalar 0 (row)")
    q, scb = t[f"{module}.weight"], t[f"{module}.SCB"]
    if np.any(q == -128):
        c.fail(f"{module}.weight holds -128 (vector-wise int8 uses -127..127)")
    if not np.all(np.isfinite(scb)) or np.any(scb < 0):
        c.fail(f"{module}.SCB has negative or non-finite values")
    return q.astype(np.float32) * scb[:, None] / np.float32(127)


def check_rounding(original: Path, t: dict, weights: dict, c: Checker) -> None:
    """Each int8 row is bitsandbytes' rounding of the original f32 row."""
    orig = load_folder(original)
    codes_off = scb_off = 0
    for name in sorted(weights):
        module = name[: -len(".weight")]
        w = orig[name].astype(np.float32)
        absmax = np.max(np.abs(w), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(absmax > 0, np.float32(127) / absmax, np.float32(0)).astype(np.float32)
        expected = np.clip(np.round(w * inv[:, None]), -127, 127).astype(np.int8)
        codes_off += int(np.sum(expected != t[f"{module}.weight"]))
        scb = t[f"{module}.SCB"]
        scb_off += int(np.sum(np.abs(scb - absmax) > np.spacing(absmax)))
    if codes_off:
        c.fail(f"original: {codes_off} int8 values differ from bitsandbytes' rounding of the original rows")
    else:
        c.ok(f"original: every int8 value of {len(weights)} modules is bitsandbytes' rounding of the original row")
    if scb_off:
        c.fail(f"original: {scb_off} SCB values are more than one ulp from the row's max |w|")
    else:
        c.ok("original: every SCB is its row's max |w| (to one ulp)")


def main() -> int:
    args = parse_arguments(__doc__)
    c = Checker()

    config = json.loads((args.folder / "config.json").read_text())
    q = config.get("quantization_config") or {}
    if q.get("quant_method") != "bitsandbytes" or q.get("load_in_8bit") is not True or q.get("load_in_4bit"):
        c.fail(f"config.json has no bitsandbytes 8-bit quantization_config: {q}")
        return 1
    threshold = q.get("llm_int8_threshold")
    if not isinstance(threshold, (int, float)) or threshold < 0:
        c.fail(f"llm_int8_threshold {threshold!r} is not a non-negative number")
    c.ok(f"config: bitsandbytes 8-bit, llm_int8_threshold {threshold}, skip {q.get('llm_int8_skip_modules')}")

    t = load_folder(args.folder)
    weights = dequantize_all(config, t, lambda module, out_f, in_f: dequantize(t, module, out_f, in_f, c), c, marker="SCB")
    if args.reference:
        check_reference(args.reference, weights, c, rtol=2 ** -22)
    if args.original:
        check_rounding(args.original, t, weights, c)
        check_original(args.original, args.folder, t, weights, REL_ERROR_LIMIT, c)
    if args.transformers:
        check_transformers(args.folder, t, weights, c, int8_activations=True)
    print(f"{len(weights)} modules checked, {c.failures} failures")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
