"""ComfyUI integration: the ``rewards`` model folder and model management for reward models.

Everything ComfyUI is imported inside the functions, so ``import rewards`` never needs ComfyUI.

* :func:`register_folder` adds ``models/rewards`` to ``folder_paths`` (so ``extra_model_paths.yaml`` entries named
  ``rewards`` work too); :func:`reward_folder_names` lists the HF-format folders in all registered roots.
* :func:`manage` wraps each reward's module container in a ``comfy.model_patcher.ModelPatcher`` on ComfyUI's device
  and sets the reward's ``before_use`` hook to ``comfy.model_management.load_models_gpu``, so ComfyUI loads,
  counts and evicts reward models like its own models; it also sets every part's ``check_interrupt`` to
  ``comfy.model_management.throw_exception_if_processing_interrupted`` (Cancel between scoring minibatches).
* :func:`resolve_reward_path` resolves a loader's folder name only inside the registered ``rewards`` roots: absolute
  paths and ``..`` are refused before the file system is touched (ComfyUI does not check combo values).
"""
from __future__ import annotations

import ntpath
import os

import torch

from .base import Reward, RewardError
from .folders import LAYOUTS, layout_message, list_reward_folders, parse_dtype

FOLDER = "rewards"
NO_FOLDERS = "(no folders in models/rewards)"


def register_folder() -> list[str]:
    """Register ``<models_dir>/rewards`` (idempotent) and return the folder roots."""
    import folder_paths

    default = os.path.join(folder_paths.models_dir, FOLDER)
    if FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.add_model_folder_path(FOLDER, default, is_default=True)
    elif default not in folder_paths.get_folder_paths(FOLDER):
        folder_paths.add_model_folder_path(FOLDER, default)
    return folder_paths.get_folder_paths(FOLDER)


def reward_folder_names() -> list[str]:
    return list_reward_folders(register_folder())


def folder_options(extra: tuple[str, ...] = ()) -> list[str]:
    names = reward_folder_names()
    return list(extra) + (names or [NO_FOLDERS])


def check_folder_name(name: str, input_name: str = "model") -> str:
    """A loader's folder name, refused before any file-system access unless it is a plain relative name (ComfyUI
    does not check dropdown values against their list): no absolute path, no drive, no '..', no backslash."""
    name = str(name or "").strip()
    parts = name.replace("\\", "/").split("/")
    if (not name or os.path.isabs(name) or ntpath.splitdrive(name)[0] or "\\" in name or ".." in parts
            or any(p in ("", ".") for p in parts) or "\0" in name):
        raise RewardError(f"input '{input_name}': {name!r} is not a folder name from the list. Choose one of the "
                          f"folders listed under models/rewards (a name like 'clip-vit-large-patch14'; absolute "
                          f"paths and '..' are not accepted)")
    return name


def resolve_reward_path(name: str, kind: str, input_name: str = "model") -> str:
    """A folder name from the loader's list -> absolute path (first registered ``rewards`` root that has it).

    Only names inside the registered roots resolve; the error never says anything about paths outside them."""
    roots = register_folder()
    where = ", ".join(roots) or "ComfyUI/models/rewards"
    if name != NO_FOLDERS:
        name = check_folder_name(name, input_name)
    for root in roots:
        base = os.path.normpath(os.path.abspath(root))
        p = os.path.normpath(os.path.join(base, name))
        if os.path.commonpath([base, p]) == base and p != base and os.path.isdir(p):
            return p
    raise RewardError(f"input '{input_name}': reward folder '{name}' not found in {where}. "
                      + layout_message(kind, os.path.join(roots[0] if roots else "models/rewards", "<name>")))


def devices() -> tuple[torch.device, torch.device]:
    """(load device, offload device) as ComfyUI chooses them."""
    import comfy.model_management as mm

    return mm.get_torch_device(), mm.unet_offload_device()


def dtype_for(name: str, allow_fp16: bool = True) -> torch.dtype:
    import comfy.model_management as mm

    load, _ = devices()
    if (name or "auto") != "auto":
        return parse_dtype(name, load)
    if load.type == "cpu":
        return torch.float32
    if mm.should_use_bf16(load, prioritize_performance=False):
        return torch.bfloat16
    if allow_fp16 and mm.should_use_fp16(load, prioritize_performance=False):
        return torch.float16
    return torch.float32


def manage(reward: Reward) -> Reward:
    """Hand every module-owning part of ``reward`` to ComfyUI's model management (idempotent)."""
    import comfy.model_management as mm
    import comfy.model_patcher

    load, offload = devices()
    for leaf in reward.leaves():
        # Cancel stops scoring between minibatches (rewards score batch_size images per forward)
        leaf.check_interrupt = mm.throw_exception_if_processing_interrupted
        if leaf.net is None or getattr(leaf, "patcher", None) is not None:
            continue
        leaf.net.to(offload)
        leaf._device = torch.device(offload)
        patcher = comfy.model_patcher.ModelPatcher(leaf.net, load_device=load, offload_device=offload)
        leaf.patcher = patcher
        leaf.load_device = load

        def before_use(p=patcher):
            # plain torch modules cannot run partially offloaded: always load them whole
            mm.load_models_gpu([p], force_full_load=True)
        leaf.before_use = before_use
    return reward


def patchers(reward: Reward) -> list:
    """The ModelPatchers of a managed reward (e.g. to load them together with the diffusion model)."""
    return [leaf.patcher for leaf in reward.leaves() if getattr(leaf, "patcher", None) is not None]


def load_managed(kind: str, name: str, dtype: str = "auto", input_name: str = "model", **kw) -> Reward:
    """Resolve a folder from ``models/rewards`` (``input_name``: the loader input that named it, for errors), load
    the reward on the offload device, and manage it."""
    from . import load_reward

    layout = {"clip_score": "clip", "pickscore": "pickscore", "hpsv2": "hpsv2", "aesthetic": "aesthetic",
              "imagereward": "imagereward", "vqascore": "vqascore", "counting": "counting"}.get(kind, "clip")
    path = resolve_reward_path(name, layout, input_name)
    _, offload = devices()
    dt = dtype_for(dtype, allow_fp16=kind != "vqascore")
    reward = load_reward(kind, path, device=offload, dtype=dt, **kw)
    return manage(reward)


__all__ = ["register_folder", "reward_folder_names", "folder_options", "check_folder_name", "resolve_reward_path",
           "manage", "patchers",
           "load_managed", "devices", "dtype_for", "LAYOUTS"]
