"""Grounded answers: retrieval, prompt packing, streamed replies with citations, and history."""
