"""What the second keyword index (ingest.store_terms) costs on a big library in another script:
bytes per passage of the passages (text and columns), their full-text index, the terms rows and
the terms index, for English (no terms), Russian, Arabic and Japanese, side by side in one run.

The text is made, not real: the Wikipedia-like generator's Zipfian vocabulary (bench/wikigen.py)
written in each script — Russian words with case endings under Russian function words, Arabic
words with their article and endings under Arabic function words, Japanese as runs of kanji and
kana between particles with no spaces — so every word the terms index sees has the frequencies of
a real archive's. Passages are ~75 words (the size the chunker makes for English).

Run as `python bench/terms_size.py [--passages 200000]`; it writes nothing outside a temporary
folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after ROOT: bench/ingest.py is not the package

WORDS_PER_PASSAGE = 75
LATIN = "abcdefghijklmnopqrstuvwxyz"
CYRILLIC = "абцдефгхийклмнопкрстуввкызж"
ARABIC = "ابتدفغهيجكلمنوبقرستوووكسيز"
RU_ENDINGS = ["", "", "а", "ы", "ов", "ами", "ой", "ого", "ему", "ая", "ые", "е", "и", "ом"]
AR_SUFFIXES = ["", "", "", "ات", "ون", "ين", "ة", "ها", "ي"]
JA_PARTICLES = ["の", "に", "は", "を", "が", "と", "で", "た", "も", "から", "して", "された"]


def _content(word: str, table: str) -> str:
    return word.translate(str.maketrans(LATIN, table[:26]))


def passages(lang: str, count: int, seed: int = 7) -> list[str]:
    """`count` passages of made-up text in `lang`'s script with Wikipedia's word frequencies."""
    from wikigen import _FUNCTION_WORDS, WikiGenerator

    from ingest.terms import OTHER_STOPWORDS

    gen = WikiGenerator(1, seed=1)
    rng = np.random.default_rng(seed)
    nfunc = len(_FUNCTION_WORDS)
    picks = np.searchsorted(gen.cdf, rng.random(count * WORDS_PER_PASSAGE))
    ends = rng.random(len(picks))
    out: list[str] = []
    if lang != "en":
        stop = sorted(OTHER_STOPWORDS.get(lang, frozenset()) or JA_PARTICLES)
    for p in range(count):
        words = []
        for i in range(p * WORDS_PER_PASSAGE, (p + 1) * WORDS_PER_PASSAGE):
            w, r = str(gen.words[picks[i]]), ends[i]
            if lang == "en":
                words.append(w)
            elif picks[i] < nfunc:
                words.append(stop[picks[i] % len(stop)])
            elif lang == "ru":
                words.append(_content(w, CYRILLIC) + RU_ENDINGS[int(r * len(RU_ENDINGS))])
            elif lang == "ar":
                word = _content(w, ARABIC) + AR_SUFFIXES[int(r * len(AR_SUFFIXES))]
                words.append(("ال" if r < 0.4 else "") + word)
            else:  # ja: two or three kanji a word, kana after some
                h = hash(w) & 0xFFFFFF
                kanji = "".join(chr(0x4E00 + (h >> s) % 3000) for s in (0, 8, 16)[: 2 + h % 2])
                words.append(kanji + ("する" if r < 0.1 else ""))
        if lang == "ja":
            text = "".join(
                w + (JA_PARTICLES[i % len(JA_PARTICLES)] if i % 2 else "")
                for i, w in enumerate(words)
            )
            out.append(text.replace("のの", "の") + "。")
        else:
            out.append(" ".join(words) + ".")
    return out


def _bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.exists() else 0


def measure(lang: str, count: int, root: Path) -> dict[str, float]:
    import pyarrow as pa

    from ingest.pipeline import WRITE_BATCH_ROWS
    from ingest.records import CHUNK_COLUMNS, SourceRecord, chunks_schema, source_id_for
    from ingest.store import LibraryStore
    from ingest.terms import index_terms

    texts = passages(lang, count)
    lib = root / f"lib-{lang}"
    store = LibraryStore(lib)
    sid = source_id_for(f"terms-size-{lang}")
    per_doc = 8
    t0 = time.perf_counter()
    terms_seconds = 0.0
    with store.writing():
        store.add_source(
            SourceRecord(
                source_id=sid, path=f"/bench/{lang}.zim", kind="zim", title=lang,
                identity=f"terms-size-{lang}", documents=count // per_doc + 1, stage="reading",
                language=lang,
            )
        )  # fmt: skip
        for start in range(0, count, WRITE_BATCH_ROWS):
            block = texts[start : start + WRITE_BATCH_ROWS]
            index = np.arange(start, start + len(block))
            ordinal, chunk = index // per_doc, index % per_doc
            t1 = time.perf_counter()
            terms = [index_terms(t, (lang,)) for t in block]
            terms_seconds += time.perf_counter() - t1
            table = pa.table(
                {
                    "chunk_id": [f"{sid}:{o}:{c}" for o, c in zip(ordinal, chunk, strict=True)],
                    "source_id": [sid] * len(block),
                    "doc_id": [f"A/Article_{o}" for o in ordinal],
                    "title": [f"Article {o}" for o in ordinal],
                    "section": [""] * len(block),
                    "ordinal": ordinal,
                    "chunk_index": chunk.astype(np.int32),
                    "start": np.zeros(len(block), np.int32),
                    "end": np.array([len(t) for t in block], np.int32),
                    "text": block,
                },
                schema=chunks_schema(),
            ).select(CHUNK_COLUMNS)
            store.add_chunks(table.append_column("terms", pa.array(terms, pa.string())))
        store.update_source(sid, stage="keyword", chunks=count, read_ordinal=count // per_doc + 1)
        store.mark_terms_current(sid)
        written = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.maintain(cleanup_after=__import__("datetime").timedelta(0))
        indexed = time.perf_counter() - t0

    def split(table: str) -> tuple[int, int]:
        folder = lib / f"{table}.lance"
        indexes = sum(
            _bytes(d)
            for d in (folder / "_indices").glob("*")
            if any("invert" in f.name or "tokens" in f.name for f in d.iterdir())
        )
        return _bytes(folder / "data"), indexes

    text, fts = split("chunks")
    terms, terms_fts = split("terms")
    raw = sum(len(t.encode()) for t in texts) / count
    return {
        "raw text": raw,
        "passages": text / count,
        "keyword index": fts / count,
        "terms rows": terms / count,
        "terms index": terms_fts / count,
        "terms µs/passage": 1e6 * terms_seconds / count,
        "write s": written,
        "index s": indexed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=200_000)
    parser.add_argument("--languages", default="en,ru,ar,ja")
    args = parser.parse_args()
    langs = args.languages.split(",")
    results = {}
    with tempfile.TemporaryDirectory(prefix="librarian-terms-size-") as tmp:
        for lang in langs:
            print(f"{lang}: {args.passages:,} passages…", file=sys.stderr, flush=True)
            results[lang] = measure(lang, args.passages, Path(tmp))
    print(f"\nbytes per passage, {args.passages:,} passages per language")
    print("| | " + " | ".join(langs) + " |")
    print("|---|" + "---|" * len(langs))
    for key in next(iter(results.values())):
        cells = [f"{results[lang][key]:,.1f}" for lang in langs]
        print(f"| {key} | " + " | ".join(cells) + " |")
    for lang in langs:
        r = results[lang]
        extra = (r["terms rows"] + r["terms index"]) / (r["passages"] + r["keyword index"])
        print(f"{lang}: terms rows + index = {extra:.2f}x the passages + their keyword index")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
