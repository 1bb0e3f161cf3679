#!/usr/bin/env bash
# Installs llama-cpp-python into the virtual environment, built for CUDA when a CUDA toolkit and an
# NVIDIA GPU are present, for the CPU otherwise. LIBRARIAN_LLAMA_BACKEND=cuda|cpu forces either.
set -euo pipefail
python=$1
version=$2
backend=${LIBRARIAN_LLAMA_BACKEND:-auto}
if [ "$backend" = auto ]; then
  # nvcc alone is not enough: a CUDA build on a machine without a GPU cannot load its library.
  if command -v nvcc >/dev/null 2>&1 && command -v nvidia-smi >/dev/null 2>&1 \
      && nvidia-smi -L >/dev/null 2>&1; then
    backend=cuda
  else
    backend=cpu
  fi
fi
installed=$("$python" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null || true)
marker="$(dirname "$python")/../.llama-backend"
if [ "$installed" = "$version" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$backend" ]; then
  echo "llama-cpp-python $version ($backend) already installed"
  exit 0
fi
echo "Installing llama-cpp-python $version for $backend (a source build takes ~12 minutes on 2 cores the first time; pip caches the wheel)"
if [ "$backend" = cuda ]; then
  # A CUDA build must not reuse the cached CPU wheel.
  CMAKE_ARGS="-DGGML_CUDA=on ${CMAKE_ARGS:-}" FORCE_CMAKE=1 \
    "$python" -m pip install --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==$version"
  "$python" -m pip install "llama-cpp-python==$version"
else
  "$python" -m pip install "llama-cpp-python==$version"
fi
echo "$backend" > "$marker"
