#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtual env in .venv with the CPU build of PyTorch, OpenJEPA in
# editable mode, the test tools, and the Fashion-MNIST data (Debian package) where apt is available.
# Safe to re-run: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # torch 2.13.0 on this kind of machine is a local CPU wheel; elsewhere ask for the CPU build explicitly
  .venv/bin/pip install -q torch==2.13.0 \
    || .venv/bin/pip install -q torch --index-url https://download.pytorch.org/whl/cpu
fi
.venv/bin/pip install -q -e ".[dev]"

FMNIST_DEBIAN=/usr/share/datasets/fashion-mnist
FMNIST_CACHE="$HOME/.cache/openjepa/fashion-mnist"
if [ ! -f "$FMNIST_DEBIAN/t10k-labels-idx1-ubyte.gz" ] && [ ! -f "$FMNIST_CACHE/t10k-labels-idx1-ubyte.gz" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "Fashion-MNIST not found. Put the four *-ubyte.gz files from github.com/zalandoresearch/fashion-mnist" >&2
    echo "(data/fashion) into $FMNIST_CACHE" >&2
  fi
fi
echo "set-up done: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
