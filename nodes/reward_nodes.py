"""Reward nodes (V3): a loader per reward family (output: REWARD), weight-free rewards, Reward Combine, Score Images.

Loaders list the HF-format folders under ComfyUI ``models/rewards`` (and any ``rewards:`` entry in
extra_model_paths.yaml). Models are loaded on ComfyUI's offload device and handed to its model management, which
moves them to the GPU when a reward is scored and evicts them like any other model.
"""
from __future__ import annotations

import json
import math

from comfy_api.latest import io, ui

from ..rewards import CompositeReward, RewardError
from ..rewards import comfy_glue
from ..rewards.base import quoted
from ..rewards.simple import ColorReward, ImageStatReward, JpegReward
from .types import REWARD

CATEGORY = "sampling/flowsearch/rewards"
DTYPES = ["auto", "fp32", "bf16", "fp16"]
METRICS = ["clip_score", "pickscore", "hpsv2"]
BACKENDS = ["auto", "clip_t5", "blip2", "instructblip", "vlm"]
COUNT_MODES = ["hard", "soft"]
JPEG_MODES = ["compressibility", "incompressibility"]
STATS = ["brightness", "saturation", "contrast"]
STAT_MODES = ["target", "maximize", "minimize"]
NORMALIZE = ["range", "none", "batch"]


def _choice(node: str, name: str, value, options: list[str]):
    """ComfyUI does not check combo values of API prompts against their lists: check them here."""
    if value not in options:
        raise ValueError(f"{node}: input '{name}' is {quoted(value)}; choose one of {', '.join(options)}")
    return value


def _finite(node: str, name: str, value):
    """Float inputs: JSON prompts can carry NaN/Infinity past ComfyUI's min/max checks."""
    if not math.isfinite(float(value)):
        raise ValueError(f"{node}: input '{name}' is {quoted(value)}; give a finite number")
    return value


def _folder_input(tooltip: str, extra: tuple[str, ...] = (), id: str = "model"):
    opts = comfy_glue.folder_options(extra)
    return io.Combo.Input(id, options=opts, default=opts[0], tooltip=tooltip)


def _dtype_input():
    return io.Combo.Input("dtype", options=DTYPES, default="auto",
                          tooltip="Weights dtype. auto: fp32 on CPU, bf16 (or fp16) on GPUs. T5-based VQAScore never "
                                  "uses fp16 (it overflows).")


def _batch_input(default=8):
    return io.Int.Input("batch_size", default=default, min=1, max=256,
                        tooltip="Images scored per forward pass (minibatch); lower it if the reward runs out of memory.")


def _reward_output(name: str, what: str):
    return REWARD.Output(display_name=name, tooltip=f"{what}: connect it to the reward input of FlowSearch, "
                                                    "FlowSearch Sampler, Score Images or Reward Combine.")


def _load(kind, model, dtype, **kw):
    _choice(f"FlowSearch reward loader ({kind})", "dtype", dtype, DTYPES)
    try:
        return comfy_glue.load_managed(kind, model, dtype, **kw)
    except RewardError as e:
        raise ValueError(f"FlowSearch reward loader ({kind}): {e}") from e


def _managed(reward):
    """Every reward a node outputs is managed (idempotent): model parts by ComfyUI's model management, and Cancel
    checked between scoring minibatches for all of them."""
    return comfy_glue.manage(reward)


class RewardLoaderCLIP(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchRewardLoaderCLIP", display_name="Load CLIP-family Reward (FlowSearch)",
            category=CATEGORY,
            description="CLIP score (100*max(cos,0)), PickScore (logit_scale*cos) or HPSv2 (cos) from a folder in "
                        "models/rewards. Differentiable; needs a prompt.",
            inputs=[
                _folder_input("Folder in models/rewards: a transformers CLIPModel folder (openai/clip-vit-large-patch14 "
                              "for CLIP score, yuvalkirstain/PickScore_v1 for PickScore) or an HPSv2 folder "
                              "(HPS_v2.1_compressed.pt + CLIP-H config/tokenizer files)."),
                io.Combo.Input("metric", options=METRICS, default="clip_score",
                               tooltip="Which score to compute with the CLIP model in the folder."),
                _dtype_input(), _batch_input(),
            ],
            outputs=[_reward_output("CLIP reward", "The CLIP score / PickScore / HPSv2 scorer")],
        )

    @classmethod
    def execute(cls, model, metric, dtype, batch_size) -> io.NodeOutput:
        _choice("FlowSearch reward loader (clip)", "metric", metric, METRICS)
        return io.NodeOutput(_load(metric, model, dtype, batch_size=batch_size))


class RewardLoaderAesthetic(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchRewardLoaderAesthetic", display_name="Load LAION Aesthetic Reward (FlowSearch)",
            category=CATEGORY,
            description="LAION aesthetic predictor v2: MLP on CLIP ViT-L/14 image embeddings (the paper's "
                        "aesthetic reward, roughly 1-10). Differentiable; no prompt.",
            inputs=[
                _folder_input("Folder in models/rewards holding openai/clip-vit-large-patch14 plus "
                              "sac+logos+ava1-l14-linearMSE.pth (or the .pth next to a clip/ subfolder)."),
                _dtype_input(), _batch_input(),
            ],
            outputs=[_reward_output("aesthetic reward", "The LAION aesthetic scorer (about 1-10)")],
        )

    @classmethod
    def execute(cls, model, dtype, batch_size) -> io.NodeOutput:
        return io.NodeOutput(_load("aesthetic", model, dtype, batch_size=batch_size))


class RewardLoaderImageReward(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchRewardLoaderImageReward", display_name="Load ImageReward (FlowSearch)",
            category=CATEGORY,
            description="ImageReward v1.0 (BLIP-based human-preference reward), read from the public ImageReward.pt "
                        "with its key names converted at load time. Differentiable; needs a prompt.",
            inputs=[
                _folder_input("Folder in models/rewards with ImageReward.pt + med_config.json (THUDM/ImageReward) "
                              "and the bert-base-uncased tokenizer files (vocab.txt, tokenizer_config.json)."),
                _dtype_input(), _batch_input(),
            ],
            outputs=[_reward_output("ImageReward reward", "The ImageReward human-preference scorer")],
        )

    @classmethod
    def execute(cls, model, dtype, batch_size) -> io.NodeOutput:
        return io.NodeOutput(_load("imagereward", model, dtype, batch_size=batch_size))


class RewardLoaderVQAScore(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchRewardLoaderVQAScore", display_name="Load VQAScore Reward (FlowSearch)",
            category=CATEGORY,
            description="VQAScore: P('Yes') to 'Does this figure show \"{prompt}\"? Please answer yes or no.' "
                        "Backends: CLIP-FlanT5 (the paper's reward), BLIP-2/InstructBLIP Flan-T5, or a decoder-only "
                        "VLM such as Qwen2.5-VL. Differentiable; needs a prompt.",
            inputs=[
                _folder_input("Folder in models/rewards: zhiqiulin/clip-flant5-xxl (or -xl), "
                              "Salesforce/instructblip-flan-t5-xl, Salesforce/blip2-flan-t5-xl, or "
                              "Qwen/Qwen2.5-VL-3B-Instruct (any AutoModelForImageTextToText model)."),
                io.Combo.Input("backend", options=BACKENDS,
                               default="auto", tooltip="auto reads config.json; override only for unusual folders."),
                io.String.Input("question", default="",
                                tooltip="Question template with {} for the prompt. Empty: the backend's default "
                                        "(Does this figure show \"{}\"? Please answer yes or no.)."),
                io.String.Input("answer", default="",
                                tooltip="Answer whose probability is the score. Empty: the backend's default ('Yes'; "
                                        "'yes' for BLIP-2/InstructBLIP, as in t2v-metrics)."),
                _dtype_input(), _batch_input(4),
            ],
            outputs=[_reward_output("VQAScore reward", "The VQAScore scorer (probability of 'Yes', 0-1)")],
        )

    @classmethod
    def execute(cls, model, backend, question, answer, dtype, batch_size) -> io.NodeOutput:
        _choice("FlowSearch reward loader (vqascore)", "backend", backend, BACKENDS)
        return io.NodeOutput(_load("vqascore", model, dtype, batch_size=batch_size, backend=backend,
                                   question=question.strip() or None, answer=answer.strip() or None))


class RewardLoaderCounting(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchRewardLoaderCounting", display_name="Load Counting Reward (FlowSearch)",
            category=CATEGORY,
            description="Quantity-aware reward -RSS = -sum (detected - requested)^2 per class, with Grounding DINO "
                        "(paper thresholds 0.2/0.2, exact phrase matching, de-duplication) or OWLv2, optionally SAM "
                        "masks for de-duplication. Hard counts are not differentiable; gradient guidance uses the "
                        "soft-count surrogate. Leave class_names and counts empty to read the counts from the prompt "
                        "('six airplanes and seven camels'); the FlowSearch report shows the targets and counts.",
            inputs=[
                _folder_input("Detector folder in models/rewards: IDEA-Research/grounding-dino-base (paper) or "
                              "google/owlv2-base-patch16-ensemble.", id="detector"),
                _folder_input("Optional SAM folder (facebook/sam-vit-base) for mask-based de-duplication; 'none' "
                              "uses the boxes.", extra=("none",), id="sam"),
                io.String.Input("class_names", default="airplanes, camels",
                                tooltip="Comma-separated object names to count (matched exactly against the "
                                        "detector's phrases). Leave this and counts empty to read both from the "
                                        "prompt: a number (one..twenty or digits) and the plural noun after it, "
                                        "e.g. 'Six airplanes flying over seven camels' -> airplanes 6, camels 7."),
                io.String.Input("counts", default="6, 7",
                                tooltip="Comma-separated requested counts, one per name. Empty (with class_names "
                                        "empty): read from the prompt."),
                io.Float.Input("box_threshold", default=0.2, min=0.0, max=1.0, step=0.01,
                               tooltip="Detection score threshold (paper: 0.2)."),
                io.Float.Input("text_threshold", default=0.2, min=0.0, max=1.0, step=0.01,
                               tooltip="Grounding DINO token threshold for the phrase of a box (paper: 0.2)."),
                io.Combo.Input("mode", options=COUNT_MODES, default="hard",
                               tooltip="hard: -RSS of de-duplicated counts (for search/selection). soft: the "
                                       "differentiable soft-count surrogate."),
                _dtype_input(), _batch_input(4),
            ],
            outputs=[_reward_output("counting reward", "The counting scorer (-RSS, 0 = every count right)")],
        )

    @classmethod
    def execute(cls, detector, sam, class_names, counts, box_threshold, text_threshold, mode, dtype,
                batch_size) -> io.NodeOutput:
        node = "FlowSearch reward loader (counting)"
        _choice(node, "mode", mode, COUNT_MODES)
        _finite(node, "box_threshold", box_threshold)
        _finite(node, "text_threshold", text_threshold)
        try:
            sam_path = None if sam in ("none", comfy_glue.NO_FOLDERS) else comfy_glue.resolve_reward_path(
                sam, "sam", input_name="sam")
        except RewardError as e:
            raise ValueError(f"{node}: {e}") from e
        return io.NodeOutput(_load("counting", detector, dtype, input_name="detector", batch_size=batch_size,
                                   classes=class_names, counts=counts, sam_path=sam_path, box_threshold=box_threshold,
                                   text_threshold=text_threshold, soft=mode == "soft"))


class RewardJPEG(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchRewardJPEG", display_name="JPEG Compressibility Reward (FlowSearch)",
            category=CATEGORY,
            description="DDPO's JPEG reward: -size in kB of the image saved as JPEG (compressibility) or +size "
                        "(incompressibility). No weights; not differentiable.",
            inputs=[
                io.Combo.Input("mode", options=JPEG_MODES, default="compressibility",
                               tooltip="compressibility favours simple, flat images; incompressibility detailed ones."),
                io.Int.Input("quality", default=95, min=1, max=100, tooltip="JPEG quality used to measure the size."),
            ],
            outputs=[_reward_output("JPEG reward", "The JPEG size scorer")],
        )

    @classmethod
    def execute(cls, mode, quality) -> io.NodeOutput:
        _choice("JPEG Compressibility Reward", "mode", mode, JPEG_MODES)
        return io.NodeOutput(_managed(JpegReward(incompressible=mode == "incompressibility", quality=quality)))


class RewardImageStat(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchRewardImageStat", display_name="Brightness/Saturation Reward (FlowSearch)",
            category=CATEGORY,
            description="Differentiable image statistic in [0,1] (brightness, saturation or contrast), maximised, "
                        "minimised or pulled to a target. No weights.",
            inputs=[
                io.Combo.Input("stat", options=STATS, default="brightness",
                               tooltip="brightness: mean luma; saturation: mean HSV saturation; contrast: 2 x luma "
                                       "std."),
                io.Combo.Input("mode", options=STAT_MODES, default="target",
                               tooltip="target scores -|stat - target|."),
                io.Float.Input("target", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="Target value of the statistic (mode 'target')."),
            ],
            outputs=[_reward_output("image statistic reward", "The brightness/saturation/contrast scorer")],
        )

    @classmethod
    def execute(cls, stat, mode, target) -> io.NodeOutput:
        node = "Brightness/Saturation Reward"
        _choice(node, "stat", stat, STATS)
        _choice(node, "mode", mode, STAT_MODES)
        _finite(node, "target", target)
        return io.NodeOutput(_managed(ImageStatReward(stat, mode, target)))


class RewardColor(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchRewardColor", display_name="Colour Target Reward (FlowSearch)",
            category=CATEGORY,
            description="Differentiable colour reward: minus the distance of the image's mean colour (or of every "
                        "pixel) to a target colour, in [-1, 0]. No weights.",
            inputs=[
                io.String.Input("color", default="#ff8800", tooltip="Target colour as #rrggbb or r,g,b (0-255)."),
                io.Boolean.Input("per_pixel", default=False,
                                 tooltip="Off: match the mean colour. On: pull every pixel toward the colour."),
            ],
            outputs=[_reward_output("colour reward", "The colour distance scorer (-1..0)")],
        )

    @classmethod
    def execute(cls, color, per_pixel) -> io.NodeOutput:
        try:
            return io.NodeOutput(_managed(ColorReward(color, per_pixel)))
        except RewardError as e:
            raise ValueError(f"Colour Target Reward: {e}") from e


class RewardCombine(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        opt = []
        for i in range(2, 5):
            opt += [REWARD.Input(f"reward_{i}", optional=True, tooltip=f"Optional reward {i}."),
                    io.Float.Input(f"weight_{i}", default=1.0, min=-100.0, max=100.0, step=0.05, optional=True,
                                   tooltip=f"Weight of reward {i} (ignored when reward {i} is not connected).")]
        return io.Schema(
            node_id="FlowSearchRewardCombine", display_name="Reward Combine (FlowSearch)", category=CATEGORY,
            description="Weighted sum of rewards, each normalised first. Differentiable only if every part is.",
            inputs=[REWARD.Input("reward_1", tooltip="First reward."),
                    io.Float.Input("weight_1", default=1.0, min=-100.0, max=100.0, step=0.05,
                                   tooltip="Weight of reward 1."),
                    *opt,
                    io.Combo.Input("normalize", options=NORMALIZE, default="range",
                                   tooltip="range: map each reward's nominal range to [0,1] (fixed, batch-independent). "
                                           "none: raw scores. batch: z-score within the batch (scale-free, but a "
                                           "score then depends on the other images).")],
            outputs=[REWARD.Output(display_name="combined reward",
                                   tooltip="The weighted sum of the connected rewards: connect it to the reward input "
                                           "of FlowSearch, FlowSearch Sampler or Score Images.")],
        )

    @classmethod
    def execute(cls, reward_1, weight_1, normalize, reward_2=None, weight_2=1.0, reward_3=None, weight_3=1.0,
                reward_4=None, weight_4=1.0) -> io.NodeOutput:
        parts = [(r, w) for r, w in ((reward_1, weight_1), (reward_2, weight_2), (reward_3, weight_3),
                                     (reward_4, weight_4)) if r is not None]
        _choice("Reward Combine", "normalize", normalize, NORMALIZE)
        for i, (_, w) in enumerate(parts, 1):
            _finite("Reward Combine", f"weight_{i}", w)
        return io.NodeOutput(_managed(CompositeReward(parts, normalize)))


def scores_report(reward, scores, prompt, details=None) -> dict:
    vals = [float(v) for v in scores]
    best = max(range(len(vals)), key=lambda i: vals[i]) if vals else None
    out = {"reward": reward.name, "prompt": prompt, "scores": vals, "best_index": best,
           "differentiable": reward.differentiable}
    if details:
        out["details"] = details
    return out


class ScoreImages(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchScoreImages", display_name="Score Images (FlowSearch)", category=CATEGORY,
            description="Score a batch of images with a reward (post-hoc scoring, held-out metrics). Outputs one "
                        "FLOAT per image and a JSON summary, and shows the scores on the node.",
            inputs=[
                io.Image.Input("images", tooltip="Images to score (a batch)."),
                REWARD.Input("reward", tooltip="Reward from a FlowSearch reward loader or Reward Combine."),
                io.String.Input("prompt", default="", multiline=True,
                                tooltip="Text prompt for prompt-based rewards (CLIP, PickScore, HPSv2, ImageReward, "
                                        "VQAScore); ignored by the others."),
            ],
            outputs=[io.Float.Output(display_name="scores", is_output_list=True,
                                     tooltip="One score per image (higher is better)."),
                     io.String.Output(display_name="report (JSON)",
                                      tooltip="JSON: reward name, prompt, scores, best index (and the counting "
                                              "reward's counts).")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images, reward, prompt) -> io.NodeOutput:
        reward = _managed(reward)  # Cancel between minibatches, whichever node made the reward
        try:
            scores = reward(images, prompt if prompt.strip() else None)
        except RewardError as e:
            raise ValueError(f"Score Images: {e}") from e
        details = getattr(reward, "last_details", None) if getattr(reward, "needs_counts", False) else None
        report = scores_report(reward, scores.tolist(), prompt, details)
        text = f"{reward.name}\n" + "\n".join(
            f"#{i}: {v:.4f}" + ("  <- best" if i == report["best_index"] and len(report["scores"]) > 1 else "")
            for i, v in enumerate(report["scores"]))
        return io.NodeOutput(report["scores"], json.dumps(report), ui=ui.PreviewText(text))


NODES = [RewardLoaderCLIP, RewardLoaderAesthetic, RewardLoaderImageReward, RewardLoaderVQAScore, RewardLoaderCounting,
         RewardJPEG, RewardImageStat, RewardColor, RewardCombine, ScoreImages]
