"""Test set-up: repo root on sys.path, torch pinned to 1 thread (2-core machines), offline hubs.

Server fixtures live in tests/comfy_fixtures.py. tests/ is not a package (the repo root is a ComfyUI pack
with its own __init__.py): test module names must be unique."""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, "scripts"), os.path.dirname(os.path.abspath(__file__)),
          os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")):
    if p not in sys.path:
        sys.path.insert(0, p)

import torch  # noqa: E402

torch.set_num_threads(1)

from comfy_fixtures import *  # noqa: E402,F401,F403  (server fixtures)
