"""Test-only ComfyUI nodes: loaded by the test host and the demo (their base directory links this folder into
custom_nodes/), never by users. They stand in for loaders whose real files cannot exist on a CPU-only,
offline machine: a tiny FLUX (through ComfyUI's real state-dict loader) and a FLUX-shaped text encoder."""
import hashlib
import json
import os
import sys
import time

import torch
from typing_extensions import override

import comfy.model_detection
import comfy.sd
import comfy.utils
import folder_paths
from comfy_api.latest import ComfyExtension, io


class FlowSearchTestTinyFluxLoader(io.ComfyNode):
    """Loads a small FLUX through comfy.sd.load_diffusion_model_state_dict; the file's 'tiny_flux_config'
    metadata overrides the two constants model detection fixes for FLUX (num_heads 24, axes_dim 16/56/56)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchTestTinyFluxLoader", display_name="Tiny FLUX Loader (test)", category="testing/flowsearch",
            inputs=[io.Combo.Input("unet_name", options=folder_paths.get_filename_list("diffusion_models"))],
            outputs=[io.Model.Output()])

    @classmethod
    def execute(cls, unet_name) -> io.NodeOutput:
        return io.NodeOutput(load_tiny_flux(folder_paths.get_full_path_or_raise("diffusion_models", unet_name)))


def load_tiny_flux(path):
    """comfy.sd.load_diffusion_model_state_dict with num_heads/axes_dim taken from the file's metadata."""
    sd, metadata = comfy.utils.load_torch_file(path, safe_load=True, return_metadata=True)
    overrides = json.loads((metadata or {}).get("tiny_flux_config", "{}"))
    detect = comfy.model_detection.detect_unet_config

    def detect_tiny(state_dict, key_prefix, metadata=None):
        cfg = detect(state_dict, key_prefix, metadata=metadata)
        if cfg is not None and cfg.get("image_model") == "flux":
            cfg.update(overrides)
        return cfg

    comfy.model_detection.detect_unet_config = detect_tiny
    try:
        model = comfy.sd.load_diffusion_model_state_dict(sd, metadata=metadata)
    finally:
        comfy.model_detection.detect_unet_config = detect
    if model is None:
        raise RuntimeError(f"could not detect the model type of {path}")
    return model


class _HashTextEncoder:
    """A CLIP stand-in for CLIPTextEncode: deterministic FLUX-shaped conditioning from the prompt's hash."""

    def __init__(self, tokens, context_dim, pooled_dim):
        self.tokens, self.context_dim, self.pooled_dim = tokens, context_dim, pooled_dim

    def tokenize(self, text, **kwargs):
        return {"text": text}

    def _encode(self, tokens):
        seed = int.from_bytes(hashlib.sha256(tokens["text"].encode()).digest()[:8], "little") & (2 ** 63 - 1)
        g = torch.Generator().manual_seed(seed)
        cond = torch.randn(1, self.tokens, self.context_dim, generator=g) * 0.1
        return cond, torch.randn(1, self.pooled_dim, generator=g) * 0.1

    def encode_from_tokens_scheduled(self, tokens, unprojected=False, add_dict={}, show_pbar=True):
        cond, pooled = self._encode(tokens)
        return [[cond, {"pooled_output": pooled, **add_dict}]]

    def encode_from_tokens(self, tokens, return_pooled=False, return_dict=False):
        cond, pooled = self._encode(tokens)
        if return_dict:
            return {"cond": cond, "pooled_output": pooled}
        return (cond, pooled) if return_pooled else cond


class FlowSearchTestTextEncoder(io.ComfyNode):
    """Stands in for DualCLIPLoader (T5-XXL + CLIP-L cannot run here): feeds the stock CLIPTextEncode."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchTestTextEncoder", display_name="Hash Text Encoder (test)", category="testing/flowsearch",
            inputs=[io.Int.Input("tokens", default=16, min=1, max=512),
                    io.Int.Input("context_dim", default=4096, min=1, max=8192),
                    io.Int.Input("pooled_dim", default=768, min=1, max=8192)],
            outputs=[io.Clip.Output()])

    @classmethod
    def execute(cls, tokens, context_dim, pooled_dim) -> io.NodeOutput:
        return io.NodeOutput(_HashTextEncoder(tokens, context_dim, pooled_dim))


def _slow_reward(seconds, batch_size):
    """A reward (the pack's rewards.Reward, imported top-level from the repo) that sleeps `seconds` per minibatch
    and scores brightness. Deliberately not managed here: the consuming node must wire ComfyUI's Cancel check."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    if root not in sys.path:
        sys.path.append(root)  # appended: ComfyUI's own top-level `nodes` must keep winning
    from rewards.base import Reward

    class SlowReward(Reward):
        name = "slow_test_reward"

        def _score(self, x, prompts, **kw):
            time.sleep(seconds)
            return x.mean((1, 2, 3))

    return SlowReward(batch_size=batch_size)


class FlowSearchTestSlowReward(io.ComfyNode):
    """A reward that takes `seconds` per minibatch of `batch_size` images (Cancel tests)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchTestSlowReward", display_name="Slow Reward (test)", category="testing/flowsearch",
            inputs=[io.Float.Input("seconds", default=0.25, min=0.0, max=60.0),
                    io.Int.Input("batch_size", default=1, min=1, max=256)],
            outputs=[io.Custom("REWARD").Output()])

    @classmethod
    def execute(cls, seconds, batch_size) -> io.NodeOutput:
        return io.NodeOutput(_slow_reward(seconds, batch_size))


class FlowSearchTestConstantReward(io.ComfyNode):
    """A reward that scores every image `value` ("nan", "-inf", "0.5", …): non-finite-reward tests."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchTestConstantReward", display_name="Constant Reward (test)",
            category="testing/flowsearch",
            inputs=[io.String.Input("value", default="nan")],
            outputs=[io.Custom("REWARD").Output()])

    @classmethod
    def execute(cls, value) -> io.NodeOutput:
        _slow_reward(0.0, 1)  # puts the repo root on sys.path
        from rewards.base import Reward

        class ConstantReward(Reward):
            name = f"constant_{value}"

            def _score(self, x, prompts, **kw):
                return torch.full((x.shape[0],), float(value), device=x.device)

        return io.NodeOutput(ConstantReward())


class _Extension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [FlowSearchTestTinyFluxLoader, FlowSearchTestTextEncoder, FlowSearchTestSlowReward,
                FlowSearchTestConstantReward]


async def comfy_entrypoint() -> ComfyExtension:
    return _Extension()
