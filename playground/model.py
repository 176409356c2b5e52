"""The playground FLUX: ComfyUI's own `comfy.ldm.flux.model.Flux` at tiny width (config below)."""
import json

from . import codec

CONFIG = dict(in_channels=codec.LATENT_CHANNELS, out_channels=codec.LATENT_CHANNELS, vec_in_dim=codec.POOLED_DIM,
              context_in_dim=codec.TOKEN_DIM, hidden_size=128, mlp_ratio=4.0, num_heads=4, depth=2,
              depth_single_blocks=4, axes_dim=[4, 14, 14], theta=10000, patch_size=2, qkv_bias=True,
              guidance_embed=False)
# what ComfyUI's model detection cannot read from the weights (it assumes FLUX.1's 24 heads, axes 16/56/56)
DETECTION_OVERRIDES = {k: CONFIG[k] for k in ("num_heads", "axes_dim", "mlp_ratio", "theta")}


def build(config=None, operations=None):
    """A stock Flux module with the playground config (float32, on the CPU)."""
    import torch
    from comfy.ldm.flux.model import Flux
    return Flux(**(config or CONFIG), dtype=torch.float32, device="cpu", operations=operations or torch.nn)


def metadata(config=None):
    """safetensors metadata written with the weights (read back by the playground loader)."""
    return {"flowsearch_playground_config": json.dumps(config or CONFIG)}
