"""ComfyUI imported into this process (CPU) with this pack and the test nodes loaded as packages.

Quicker than a server for unit tests and benchmarks; same ComfyUI code."""
import importlib.util
import os
import sys

import host


def _load_package(name, path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(path, "__init__.py"),
                                                  submodule_search_locations=[path])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


class InProcess:
    def __init__(self):
        if not os.path.isdir(host.COMFY_DIR):
            raise RuntimeError("ComfyUI is not set up: run `bash scripts/setup.sh` first")
        if host.COMFY_DIR not in sys.path:
            sys.path.insert(0, host.COMFY_DIR)
        import comfy.cli_args
        comfy.cli_args.args.cpu = True
        comfy.cli_args.args.use_pytorch_cross_attention = True
        import comfy.model_management  # noqa: F401  (after --cpu)
        self.pack = _load_package("comfyui_flowsearch", host.ROOT)
        self.test_nodes = _load_package("flowsearch_test_nodes", os.path.join(host.ROOT, "tests", "comfy_test_nodes"))

    def node_module(self, name):
        return importlib.import_module(f"comfyui_flowsearch.nodes.{name}")

    def tiny_flux(self, name="flux_tiny_h64.safetensors"):
        return self.test_nodes.load_tiny_flux(os.path.join(host.BASE_DIR, "models", "diffusion_models", name))

    def tiny_cond(self, seed=0):
        """FLUX-shaped conditioning for the tiny FLUX (16 × 4096 T5 tokens and a 768-d pooled vector, scaled 0.1)."""
        import torch
        g = torch.Generator().manual_seed(seed)
        return [[torch.randn(1, 16, 4096, generator=g) * 0.1,
                 {"pooled_output": torch.randn(1, 768, generator=g) * 0.1}]]

    def vae(self, name="taef1_random.safetensors"):
        import comfy.sd
        import comfy.utils
        return comfy.sd.VAE(sd=comfy.utils.load_torch_file(os.path.join(host.BASE_DIR, "models", "vae", name)))
