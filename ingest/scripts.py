"""Writing systems, said once: the character ranges that chunking, the token estimate and the
content words treat apart from alphabets written with spaces between words."""

from __future__ import annotations

import re

# Han, kana and the half-width katakana: the tokenizer reads them a character at a time, and
# a word is any run of them (no spaces between words).
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
HIRAGANA = "\u3040-\u309f"
HANGUL = "\uac00-\ud7a3"  # syllables; Korean puts spaces between phrases, particles attached
# Thai, Lao, Myanmar and Khmer: alphabets written without spaces between words.
UNSPACED = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
ARABIC = "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff"
CYRILLIC = "\u0400-\u04ff"
DEVANAGARI = "\u0900-\u097f"

# Combining marks that belong inside a word: vowel signs of the Indic scripts and of Thai, Lao,
# Myanmar and Khmer, Arabic and Hebrew points, Latin accents. Python's \w leaves them out, which
# would cut महाभारत (or กรุงเทพ) into pieces.
MARKS = (
    "\u0300-\u036f\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
    f"\u0900-\u0963\u0966-\u0dff{UNSPACED}"
)
WORD = re.compile(rf"(?:\w|[{MARKS}])+")  # a word of any script, its marks included

SEGMENTED = re.compile(f"[{CJK}{HANGUL}{UNSPACED}]")  # text whose words need cutting apart
