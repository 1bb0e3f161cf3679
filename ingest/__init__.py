"""Librarian's library core: read ZIM and EPUB sources into a LanceDB store and search it."""
