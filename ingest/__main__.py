"""`python -m ingest`: the library half of the `librarian` CLI (ingest, sources, remove, search)."""

import sys

from ingest.cli import main

sys.exit(main())
