"""Shared parts of scripts/check_gptq_checkpoint.py and scripts/check_awq_checkpoint.py:
loading a Hugging Face folder, the Llama projection names and shapes, the loop that
dequantizes every projection, and the comparisons with a reference dump, with the original
float model and with transformers. Written from the formats' descriptions, independently of
SwiftQuant's Swift code."""
import argparse
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

PROJECTIONS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
QUANT_SUFFIXES = ("qweight", "qzeros", "scales", "g_idx")
BNB_SUFFIXES = ("SCB", "weight_format")


def parse_arguments(doc: str) -> argparse.Namespace:
    """The check scripts' shared command line: FOLDER [--reference F] [--original D] [--transformers]."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--original", type=Path)
    parser.add_argument("--transformers", action="store_true")
    return parser.parse_args()


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


def projection_shapes(config: dict) -> dict:
    """(out, in) features of each Llama projection from config.json."""
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    heads, kv = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    head_dim = config.get("head_dim") or hidden // heads
    return {"self_attn.q_proj": (heads * head_dim, hidden), "self_attn.k_proj": (kv * head_dim, hidden),
            "self_attn.v_proj": (kv * head_dim, hidden), "self_attn.o_proj": (hidden, heads * head_dim),
            "mlp.gate_proj": (inter, hidden), "mlp.up_proj": (inter, hidden), "mlp.down_proj": (hidden, inter)}


def has_tensors(t: dict, module: str, expect: dict, c: Checker) -> bool:
    """Whether every `<module>.<suffix>` of `expect` ({suffix: (shape, dtype)}) is present
    with that shape and dtype; reports the first that is not."""
    for suffix, (shape, dtype) in expect.items():
        a = t.get(f"{module}.{suffix}")
        if a is None:
            c.fail(f"{module}.{suffix} missing")
            return False
        if a.shape != shape or a.dtype != dtype:
            c.fail(f"{module}.{suffix} is {a.dtype}{list(a.shape)}, expected {np.dtype(dtype)}{list(shape)}")
            return False
    return True


def dequantize_all(config: dict, t: dict, dequantize, c: Checker, not_converted=None, marker="qweight") -> dict:
    """`dequantize(module, out_f, in_f)` for every quantized projection (one with a
    `<module>.<marker>` tensor), by HF weight name. With `not_converted` (AWQ's
    modules_to_not_convert), float projections must be listed there and quantized ones
    must not."""
    shapes = projection_shapes(config)
    weights = {}
    for layer in range(config["num_hidden_layers"]):
        for p in PROJECTIONS:
            module = f"model.layers.{layer}.{p}"
            out_f, in_f = shapes[p]
            listed = not_converted is not None and any(s in module for s in not_converted)
            if f"{module}.{marker}" in t:
                if listed:
                    c.fail(f"{module} is quantized but listed in modules_to_not_convert")
                w = dequantize(module, out_f, in_f)
                if w is not None:
                    weights[module + ".weight"] = w
            elif f"{module}.weight" in t:
                if not_converted is not None and not listed:
                    c.fail(f"{module} is in floating point but not listed in modules_to_not_convert")
            else:
                c.fail(f"{module}: neither qweight nor weight")
    c.ok(f"unpacked {len(weights)} quantized modules")
    return weights


def check_reference(reference: Path, weights: dict, c: Checker, rtol: float = 0.0) -> None:
    """The unpacked weights must equal a dump of the expected dequantized weights exactly,
    or within `rtol` of each value where the format's own dequantization rounds differently."""
    ref = load_file(reference)
    if set(ref) != set(weights):
        c.fail(f"reference has {len(ref)} weights, the folder {len(weights)} quantized modules")
    worst = 0.0
    for name in sorted(set(ref) & set(weights)):
        if ref[name].shape != weights[name].shape:
            c.fail(f"{name}: reference shape {ref[name].shape}, unpacked {weights[name].shape}")
            continue
        diff = float(np.max(np.abs(ref[name] - weights[name])))
        worst = max(worst, diff)
        if not np.all(np.abs(ref[name] - weights[name]) <= rtol * np.abs(ref[name])) and c.failures < 10:
            c.fail(f"{name}: unpacked weight differs from the reference by up to {diff}")
    c.ok(f"reference: max |difference| {worst} over {len(ref)} weights")


def check_original(original: Path, folder: Path, t: dict, weights: dict, limit: float, c: Checker) -> None:
    """Quantized weights close to the original float model's (relative RMS error ≤ `limit`),
    float tensors equal to f16 precision, and tokenizer.json encoding like the original's."""
    orig = load_folder(original)
    worst = 0.0
    for name, w in sorted(weights.items()):
        o = orig[name].astype(np.float32)
        rel = float(np.sqrt(np.mean((w - o) ** 2) / max(np.mean(o ** 2), 1e-30)))
        worst = max(worst, rel)
        if rel > limit:
            c.fail(f"{name}: relative RMS error {rel:.3f} against the original (limit {limit})")
    c.ok(f"original: worst relative RMS error of a quantized weight {worst:.4f}")
    plain = [n for n in t if n.rsplit(".", 1)[-1] not in QUANT_SUFFIXES + BNB_SUFFIXES
             and n.rsplit(".", 1)[0] + ".weight" not in weights]
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


def check_transformers(folder: Path, tensors: dict, weights: dict, c: Checker, int8_activations: bool = False) -> None:
    """Loads the folder with transformers (its GPTQ/AWQ/bitsandbytes kernels) and compares
    its logits with a float model holding the numpy-dequantized weights. With
    `int8_activations` (LLM.int8(): the kernel also rounds the activations) only the top-1
    agreement is held to a limit (all but 3 of 17 positions); the logit gap is reported."""
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
             if k.rsplit(".", 1)[-1] not in QUANT_SUFFIXES + BNB_SUFFIXES}
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
    if int8_activations:
        bad = agree < ids.shape[1] - 3
    else:
        bad = diff > 0.05 * float(b.abs().max()) or agree < ids.shape[1] - 1
    if bad:
        c.fail(message)
    else:
        c.ok(message)
