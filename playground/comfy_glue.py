"""The playground as ComfyUI objects: MODEL (stock Flux class), CLIP (caption encoder) and VAE (pixel codec).

Imported only inside ComfyUI (or after `comfy_boot.boot()`). Everything goes through ComfyUI's own classes and
model management, so the objects work with every stock node (CLIPTextEncode, VAEDecode, KSampler, …) on CPU or
GPU: the weights file lives in this package, not in ComfyUI's models/ folders."""
import json
import os

import torch

import comfy.latent_formats
import comfy.model_detection
import comfy.model_management as mm
import comfy.model_patcher
import comfy.sd
import comfy.utils

from . import codec, world

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
DECODER = os.path.join(WEIGHTS_DIR, "decoder", "playground_taesd_decoder.safetensors")  # playground/train_decoder.py


def weight_files():
    """The shipped playground FLUX files (names in WEIGHTS_DIR)."""
    if not os.path.isdir(WEIGHTS_DIR):
        return []
    return sorted(f for f in os.listdir(WEIGHTS_DIR) if f.endswith(".safetensors"))


def weights_path(name):
    """Resolve a name from `weight_files()`; anything else (paths, '..') is refused."""
    if name not in weight_files():
        raise ValueError(f"unknown playground weights {name!r}; the pack ships {', '.join(weight_files()) or 'none'} "
                         f"in playground/weights (reinstall the pack if the list is empty)")
    return os.path.join(WEIGHTS_DIR, name)


def load_model(path):
    """MODEL: the stock comfy Flux (FluxSchnell config, CONST flow) with the file's architecture, in float32."""
    sd, metadata = comfy.utils.load_torch_file(path, safe_load=True, return_metadata=True)
    cfg = json.loads((metadata or {}).get("flowsearch_playground_config", "{}"))
    unet_config = comfy.model_detection.detect_unet_config(sd, "")
    if not cfg or unet_config is None or unet_config.get("image_model") != "flux":
        raise ValueError(f"{os.path.basename(path)} is not a FlowSearch playground FLUX file")
    # detection reads widths from the weights but assumes FLUX.1's heads/axes: the file's config says them
    unet_config.update({k: cfg[k] for k in ("num_heads", "axes_dim", "mlp_ratio", "theta") if k in cfg})
    model_config = comfy.model_detection.model_config_from_unet_config(unet_config, sd)
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model(sd, "")
    model = model.to(mm.unet_offload_device())
    model.load_model_weights(sd, "")
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


class CaptionTokenizer:
    """ComfyUI tokenizer interface over the caption grammar: tokens are the parsed groups."""

    def __init__(self, embedding_directory=None, tokenizer_data=None):
        pass

    def tokenize_with_weights(self, text, return_word_ids=False, **kwargs):
        try:
            return {"playground": world.parse_caption(text)}
        except ValueError as e:
            raise ValueError(f"FlowSearch Playground text encoder: {e}") from None

    def untokenize(self, token_weight_pair):
        return token_weight_pair

    def state_dict(self):
        return {}


class CaptionEncoder(torch.nn.Module):
    """ComfyUI text-encoder interface: groups → (context [1, 2, 11], pooled [1, 22]) one-hot codes."""

    def __init__(self, device=None, dtype=None, model_options=None, **kwargs):
        super().__init__()
        self.dtypes = {torch.float32}
        self.register_buffer("codebook_version", torch.ones(1, device=device), persistent=False)

    def reset_clip_options(self):
        pass

    def set_clip_options(self, options):
        pass

    def encode_token_weights(self, tokens):
        ctx, pooled = codec.encode_groups(tokens["playground"])
        dev = mm.intermediate_device()
        return ctx[None].to(dev), pooled[None].to(dev)

    def load_sd(self, sd):
        return [], []


class _CaptionTarget:
    params = {}
    clip = CaptionEncoder
    tokenizer = CaptionTokenizer


def load_clip():
    """CLIP: the caption encoder, wrapped in ComfyUI's CLIP object (so the stock CLIPTextEncode works)."""
    return comfy.sd.CLIP(target=_CaptionTarget())


class PlaygroundVAE(comfy.sd.VAE):
    """ComfyUI's VAE object around the lossless pixel codec (16-channel FLUX latents, 8× like FLUX's VAE)."""

    def __init__(self):
        super().__init__(sd={"pixel_space_vae": torch.tensor(1.0)})  # the stock path for weightless VAEs
        fmt = comfy.latent_formats.Flux()
        self.first_stage_model = codec.PixelShuffleCodec(fmt.scale_factor, fmt.shift_factor).eval()
        self.downscale_ratio = self.upscale_ratio = codec.VAE_RATIO
        self.latent_channels = codec.LATENT_CHANNELS
        self.working_dtypes = [torch.float32]
        self.vae_dtype = torch.float32
        per_px = 3 * 4 * codec.VAE_RATIO ** 2  # float32 bytes of output pixels per latent position
        self.memory_used_decode = lambda shape, dtype: 4 * per_px * shape[2] * shape[3]
        self.memory_used_encode = lambda shape, dtype: 4 * 3 * 4 * shape[2] * shape[3]
        self.patcher = comfy.model_patcher.ModelPatcher(self.first_stage_model, load_device=self.device,
                                                        offload_device=mm.vae_offload_device())
        self.size = None


def load_vae():
    return PlaygroundVAE()


def load_learned_vae(path=DECODER):
    """VAE: ComfyUI's stock TAESD class with the learned playground decoder (playground/train_decoder.py), loaded by
    the stock `comfy.sd.VAE` detection. Decode only (the file has no encoder); it reproduces the pixel codec's
    pictures approximately at the cost of a real convolutional decoder (the benches' learned-VAE world)."""
    sd = comfy.utils.load_torch_file(path, safe_load=True)
    return comfy.sd.VAE(sd=sd)


def save_taesd_preview_file(out_path, path=DECODER):
    """Write the learned decoder as ComfyUI's `models/vae_approx/taef1_decoder.safetensors` holds a TAESD decoder
    (the bare decoder's keys, which read model-space latents: what latent previews and FlowSearch's
    `"reward_decoder": "taesd"` load). Returns out_path."""
    from safetensors.torch import save_file
    sd = comfy.utils.load_torch_file(path, safe_load=True)
    prefix = "taesd_decoder."
    save_file({k[len(prefix):]: v.float().contiguous() for k, v in sd.items() if k.startswith(prefix)}, out_path)
    return out_path
