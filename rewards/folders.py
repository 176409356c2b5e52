"""Reward model folders: the expected layouts, their public sources, and strictly local loading.

Nothing here ever downloads: every ``from_pretrained`` call gets a local directory and ``local_files_only=True``.
A missing or malformed folder raises :class:`RewardError` naming the expected layout and where the weights come from.
"""
from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import torch

from .base import RewardError

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: kind -> (what the folder must hold, public source of the weights, licence)
LAYOUTS: dict[str, tuple[str, str, str]] = {
    "clip": ("a transformers CLIPModel folder: config.json, model.safetensors (or pytorch_model.bin), "
             "preprocessor_config.json, tokenizer files (tokenizer.json or vocab.json + merges.txt, "
             "tokenizer_config.json)",
             "https://huggingface.co/openai/clip-vit-large-patch14", "MIT"),
    "pickscore": ("a transformers CLIPModel folder (config.json, weights) plus the CLIP-H processor/tokenizer files "
                  "(preprocessor_config.json, tokenizer.json/vocab.json+merges.txt, tokenizer_config.json) copied from "
                  "laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
                  "https://huggingface.co/yuvalkirstain/PickScore_v1 (+ laion/CLIP-ViT-H-14-laion2B-s32B-b79K for the "
                  "processor files)", "MIT (PickScore), MIT (OpenCLIP weights)"),
    "hpsv2": ("HPS_v2.1_compressed.pt or HPS_v2_compressed.pt (OpenCLIP ViT-H-14 checkpoint, converted to transformers "
              "names at load time) next to the CLIP-H config.json, preprocessor_config.json and tokenizer files of "
              "laion/CLIP-ViT-H-14-laion2B-s32B-b79K; or an already converted CLIPModel folder",
              "https://huggingface.co/xswu/HPSv2 (+ laion/CLIP-ViT-H-14-laion2B-s32B-b79K)", "Apache-2.0 / MIT"),
    "aesthetic": ("a CLIP ViT-L/14 CLIPModel folder (openai/clip-vit-large-patch14: config.json, weights, "
                  "preprocessor_config.json, tokenizer files) with the LAION head file "
                  "sac+logos+ava1-l14-linearMSE.pth (or aesthetic_head.safetensors) inside it; or the head file next to "
                  "a clip/ subfolder",
                  "https://github.com/christophschuhmann/improved-aesthetic-predictor (head) + "
                  "https://huggingface.co/openai/clip-vit-large-patch14", "Apache-2.0 (head), MIT (CLIP)"),
    "imagereward": ("ImageReward.pt and med_config.json from THUDM/ImageReward, plus the bert-base-uncased tokenizer "
                    "files (vocab.txt, tokenizer_config.json; tokenizer.json optional) in the same folder or in a "
                    "tokenizer/ subfolder",
                    "https://huggingface.co/THUDM/ImageReward (+ google-bert/bert-base-uncased tokenizer)",
                    "Apache-2.0"),
    "clip_t5": ("the CLIP-FlanT5 checkpoint folder (config.json with model_type clip_t5, *.safetensors or "
                "pytorch_model*.bin shards, T5 tokenizer files); if the shards hold no vision_tower.* weights, put "
                "openai/clip-vit-large-patch14-336 in a vision_tower/ subfolder; T5 tokenizer files may sit in a "
                "tokenizer/ subfolder (google/flan-t5-xxl)",
                "https://huggingface.co/zhiqiulin/clip-flant5-xxl (or -xl) (+ openai/clip-vit-large-patch14-336, "
                "google/flan-t5-xxl tokenizer)", "Apache-2.0"),
    "blip2": ("a transformers Blip2ForConditionalGeneration / InstructBlipForConditionalGeneration folder "
              "(config.json, weights, preprocessor_config.json, tokenizer files, processor_config.json; InstructBLIP "
              "also qformer_tokenizer/)",
              "https://huggingface.co/Salesforce/instructblip-flan-t5-xxl or Salesforce/blip2-flan-t5-xl",
              "MIT (BLIP-2 / InstructBLIP), Apache-2.0 (Flan-T5)"),
    "vlm": ("a transformers image-text-to-text folder (config.json, weights, preprocessor_config.json, tokenizer "
            "files, chat template)", "https://huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct (or -7B)",
            "Qwen2.5-VL research/Apache-2.0 per model card"),
    "vqascore": ("one of: the CLIP-FlanT5 checkpoint folder (config.json with model_type clip_t5 + shards + T5 "
                 "tokenizer; vision_tower/ subfolder with openai/clip-vit-large-patch14-336 if the shards lack it), a "
                 "transformers BLIP-2 / InstructBLIP Flan-T5 folder, or a transformers image-text-to-text VLM folder "
                 "(config.json, weights, preprocessor_config.json, tokenizer files, chat template)",
                 "https://huggingface.co/zhiqiulin/clip-flant5-xxl (paper), Salesforce/instructblip-flan-t5-xl, "
                 "Salesforce/blip2-flan-t5-xl or Qwen/Qwen2.5-VL-3B-Instruct", "Apache-2.0 / MIT / model card"),
    "counting": ("a detector folder: transformers GroundingDinoForObjectDetection (config.json, weights, "
                 "preprocessor_config.json, vocab.txt + tokenizer_config.json) or Owlv2ForObjectDetection; optional "
                 "SAM folder (facebook/sam-vit-base) for mask de-duplication",
                 "https://huggingface.co/IDEA-Research/grounding-dino-base (paper) or "
                 "google/owlv2-base-patch16-ensemble (+ facebook/sam-vit-base)", "Apache-2.0"),
    "grounding_dino": ("a transformers GroundingDinoForObjectDetection folder (config.json, weights, "
                       "preprocessor_config.json, tokenizer files: vocab.txt, tokenizer_config.json)",
                       "https://huggingface.co/IDEA-Research/grounding-dino-base", "Apache-2.0"),
    "owlv2": ("a transformers Owlv2ForObjectDetection folder (config.json, weights, preprocessor_config.json, "
              "tokenizer files)", "https://huggingface.co/google/owlv2-base-patch16-ensemble", "Apache-2.0"),
    "sam": ("a transformers SamModel folder (config.json, weights, preprocessor_config.json)",
            "https://huggingface.co/facebook/sam-vit-base", "Apache-2.0"),
}

WEIGHT_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def layout_message(kind: str, path) -> str:
    what, source, lic = LAYOUTS[kind]
    return (f"expected {what} at '{path}'. Public source of the weights: {source} (licence: {lic}). "
            f"Download the files yourself and place them under ComfyUI/models/rewards/<name>/; nothing is "
            f"downloaded automatically.")


def require_dir(path, kind: str) -> Path:
    p = Path(path) if path else None
    if p is None or not p.is_dir():
        raise RewardError(f"reward folder not found: {layout_message(kind, path)}")
    return p


def require_files(p: Path, kind: str, *groups: tuple[str, ...]):
    """Each group is a tuple of alternatives; at least one of each group must exist in ``p``."""
    missing = [" or ".join(g) for g in groups if not any((p / f).exists() for f in g)]
    if missing:
        raise RewardError(f"reward folder '{p}' is missing {', '.join(missing)}: {layout_message(kind, p)}")


def require_model_folder(path, kind: str, extra: tuple[tuple[str, ...], ...] = ()) -> Path:
    p = require_dir(path, kind)
    require_files(p, kind, ("config.json",), WEIGHT_NAMES, *extra)
    return p


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise RewardError(f"cannot read {path}: {e}") from e


def local(fn, path, kind: str, **kw):
    """``fn(path, local_files_only=True, **kw)`` with a clear error instead of a hub lookup failure."""
    try:
        return fn(str(path), local_files_only=True, **kw)
    except RewardError:
        raise
    except Exception as e:  # noqa: BLE001 - any loader failure (incl. safetensors' own errors) names the layout
        raise RewardError(f"could not load {getattr(fn, '__qualname__', fn)} from '{path}' "
                          f"({type(e).__name__}: {str(e)[:300]}): {layout_message(kind, path)}") from e


def load_state_dict(path) -> dict[str, torch.Tensor]:
    """safetensors / .pt / .pth / .bin (tensors only, never arbitrary pickles)."""
    path = str(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    try:
        # tensors only: weights_only refuses any pickled object; mmap needs the zip format (not legacy files)
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError) as e:
        raise RewardError(f"cannot read checkpoint {path} as a plain state dict of tensors "
                          f"({type(e).__name__}: {str(e)[:200]}); pickled Python objects are refused: use the "
                          "original checkpoint file (or its .safetensors)") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict) and not any(
            torch.is_tensor(v) for v in obj.values()):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise RewardError(f"{path} does not hold a state dict")
    out = {}
    for k, v in obj.items():
        if torch.is_tensor(v):
            out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


def checkpoint_keys(p: Path, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Tensors whose names start with one of ``prefixes`` from a (possibly sharded) checkpoint in folder ``p``."""
    out: dict[str, torch.Tensor] = {}
    for idx_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (p / idx_name).exists():
            wm = read_json(p / idx_name).get("weight_map", {})
            files = sorted({f for k, f in wm.items() if k.startswith(prefixes)})
            break
    else:
        files = [f for f in ("model.safetensors", "pytorch_model.bin") if (p / f).exists()][:1]
    for f in files:
        fp = p / f
        if f.endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(str(fp), framework="pt") as sf:
                for k in sf.keys():
                    if k.startswith(prefixes):
                        out[k] = sf.get_tensor(k)
        else:
            sd = load_state_dict(fp)
            out.update({k: v for k, v in sd.items() if k.startswith(prefixes)})
    return out


def parse_dtype(name: str | torch.dtype | None, device: torch.device, allow_fp16: bool = True) -> torch.dtype:
    """"auto" -> fp32 on CPU, bf16 where supported (else fp16 if allowed, else fp32) on accelerators."""
    if isinstance(name, torch.dtype):
        return name
    name = (name or "auto").lower()
    table = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
             "fp16": torch.float16, "float16": torch.float16}
    if name in table:
        return table[name]
    if name != "auto":
        raise RewardError(f"unknown dtype '{name}' (auto, fp32, bf16, fp16)")
    device = torch.device(device)
    if device.type == "cpu":
        return torch.float32
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16 if allow_fp16 else torch.float32


def list_reward_folders(roots) -> list[str]:
    """HF-format folders under the given roots (one or two levels deep), as '/'-joined relative names."""
    names: set[str] = set()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for d in sorted(root.iterdir()):
            if not d.is_dir() or d.name.startswith("."):
                continue
            if _looks_like_model(d):
                names.add(d.name)
            else:
                for sub in sorted(d.iterdir()):
                    if sub.is_dir() and _looks_like_model(sub):
                        names.add(f"{d.name}/{sub.name}")
    return sorted(names)


def _looks_like_model(d: Path) -> bool:
    return any((d / f).exists() for f in ("config.json", "ImageReward.pt", "med_config.json")) or any(
        f.suffix in (".pt", ".pth", ".safetensors", ".bin") for f in d.iterdir() if f.is_file())
