#!/usr/bin/env bash
# Download, on a machine with network, the wheels that bench/gpu.sh may need on
# a GPU machine without one, into bench/.wheels/ (git-ignored: carry that
# folder along with the tree). torch and onnxruntime are not among them: the
# GPU machine's own torch (with CUDA) is used, and the torch path needs no
# onnxruntime.
#
#   bench/gpu_wheels.sh                              # CPython 3.10-3.13, about 32 MB
#   PYVERS="3.12" WITH_NUMPY=1 bench/gpu_wheels.sh   # one Python, numpy too (+16 MB)
#
# What: grpcio and protobuf (binary, manylinux x86_64; protobuf is one abi3
# wheel), grpcio-health-checking, grpcio-reflection, prometheus-client, click
# (the server and the SDK), pytest, pytest-timeout and their dependencies (the
# gpu-marked tests), numpy only with WITH_NUMPY=1 (a machine with torch nearly
# always has it). grpcio/protobuf are pinned to what the generated gRPC code
# needs (pyproject.toml: grpcio >= 1.85.1, protobuf >= 7.35.1, < 8).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DEST=${DEST:-$HERE/.wheels}
PY=${PYTHON:-python3}
PYVERS=${PYVERS:-"3.10 3.11 3.12 3.13"}
# The versions of the development environment (constraints: pyproject.toml).
GRPC_VERSION=${GRPC_VERSION:-1.85.3}
GRPC_EXTRAS_VERSION=${GRPC_EXTRAS_VERSION:-1.85.1}  # health checking, reflection
PROTOBUF_VERSION=${PROTOBUF_VERSION:-7.36.2}
PLATFORMS=(--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64)

if ! "$PY" -m pip --version >/dev/null 2>&1; then
    echo "gpu_wheels.sh: $PY has no pip; set PYTHON=/path/to/python with pip" >&2
    exit 2
fi
mkdir -p "$DEST"
download() { "$PY" -m pip download --quiet --disable-pip-version-check --only-binary=:all: -d "$DEST" "$@"; }

lowest=$(echo "$PYVERS" | tr ' ' '\n' | sort -V | head -1)
for v in $PYVERS; do
    tag="cp${v/./}"
    echo "grpcio $GRPC_VERSION for CPython $v"
    download --no-deps --python-version "$v" --implementation cp --abi "$tag" "${PLATFORMS[@]}" "grpcio==$GRPC_VERSION"
    if [ "${WITH_NUMPY:-0}" = 1 ]; then
        echo "numpy for CPython $v"
        download --no-deps --python-version "$v" --implementation cp --abi "$tag" "${PLATFORMS[@]}" numpy
    fi
done
echo "protobuf $PROTOBUF_VERSION (abi3) and the pure-Python packages (resolved for CPython $lowest)"
download --no-deps --python-version "$lowest" --implementation cp --abi abi3 "${PLATFORMS[@]}" "protobuf==$PROTOBUF_VERSION"
# With their dependencies; grpcio/protobuf come again as dependencies and are then already here.
download --python-version "$lowest" --implementation cp "${PLATFORMS[@]}" \
    "grpcio==$GRPC_VERSION" "protobuf==$PROTOBUF_VERSION" \
    "grpcio-health-checking==$GRPC_EXTRAS_VERSION" "grpcio-reflection==$GRPC_EXTRAS_VERSION" \
    prometheus-client==0.26.0 click==8.5.1 pytest==9.2.0 pytest-timeout==2.4.0
# pip evaluates dependency markers for the Python running it: what pytest needs below 3.11
download --python-version "$lowest" --implementation cp "${PLATFORMS[@]}" exceptiongroup tomli
ls -1 "$DEST"
du -sh "$DEST"
echo "carry $DEST with the tree (it is git-ignored); bench/gpu.sh unpacks what the machine lacks"
