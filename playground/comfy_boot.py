"""Import ComfyUI's FLUX class outside a ComfyUI server (training, benches): on a CPU, ComfyUI must be told so
before `comfy.model_management` is imported. Inside ComfyUI this module is never used."""
import os
import sys


def boot(device="cpu", comfy_dir=None):
    """Make `comfy` importable (COMFYUI_DIR or the dev host's .build/comfyui) and configure it for `device`."""
    comfy_dir = comfy_dir or os.environ.get("COMFYUI_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build", "comfyui")
    if "comfy" not in sys.modules:
        if not os.path.isdir(os.path.join(comfy_dir, "comfy")):
            raise RuntimeError(f"ComfyUI not found at {comfy_dir}: set COMFYUI_DIR to a ComfyUI checkout "
                               "(or run `make setup`)")
        sys.path.insert(0, comfy_dir)
        import comfy.cli_args
        comfy.cli_args.args.cpu = device == "cpu"
        comfy.cli_args.args.use_pytorch_cross_attention = True
    import comfy.ldm.flux.model  # noqa: F401  (imports model_management with the flags above)
