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
from safetensors.numpy import load_file

PROJECTIONS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
# Largest relative RMS error of a dequantized weight against the original, by bits: a
# generous bound for round-to-nearest; a misordered weight is far above it (about 1.4).
REL_ERROR_LIMIT = {2: 0.9, 3: 0.5, 4: 0.3, 8: 0.05}


class Checker:
    def __init__(self):
        self.failures = 0

    def fail(self, message):
        print(f"FAIL {message}")
        self.failures += 1

    def ok(self, message):
        print(f"ok   {message}")


def load_folder(folder: Path) -> dict:
    """Every tensor of a folder (one file or shards)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        tensors = {}
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            tensors.update(load_file(folder / shard))
        return tensors
    return load_file(folder / "model.safetensors")


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
    for suffix, (shape, dtype) in expect.items():
        a = t.get(f"{module}.{suffix}")
        if a is None:
            c.fail(f"{module}.{suffix} missing")
            return None
        if a.shape != shape or a.dtype != dtype:
            c.fail(f"{module}.{suffix} is {a.dtype}{list(a.shape)}, expected {np.dtype(dtype)}{list(shape)}")
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
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    heads, kv = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    head_dim = config.get("head_dim") or hidden // heads
    shapes = {"self_attn.q_proj": (heads * head_dim, hidden), "self_attn.k_proj": (kv * head_dim, hidden),
              "self_attn.v_proj": (kv * head_dim, hidden), "self_attn.o_proj": (hidden, heads * head_dim),
              "mlp.gate_proj": (inter, hidden), "mlp.up_proj": (inter, hidden), "mlp.down_proj": (hidden, inter)}
    weights = {}
    for layer in range(config["num_hidden_layers"]):
        for p in PROJECTIONS:
            module = f"model.layers.{layer}.{p}"
            out_f, in_f = shapes[p]
            if f"{module}.qweight" in t:
                w = dequantize(t, module, q, out_f, in_f, c)
                if w is not None:
                    weights[module + ".weight"] = w
            elif f"{module}.weight" not in t:
                c.fail(f"{module}: neither qweight nor weight")
    c.ok(f"unpacked {len(weights)} quantized modules")

    if args.reference:
        ref = load_file(args.reference)
        if set(ref) != set(weights):
            c.fail(f"reference has {len(ref)} weights, the folder {len(weights)} quantized modules")
        worst = 0.0
        for name in sorted(set(ref) & set(weights)):
            if ref[name].shape != weights[name].shape:
                c.fail(f"{name}: reference shape {ref[name].shape}, unpacked {weights[name].shape}")
                continue
            diff = float(np.max(np.abs(ref[name] - weights[name])))
            worst = max(worst, diff)
            if diff != 0:
                c.fail(f"{name}: unpacked weight differs from the reference by up to {diff}")
        c.ok(f"reference: max |difference| {worst} over {len(ref)} weights")

    if args.original:
        check_original(args.original, args.folder, t, weights, q["bits"], c)
    if args.transformers:
        check_transformers(args.folder, t, weights, c)
    print(f"{len(weights)} modules checked, {c.failures} failures")
    return 1 if c.failures else 0


def check_original(original: Path, folder: Path, t: dict, weights: dict, bits: int, c: Checker) -> None:
    orig = load_folder(original)
    worst = 0.0
    for name, w in sorted(weights.items()):
        o = orig[name].astype(np.float32)
        rel = float(np.sqrt(np.mean((w - o) ** 2) / max(np.mean(o ** 2), 1e-30)))
        worst = max(worst, rel)
        if rel > REL_ERROR_LIMIT[bits]:
            c.fail(f"{name}: relative RMS error {rel:.3f} against the original (limit {REL_ERROR_LIMIT[bits]})")
    c.ok(f"original: worst relative RMS error of a quantized weight {worst:.4f}")
    plain = [n for n in t if not n.rsplit(".", 1)[-1] in ("qweight", "qzeros", "scales", "g_idx")]
    for name in plain:
        if name not in orig:
            c.fail(f"{name} is not in the original")
            continue
        a, b = t[name].astype(np.float32), orig[name].astype(np.float32)
        if a.shape != b.shape or not np.allclose(a, b, rtol=2 ** -10, atol=2 ** -24):
            c.fail(f"{name} differs from the original beyond f16 rounding")
    c.ok(f"original: {len(plain)} non-quantized tensors match to f16 precision")
    try:
        import tokenizers
    except ImportError:
        return
    mine, theirs = folder / "tokenizer.json", original / "tokenizer.json"
    if mine.is_file() and theirs.is_file():
        text = "The quick brown fox, 12345 times: <|im_start|>user\nCafé naïve 😀<|im_end|>\n  spaced\ttabs"
        a = tokenizers.Tokenizer.from_file(str(mine)).encode(text).ids
        b = tokenizers.Tokenizer.from_file(str(theirs)).encode(text).ids
        if a != b:
            c.fail(f"tokenizer.json encodes the sample differently from the original's: {a[:12]} vs {b[:12]}")
        else:
            c.ok(f"tokenizer.json encodes a sample like the original ({len(a)} ids)")


def check_transformers(folder: Path, tensors: dict, weights: dict, c: Checker) -> None:
    """Loads the folder with transformers (its GPTQ/AWQ kernels) and compares its logits
    with a float model holding the numpy-dequantized weights. Shared with check_awq_checkpoint.py."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM
    except ImportError as e:
        c.fail(f"--transformers: {e}")
        return
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), device_map="cpu", dtype=torch.float32)
    except Exception as e:  # noqa: BLE001 - any loader failure is the finding
        c.fail(f"transformers could not load the folder: {type(e).__name__}: {e}")
        return
    c.ok(f"transformers loaded {type(model).__name__}")
    config = AutoConfig.from_pretrained(str(folder))
    config.quantization_config = None
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    reference = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()
             if k.rsplit(".", 1)[-1] not in ("qweight", "qzeros", "scales", "g_idx")}
    state.update({k: torch.from_numpy(v) for k, v in weights.items()})
    missing, unexpected = reference.load_state_dict(state, strict=False)
    missing = [m for m in missing if m != "lm_head.weight"]
    if missing or unexpected:
        c.fail(f"float reference model: missing {missing[:3]}, unexpected {unexpected[:3]}")
        return
    ids = torch.tensor([[1, 504, 3458, 282, 4649, 314, 11303, 30, 378, 2365, 6354, 16438, 23875, 690, 260, 23790, 2767]])
    ids = ids.clamp(max=config.vocab_size - 1)
    with torch.no_grad():
        try:
            a = model(ids).logits.float()
        except Exception as e:  # noqa: BLE001
            c.fail(f"transformers forward with the quantized kernel failed: {type(e).__name__}: {e}")
            return
        b = reference(ids).logits.float()
    diff = float((a - b).abs().max())
    agree = int((a.argmax(-1) == b.argmax(-1)).sum())
    message = (f"transformers quantized kernel vs float model of the unpacked weights: max |Δ logit| {diff:.4g}, "
               f"top-1 agreement {agree}/{ids.shape[1]}")
    if diff > 0.05 * float(b.abs().max()) or agree < ids.shape[1] - 1:
        c.fail(message)
    else:
        c.ok(message)


if __name__ == "__main__":
    sys.exit(main())
