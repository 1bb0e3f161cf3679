"""Vector packs at scale: `librarian vectors export` and `import` of one source's vectors, side by
side with the plain library doing the bare copy (Lance read + Arrow IPC write; LanceDB `add`).

Usage:
    python bench/packs.py --library LIB [--source SOURCE] [--workdir DIR]

LIB must hold a source with vectors (e.g. bench/scale.py's `lib_search_1000000`: one source of
~1 M passages). The library is copied twice into the work folder (the original is not
touched): one copy plays the library that embedded the source, the other the library that only
read it (its vectors of that source dropped) and imports the pack. Prints the time and peak
memory of each step, the pack's bytes per vector, and ours / plain.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procmem import run_watched  # noqa: E402

# The repository first: bench/ingest.py would otherwise stand in for the `ingest` package.
sys.path[0] = str(Path(__file__).resolve().parents[1])


def _child(step: str, library: str, source: str, pack: str) -> None:
    """One measured step, in its own process (so its peak RSS is its own)."""
    import lance
    import pyarrow.ipc as ipc

    from ingest.records import quote
    from ingest.store import LibraryStore
    from ingest.vector_packs import export_pack, import_pack

    t0 = time.perf_counter()
    count = 0
    if step == "export":
        for ev in export_pack(library, source, pack):
            count = getattr(ev, "vectors", count)
    elif step == "import":
        store = LibraryStore(library)
        rec = store.recorded_embedder()
        for ev in import_pack(library, pack, rec):
            count = getattr(ev, "vectors", count)
    elif step == "plain-export":
        store = LibraryStore(library)
        record = store.find_source(source)
        assert record is not None
        ds = lance.dataset(str(Path(library) / "vectors.lance"))
        scanner = ds.scanner(
            filter=f"source_id = {quote(record.source_id)}",
            columns=["chunk_id", "ordinal", "vector"],
            batch_size=16_384,
        )
        reader = scanner.to_reader()
        with ipc.new_file(pack, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                count += batch.num_rows
    elif step == "plain-import":
        import pyarrow as pa

        store = LibraryStore(library)
        with store.writing():
            table = store.vector_table_for(384)
        record = store.find_source(source)
        assert record is not None
        with pa.memory_map(pack) as f:
            r = ipc.open_file(f)

            def batches():  # type: ignore[no-untyped-def]
                for i in range(r.num_record_batches):
                    b = r.get_batch(i)
                    yield pa.RecordBatch.from_arrays(
                        [
                            b.column(0),
                            pa.array([record.source_id] * b.num_rows, pa.string()),
                            b.column(1),
                            b.column(2).cast(table.schema.field("vector").type),
                        ],
                        schema=table.schema,
                    )
                    nonlocal_count.append(b.num_rows)

            nonlocal_count: list[int] = []
            with store.writing():
                table.add(pa.RecordBatchReader.from_batches(table.schema, batches()))
            count = sum(nonlocal_count)
    print(json.dumps({"seconds": time.perf_counter() - t0, "vectors": count}), flush=True)


def _measure(step: str, library: Path, source: str, pack: Path) -> dict[str, float]:
    out, peak, wall = run_watched(
        [sys.executable, __file__, "_child", step, str(library), source, str(pack)]
    )
    result = json.loads(out.strip().splitlines()[-1])
    result["rss"] = peak.max_rss
    return result


def _forget_vectors(library: Path, source: str) -> None:
    """Make `library` one that only read `source`: its vectors dropped, its checkpoint at 0."""
    from ingest.store import LibraryStore

    store = LibraryStore(library)
    record = store.find_source(source)
    assert record is not None
    with store.writing():
        store.delete_vectors(record.source_id)
        store.update_source(record.source_id, stage="keyword", embedded=0, embed_ordinal=0)
        store.maintain()


def _mark_embedded(library: Path, source: str) -> None:
    """bench/scale.py writes its vectors straight into the store: record them as stage 2 would."""
    from ingest.store import LibraryStore

    store = LibraryStore(library)
    record = store.find_source(source)
    assert record is not None
    if record.embed_ordinal < record.read_ordinal:
        with store.writing():
            store.update_source(
                record.source_id,
                stage="ready",
                embedded=store.vector_count(record.source_id),
                embed_ordinal=record.read_ordinal,
            )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        _child(*sys.argv[2:6])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--source", default=None, help="id, file name or title (default: the first)")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="packs-"))
    work.mkdir(parents=True, exist_ok=True)
    first, second = work / "embedded", work / "reader"
    for copy in (first, second):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(args.library, copy)
    from ingest.store import LibraryStore

    source = args.source or LibraryStore(first).sources()[0].source_id
    _mark_embedded(first, source)
    _forget_vectors(second, source)
    plain_second = work / "reader-plain"
    shutil.rmtree(plain_second, ignore_errors=True)
    shutil.copytree(second, plain_second)
    subprocess.run(["sync"], check=False)

    pack, plain_pack = work / "source.vectors", work / "plain.arrow"
    rows = []
    for name, ours, plain in (
        ("export", ("export", first, pack), ("plain-export", first, plain_pack)),
        ("import", ("import", second, pack), ("plain-import", plain_second, plain_pack)),
    ):
        a = _measure(ours[0], ours[1], source, ours[2])
        b = _measure(plain[0], plain[1], source, plain[2])
        rows.append((name, a, b))
    vectors = int(rows[0][1]["vectors"])
    print(f"\n== vector packs: {vectors:,} vectors of one source ==")
    print("| step   | ours (s) | plain (s) | plain / ours | vectors/s (ours) | peak RSS (ours) |")
    print("|--------|----------|-----------|--------------|------------------|-----------------|")
    for name, a, b in rows:
        print(
            f"| {name:<6} | {a['seconds']:8.1f} | {b['seconds']:9.1f} | "
            f"{b['seconds'] / a['seconds']:12.2f} | {a['vectors'] / a['seconds']:16,.0f} | "
            f"{a['rss'] / (1 << 30):12.2f} GiB |"
        )
    size = pack.stat().st_size
    print(
        f"pack: {size / (1 << 20):,.0f} MB, {size / max(1, vectors):,.0f} bytes per vector "
        f"(float16); ours adds the passages' digest on both sides and, on import, the index "
        f"upkeep; plain is the bare copy"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
