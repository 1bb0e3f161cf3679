"""packaging/install_llama.sh: which llama-cpp-python build it asks pip for (native, portable,
CUDA) and when it leaves an installed one alone. pip is a stand-in that records its calls."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "packaging" / "install_llama.sh"


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    """A `python` that answers the installed version from a file and logs pip's arguments and
    CMAKE_ARGS; it lives in venv/bin so the marker lands in venv/.llama-backend."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text(
        "#!/usr/bin/env bash\n"
        'here=$(dirname "$0")\n'
        'if [ "$1" = -c ]; then cat "$here/version" 2>/dev/null || exit 1; exit 0; fi\n'
        'echo "CMAKE_ARGS=${CMAKE_ARGS:-} ARGS=$*" >> "$here/pip.log"\n'
        'echo 0.3.36 > "$here/version"\n'
    )
    python.chmod(0o755)
    return python


def install(python: Path, **env: str) -> list[str]:
    log = python.parent / "pip.log"
    log.unlink(missing_ok=True)
    environment = {**os.environ, "LIBRARIAN_LLAMA_BACKEND": "cpu", **env}
    environment.pop("LIBRARIAN_LLAMA_BUILD", None)
    environment.update(env)
    subprocess.run(
        ["bash", str(SCRIPT), str(python), "0.3.36"],
        env=environment,
        check=True,
        text=True,
        capture_output=True,
    )
    return log.read_text().splitlines() if log.exists() else []


def marker(python: Path) -> str:
    return (python.parent.parent / ".llama-backend").read_text().strip()


def test_native_then_portable_then_native_again(fake_python: Path) -> None:
    calls = install(fake_python)
    assert len(calls) == 1 and "CMAKE_ARGS= " in calls[0] and "--no-cache-dir" not in calls[0]
    assert marker(fake_python) == "cpu"
    assert install(fake_python) == []  # already there: nothing to do

    calls = install(fake_python, LIBRARIAN_LLAMA_BUILD="portable")
    flags = calls[0]
    for flag in ("-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON"):
        assert flag in flags
    assert "llama_portable.cmake" in flags and "--no-cache-dir --force-reinstall" in flags
    assert marker(fake_python) == "cpu portable"
    assert install(fake_python, LIBRARIAN_LLAMA_BUILD="portable") == []

    calls = install(fake_python)  # back to native: the portable build must be replaced
    assert len(calls) == 1 and "--force-reinstall" in calls[0] and "-DGGML" not in calls[0]
    assert marker(fake_python) == "cpu"


def test_a_portable_cuda_build_keeps_cuda_as_a_module(fake_python: Path) -> None:
    calls = install(fake_python, LIBRARIAN_LLAMA_BACKEND="cuda", LIBRARIAN_LLAMA_BUILD="portable")
    assert "-DGGML_CUDA=on" in calls[0] and "-DGGML_BACKEND_DL=ON" in calls[0]
    assert marker(fake_python) == "cuda portable"


def test_an_unknown_build_is_refused(fake_python: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        install(fake_python, LIBRARIAN_LLAMA_BUILD="fast")
    assert "must be native or portable" in failed.value.stderr
