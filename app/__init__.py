"""Librarian: chat with an offline library of ZIM archives and EPUB books through a local GGUF
model."""

__version__ = "0.1.0"
