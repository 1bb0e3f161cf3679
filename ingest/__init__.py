"""Librarian's library core: read ZIM and EPUB sources into a LanceDB store and search it."""

from ingest.indexes import tune_process

tune_process()  # before LanceDB starts its threads: every core, bounded allocator arenas
