"""Write the character vocabulary that the built-in `mini` tokenizer is made from.

One token per character (printable ASCII, the word-boundary mark and the few accented letters of
the French answers), no merges, byte fallback for everything else: numbers tokenize digit by
digit, as in Gemma's own tokenizer, and a word is as many tokens as it has letters, so `mini` can
learn arithmetic, comparison and letter counting that carry over to unseen items. The result is
committed as g3n_core/builtin/assets/mini_chars.json (same format as tiny_bpe.json):

    python scripts/make_mini_vocab.py
"""

from __future__ import annotations

import json
import string
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "g3n_core" / "builtin" / "assets" / "mini_chars.json"
ACCENTED = "àâçéèêëîïôùûü"


def main() -> None:
    """Write the pieces (characters) and the empty merge list."""
    printable = [c for c in string.printable if c not in " \t\r\x0b\x0c"]  # keeps "\n"; " " is "▁"
    pieces = ["▁", *printable, *ACCENTED]
    OUT.write_text(json.dumps({"source": "characters listed by scripts/make_mini_vocab.py", "pieces": pieces, "merges": []},
                              ensure_ascii=False) + "\n")
    print(f"wrote {OUT} ({len(pieces)} pieces)")


if __name__ == "__main__":
    main()
