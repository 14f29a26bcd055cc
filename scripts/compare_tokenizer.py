#!/usr/bin/env python3
"""Show where SwiftQuant's token ids part from Hugging Face `tokenizers`.

  python3 scripts/compare_tokenizer.py OURS.ids [REFERENCE.ids]
      compare two little-endian int32 id files (default reference: the wikitext-2 test ids
      written by scripts/fixtures/tokenizer.py); prints the first difference with the
      tokens and text around it
  python3 scripts/compare_tokenizer.py --text "some text"
      print the reference ids, tokens and pre-tokens of a string

Both use the fixture tokenizer .cache/fixtures/tokenizer/smollm2-tokenizer.json unless
--tokenizer names another tokenizer.json.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / ".cache" / "fixtures" / "tokenizer"


def show(tok: Tokenizer, ids) -> str:
    return " ".join(f"{i}:{tok.id_to_token(int(i))!r}" for i in ids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ours", nargs="?", help="int32 little-endian ids produced by the Swift tokenizer")
    parser.add_argument("reference", nargs="?", default=str(FIXTURES / "wikitext2-test.ids"))
    parser.add_argument("--tokenizer", default=str(FIXTURES / "smollm2-tokenizer.json"))
    parser.add_argument("--text", help="tokenize this string with the reference and print the result")
    parser.add_argument("--context", type=int, default=8, help="tokens shown on each side")
    args = parser.parse_args()
    if not Path(args.tokenizer).is_file():
        print(f"error: {args.tokenizer} is missing: run python3 scripts/fixtures/tokenizer.py", file=sys.stderr)
        return 2
    tok = Tokenizer.from_file(args.tokenizer)

    if args.text is not None:
        enc = tok.encode(args.text, add_special_tokens=False)
        print("ids:       ", enc.ids)
        print("tokens:    ", enc.tokens)
        if tok.pre_tokenizer is not None:
            print("pre-tokens:", [p for p, _ in tok.pre_tokenizer.pre_tokenize_str(args.text)])
        return 0
    if args.ours is None:
        parser.error("give an ids file or --text")

    ours = np.fromfile(args.ours, dtype="<i4")
    ref = np.fromfile(args.reference, dtype="<i4")
    n = min(len(ours), len(ref))
    diff = np.nonzero(ours[:n] != ref[:n])[0]
    if len(diff) == 0 and len(ours) == len(ref):
        print(f"identical: {len(ours)} ids")
        return 0
    i = int(diff[0]) if len(diff) else n
    lo, hi = max(0, i - args.context), i + args.context
    print(f"{len(ours)} ids vs {len(ref)} reference ids; first difference at index {i}"
          f" ({len(diff)} differing positions in the common prefix)")
    print("ours:     ", show(tok, ours[lo:hi]))
    print("reference:", show(tok, ref[lo:hi]))
    print("text:     ", repr(tok.decode([int(x) for x in ref[lo:hi]], skip_special_tokens=False)))
    return 1


if __name__ == "__main__":
    sys.exit(main())
