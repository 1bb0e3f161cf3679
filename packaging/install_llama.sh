#!/usr/bin/env bash
# Installs llama-cpp-python into the virtual environment, built for CUDA when a CUDA toolkit and an
# NVIDIA GPU are present, for the CPU otherwise. LIBRARIAN_LLAMA_BACKEND=cuda|cpu forces either.
#
# LIBRARIAN_LLAMA_BUILD=native (the default for `make install`) compiles for this machine's CPU
# (-march=native): fastest here, but a copy taken to an older CPU can die with an illegal
# instruction. LIBRARIAN_LLAMA_BUILD=portable (what `make bundle` ships) builds llama.cpp's CPU
# backend once per x86/ARM instruction-set level as loadable modules and picks the best at run
# time (GGML_BACKEND_DL, GGML_CPU_ALL_VARIANTS; packaging/llama_portable.cmake installs them),
# with CUDA as a loadable module too when built for it: one build for every machine. Measured
# within 5% of native on the development machine (bench/llama_build.py).
set -euo pipefail
python=$1
version=$2
here=$(cd "$(dirname "$0")" && pwd)
backend=${LIBRARIAN_LLAMA_BACKEND:-auto}
build=${LIBRARIAN_LLAMA_BUILD:-native}
case "$build" in
  native|portable) ;;
  *) echo "LIBRARIAN_LLAMA_BUILD must be native or portable, not '$build'" >&2; exit 2 ;;
esac
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
wanted="$backend"
[ "$build" = portable ] && wanted="$backend portable"
if [ "$installed" = "$version" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$wanted" ]; then
  echo "llama-cpp-python $version ($wanted) already installed"
  exit 0
fi
echo "Installing llama-cpp-python $version for $wanted (a source build takes ~12 minutes on 2 cores the first time; pip caches the native CPU wheel)"
args=()
if [ "$backend" = cuda ]; then
  args+=(-DGGML_CUDA=on)
fi
if [ "$build" = portable ]; then
  args+=(-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON
         "-DCMAKE_PROJECT_llama_cpp_INCLUDE=$here/llama_portable.cmake")
fi
if [ ${#args[@]} -gt 0 ]; then
  # A CUDA or portable build must neither reuse nor replace the cached native CPU wheel.
  CMAKE_ARGS="${args[*]} ${CMAKE_ARGS:-}" FORCE_CMAKE=1 \
    "$python" -m pip install --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==$version"
  "$python" -m pip install "llama-cpp-python==$version"
elif [ "$installed" = "$version" ]; then
  # Another build of the same version is installed (CUDA or portable): put the native one back.
  "$python" -m pip install --force-reinstall --no-deps "llama-cpp-python==$version"
else
  "$python" -m pip install "llama-cpp-python==$version"
fi
echo "$wanted" > "$marker"
