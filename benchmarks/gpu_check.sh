#!/usr/bin/env bash
# GPU check, one command on a CUDA machine (< 10 minutes): bf16 training throughput and MFU of the I-JEPA ViT-S
# (configs/ijepa_vit_gpu.yaml) and ViT-B/16 (configs/ijepa_vitb_gpu.yaml) presets with the real training loop on
# synthetic images (nothing downloaded): eager (OUT.json) then with train.compile=true (OUT_compile.json), and a
# before/after table of the two.
#   benchmarks/gpu_check.sh [OUT.json]        default: $OUT/throughput_gpu.json if $OUT is set, else
#                                             benchmarks/results/throughput_gpu.json
# Uses the python on PATH (or $PYTHON) when it already has a CUDA build of torch; otherwise installs the
# package's pure-Python dependencies and torch from PyPI into .venv-gpu (needs PyPI access).
set -euo pipefail
cd "$(dirname "$0")/.."
RESULT=${1:-${OUT:+$OUT/throughput_gpu.json}}
RESULT=${RESULT:-benchmarks/results/throughput_gpu.json}
PY=${PYTHON:-python3}

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "no CUDA-enabled torch on $PY: installing one into .venv-gpu" >&2
  "$PY" -m venv .venv-gpu && PY=.venv-gpu/bin/python
  "$PY" -m pip install -q torch
fi
for mod in yaml tqdm safetensors matplotlib PIL numpy; do
  "$PY" -c "import $mod" 2>/dev/null || "$PY" -m pip install -q pyyaml tqdm safetensors matplotlib pillow numpy
done
"$PY" -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>/dev/null || true

mkdir -p "$(dirname "$RESULT")"
COMPILED="${RESULT%.json}_compile.json"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
# eager first (the committed baseline's setting), then the compiled blocks; each gets half of the 10 minutes
timeout 270 "$PY" -m openjepa bench throughput --only ijepa_vits_gpu,ijepa_vitb_gpu \
  --workdir "${TMPDIR:-/tmp}/openjepa_gpu_check" --out "$RESULT"
timeout 270 "$PY" -m openjepa bench throughput --only ijepa_vits_gpu,ijepa_vitb_gpu \
  --workdir "${TMPDIR:-/tmp}/openjepa_gpu_check_compile" --out "$COMPILED" --train.compile=true || \
  echo "the compiled run failed or ran out of time: $COMPILED may be missing" >&2
"$PY" - "$RESULT" "$COMPILED" <<'PY'
import json, os, sys
runs = [json.load(open(p)) if os.path.exists(p) else {"rows": []} for p in sys.argv[1:]]
print(f"{'config':16} {'eager samples/s':>16} {'MFU':>6} {'compiled samples/s':>19} {'MFU':>6} {'speed-up':>8}")
for row in runs[0]["rows"]:
    if "samples_per_s" not in row:
        continue
    c = next((r for r in runs[1]["rows"] if r["config"] == row["config"] and "samples_per_s" in r), None)
    after = f"{c['samples_per_s']:19.1f} {c['mfu']:6.1%} {c['samples_per_s'] / row['samples_per_s']:7.2f}x" if c else "-"
    print(f"{row['config']:16} {row['samples_per_s']:16.1f} {row['mfu']:6.1%} {after}")
PY
echo "results: $RESULT $COMPILED"
