"""Reward interface, composition, weight-free rewards, counting post-processing and checkpoint converters.

No model weights here: synthetic tensors with known answers."""
import json
import math

import pytest
import torch

import rewards
from rewards import CompositeReward, RewardError
from rewards.base import Reward, as_bchw, expand_prompts
from rewards.counting import (Detections, box_masks, dedup_count, filter_relative, grounded_detections, parse_targets,
                              rss, soft_counts)
from rewards.folders import LAYOUTS, list_reward_folders, load_state_dict, parse_dtype
from rewards.prompt_counts import counts_in_prompt, targets_from_prompt
from rewards.simple import ColorReward, ImageStatReward, JpegReward, parse_color


def _img(b=2, h=32, w=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, h, w, 3, generator=g)


# ------------------------------------------------------------------------------------------------ interface
class Mean(Reward):
    name = "mean"
    differentiable = True

    def _score(self, x, prompts, **kw):
        return x.mean((1, 2, 3)) * 2


def test_interface_shapes_devices_and_minibatching():
    r = Mean(batch_size=2)
    x = _img(5)
    s = r(x)
    assert s.shape == (5,) and s.dtype == torch.float32 and s.device == x.device
    torch.testing.assert_close(s, x.mean((1, 2, 3)) * 2)
    assert r(x[0]).shape == (1,)  # a single [H,W,3] image
    assert r(x[..., :1].expand(-1, -1, -1, 3)).shape == (5,)


def test_interface_grad_only_when_asked():
    r = Mean()
    x = _img(2)
    assert not r(x).requires_grad
    xg = x.clone().requires_grad_(True)
    r(xg).sum().backward()
    assert torch.allclose(xg.grad, torch.full_like(xg, 2 / xg[0].numel()))
    with torch.no_grad():
        assert not r(xg).requires_grad


def test_as_bchw_and_prompts():
    x = _img(2, 8, 6)
    assert as_bchw(x).shape == (2, 3, 8, 6)
    assert as_bchw(torch.rand(2, 8, 6, 4)).shape == (2, 3, 8, 6)
    assert as_bchw(torch.rand(2, 8, 6, 1)).shape == (2, 3, 8, 6)
    with pytest.raises(RewardError):
        as_bchw(torch.rand(8, 6))
    assert expand_prompts("a", 3) == ["a"] * 3
    assert expand_prompts(["a"], 2) == ["a", "a"]
    assert expand_prompts(None, 2) == [None, None]
    with pytest.raises(RewardError, match="2 prompts for 3 images"):
        expand_prompts(["a", "b"], 3)


def test_needs_prompt_is_enforced():
    class P(Mean):
        needs_prompt = True
    with pytest.raises(RewardError, match="needs a text prompt"):
        P()(_img(1))
    assert P()(_img(1), "x").shape == (1,)


def test_before_use_hook_runs_each_call():
    calls = []
    r = Mean()
    r.before_use = lambda: calls.append(1)
    r(_img(1))
    r(_img(1))
    assert len(calls) == 2


# ------------------------------------------------------------------------------------------------ composite
def test_composite_weighted_sum_and_range_normalisation():
    a, b = ImageStatReward("brightness", "maximize"), ColorReward("#000000")
    x = _img(3)
    c = CompositeReward([(a, 2.0), (b, -1.0)], normalize="none")
    torch.testing.assert_close(c(x), 2 * a(x) - b(x))
    c = CompositeReward([(a, 1.0), (b, 1.0)], normalize="range")
    torch.testing.assert_close(c(x), a(x) + (b(x) + 1.0))  # brightness range [0,1]; colour range [-1,0]
    assert c.differentiable and not c.needs_prompt
    # range normalisation is per image: batch == one by one
    torch.testing.assert_close(c(x), torch.cat([c(x[i:i + 1]) for i in range(3)]))


def test_composite_batch_normalisation_and_flags():
    a = ImageStatReward("saturation", "maximize")
    c = CompositeReward([(a, 1.0), (JpegReward(), 0.5)], normalize="batch")
    s = c(_img(4))
    assert s.shape == (4,) and torch.isfinite(s).all()
    assert not c.differentiable and c.surrogate() is None
    assert c.describe()["parts"][1]["name"] == "jpeg_compressibility"
    with pytest.raises(RewardError):
        CompositeReward([])
    with pytest.raises(RewardError):
        CompositeReward([(a, 1.0)], normalize="zz")


def test_composite_gradient_flows_to_image():
    c = CompositeReward([(ImageStatReward("brightness", "target", 0.2), 1.0), (ColorReward("#ff0000"), 1.0)])
    x = _img(2).requires_grad_(True)
    c(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------ weight-free
def test_jpeg_flat_image_more_compressible_than_noise():
    flat = torch.full((1, 64, 64, 3), 0.5)
    noise = _img(1, 64, 64)
    grad = torch.linspace(0, 1, 64).view(1, 1, 64, 1).expand(1, 64, 64, 3)
    r = rewards.load_reward("jpeg")
    s = r(torch.cat([flat, grad, noise]))
    assert s[0] > s[1] > s[2]  # flat > smooth gradient > noise
    assert (s < 0).all()
    inc = rewards.load_reward("jpeg_incompressibility")
    torch.testing.assert_close(inc(noise), -r(noise))
    assert not r.differentiable and r.surrogate() is None


def test_brightness_saturation_contrast_orderings():
    dark, bright = torch.full((1, 8, 8, 3), 0.1), torch.full((1, 8, 8, 3), 0.9)
    grey = torch.full((1, 8, 8, 3), 0.5)
    red = torch.zeros(1, 8, 8, 3)
    red[..., 0] = 1.0
    checker = (torch.arange(64).view(8, 8) % 2).float().view(1, 8, 8, 1).expand(1, 8, 8, 3)
    b = ImageStatReward("brightness", "maximize")
    assert b(bright) > b(grey) > b(dark)
    assert ImageStatReward("brightness", "minimize")(dark) > ImageStatReward("brightness", "minimize")(bright)
    t = ImageStatReward("brightness", "target", 0.5)
    assert t(grey) > t(bright) and t(grey).item() == pytest.approx(0.0, abs=1e-6)
    s = ImageStatReward("saturation", "maximize")
    assert s(red).item() == pytest.approx(1.0, abs=1e-4) and s(grey).item() == pytest.approx(0.0, abs=1e-4)
    c = ImageStatReward("contrast", "maximize")
    assert c(checker) > c(grey)
    with pytest.raises(RewardError):
        ImageStatReward("hue")


def test_colour_reward_and_parsing():
    assert parse_color("#ff8000") == pytest.approx((1.0, 128 / 255, 0.0))
    assert parse_color("255, 0, 0") == (1.0, 0.0, 0.0)
    assert parse_color("0.5,0.5,0.5") == (0.5, 0.5, 0.5)
    with pytest.raises(RewardError):
        parse_color("#12")
    assert parse_color("0, 0, 255") == (0.0, 0.0, 1.0) and parse_color("#00FF00") == (0.0, 1.0, 0.0)


@pytest.mark.parametrize("color", ["#zzzzzz", "#ff880", "#ff88000", "nan,0,0", "inf,0,0", "-1,0,0", "300,0,0",
                                   "1,2", "1,2,3,4", "red", "", "#"])
def test_colour_parsing_refuses_bad_input_naming_the_input_and_the_forms(color):
    with pytest.raises(RewardError, match=r"input 'color'.*#rrggbb.*r,g,b"):
        parse_color(color)
    red = torch.zeros(1, 4, 4, 3)
    red[..., 0] = 1
    blue = torch.zeros(1, 4, 4, 3)
    blue[..., 2] = 1
    r = ColorReward("#ff0000")
    assert r(red).item() == pytest.approx(0.0, abs=1e-5) and r(red) > r(blue)
    assert r(blue).item() >= -1.0
    half = torch.cat([red[:, :2], blue[:, 2:]], 1)  # mean colour (0.5, 0, 0.5), per-pixel distance sqrt(2)/2 avg
    assert ColorReward("#ff0000", per_pixel=True)(half) < r(half)


@pytest.mark.parametrize("reward", [ImageStatReward("brightness", "target", 0.3),
                                    ImageStatReward("saturation", "maximize"), ImageStatReward("contrast", "maximize"),
                                    ColorReward("#336699"), ColorReward("#336699", per_pixel=True)],
                         ids=lambda r: r.name)
def test_weight_free_finite_difference(reward):
    x = (_img(2, 6, 5).double() * 0.8 + 0.1).requires_grad_(True)
    reward(x).sum().backward()
    v = torch.randn_like(x)
    eps = 1e-6
    with torch.no_grad():
        fd = (reward(x + eps * v).sum() - reward(x - eps * v).sum()) / (2 * eps)
    assert float((x.grad * v).sum()) == pytest.approx(float(fd), rel=1e-4, abs=1e-8)


def test_load_reward_unknown_kind_and_batch_equals_single():
    with pytest.raises(RewardError, match="unknown reward kind"):
        rewards.load_reward("nope", "/x")
    r = rewards.load_reward("saturation", mode="maximize")
    x = _img(3)
    torch.testing.assert_close(r(x), torch.cat([r(x[i:i + 1]) for i in range(3)]))


# ------------------------------------------------------------------------------------------------ folders / errors
def test_missing_folder_error_names_layout_and_source(tmp_path):
    for kind, loader in [("clip_score", "clip"), ("aesthetic", "aesthetic"), ("imagereward", "imagereward"),
                         ("hpsv2", "hpsv2"), ("counting", "counting"), ("vqascore", "vqascore")]:
        with pytest.raises(RewardError) as e:
            rewards.load_reward(kind, tmp_path / "nope", **({"classes": "a", "counts": "1"} if kind == "counting"
                                                             else {}))
        msg = str(e.value)
        assert "not found" in msg and LAYOUTS[loader][1].split()[0] in msg and "nothing is downloaded" in msg


def test_malformed_folder_error_names_missing_file(tmp_path):
    d = tmp_path / "clip"
    d.mkdir()
    (d / "config.json").write_text("{}")
    with pytest.raises(RewardError, match="missing model.safetensors or .*huggingface.co/openai/clip-vit-large"):
        rewards.load_reward("clip_score", d)
    (d / "ImageReward.pt").write_text("x")
    with pytest.raises(RewardError, match="med_config.json"):
        rewards.load_reward("imagereward", d)


def test_list_reward_folders(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text("{}")
    (tmp_path / "ir").mkdir()
    (tmp_path / "ir" / "ImageReward.pt").write_text("")
    (tmp_path / "group" / "b").mkdir(parents=True)
    (tmp_path / "group" / "b" / "model.safetensors").write_text("")
    (tmp_path / "empty").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "config.json").write_text("{}")
    (tmp_path / "file.txt").write_text("")
    assert list_reward_folders([tmp_path, tmp_path / "missing"]) == ["a", "group/b", "ir"]


def test_parse_dtype():
    assert parse_dtype("auto", torch.device("cpu")) == torch.float32
    assert parse_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(RewardError):
        parse_dtype("int8", torch.device("cpu"))


def test_load_state_dict_plain_and_wrapped(tmp_path):
    sd = {"a": torch.ones(2), "module.b": torch.zeros(1)}
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "x.pt")
    out = load_state_dict(tmp_path / "x.pt")
    assert set(out) == {"a", "b"}
    torch.save([1, 2], tmp_path / "bad.pt")
    with pytest.raises(RewardError):
        load_state_dict(tmp_path / "bad.pt")


def test_reward_error_is_a_value_error():
    """Bad input is a ValueError (house rule); still a RuntimeError for callers that caught that."""
    assert issubclass(RewardError, ValueError) and issubclass(RewardError, RuntimeError)


def test_interrupt_check_runs_before_every_minibatch():
    """The host's check runs once per minibatch, before it is scored: raising there stops the scoring."""
    seen = []

    class Stop(Exception):
        pass

    r = ImageStatReward("brightness", "maximize", batch_size=2)
    r.check_interrupt = lambda: seen.append(len(seen))
    r(_img(5, 4, 4))
    assert seen == [0, 1, 2]  # ceil(5 / 2) minibatches
    scored = []
    orig = r._score

    def score(x, prompts, **kw):
        scored.append(x.shape[0])
        return orig(x, prompts, **kw)

    def stop_after_first():
        if scored:
            raise Stop
    r._score, r.check_interrupt = score, stop_after_first
    with pytest.raises(Stop):
        r(_img(5, 4, 4))
    assert scored == [2]


# ------------------------------------------------------------------------------------------------ counting maths
def test_parse_targets():
    assert parse_targets("airplanes, camels", "6, 7") == (["airplanes", "camels"], [6, 7])
    assert parse_targets(["cat."], [2.0]) == (["cat"], [2])
    with pytest.raises(RewardError, match="2 class names"):
        parse_targets("a, b", "1")
    with pytest.raises(RewardError):
        parse_targets("a, A", "1, 2")
    with pytest.raises(RewardError):
        parse_targets("a", "x")
    assert parse_targets("a, b", "0, 99")[1] == [0, 99]  # the ends of the range are counts


@pytest.mark.parametrize("counts", ["-2", "1e9", "2.6", "100", "nan", "inf", "two", "-0.5"])
def test_parse_targets_refuses_non_counts(counts):
    """Negative, too large, fractional or non-numeric counts are refused (never rounded), naming 'counts'."""
    with pytest.raises(RewardError, match=r"input 'counts'.*whole number from 0 to 99"):
        parse_targets("cats", counts)


def test_filter_relative_keeps_per_class_rule():
    # class 0: max 0.9 -> keep > 0.54 or > 0.32 ; class 1: max 0.25 -> keep > 0.15 (all under 0.32)
    det = Detections(torch.zeros(7, 4), torch.tensor([0.9, 0.5, 0.3, 0.25, 0.2, 0.1, 0.99]),
                     torch.tensor([0, 0, 0, 1, 1, 1, -1]))
    out = filter_relative(det, 2)
    assert out.scores.tolist() == pytest.approx([0.9, 0.5, 0.25, 0.2])
    assert out.labels.tolist() == [0, 0, 1, 1]


def test_rss_and_soft_counts():
    assert rss([2, 3], [2, 5]).item() == 4.0
    assert rss(torch.tensor([[0, 0], [1, 1]]), [1, 1]).tolist() == [2.0, 0.0]
    p = torch.tensor([[[0.9, 0.0], [0.9, 0.0], [0.0, 0.01]]])
    sc = soft_counts(p, threshold=0.2, temperature=0.01)
    assert sc[0].tolist() == pytest.approx([2.0, 0.0], abs=1e-3)


def _box(x0, y0, x1, y1):
    return [float(x0), float(y0), float(x1), float(y1)]


def test_dedup_intra_class_nested_boxes():
    """A big box containing two small ones: the small ones are visited first, the big one adds < 50 % new pixels."""
    boxes = torch.tensor([_box(0, 0, 20, 10), _box(0, 0, 10, 10), _box(10, 0, 20, 10)])
    masks = box_masks(boxes, 10, 20)
    counts, counted = dedup_count(masks, torch.tensor([0.9, 0.5, 0.6]), torch.tensor([0, 0, 0]), 1)
    assert counts.tolist() == [2] and counted.tolist() == [False, True, True]


def test_dedup_duplicates_and_distinct_objects():
    boxes = torch.tensor([_box(0, 0, 10, 10), _box(1, 0, 11, 10), _box(20, 0, 30, 10), _box(40, 0, 50, 10)])
    masks = box_masks(boxes, 10, 60)
    counts, _ = dedup_count(masks, torch.tensor([0.8, 0.7, 0.6, 0.5]), torch.tensor([0, 0, 0, 1]), 2)
    assert counts.tolist() == [2, 1]  # the 90 %-overlapping twin is dropped


def test_dedup_cross_class_keeps_higher_score():
    """The same object detected as two classes counts once, for the higher-scoring class."""
    boxes = torch.tensor([_box(0, 0, 10, 10), _box(0, 0, 10, 10), _box(30, 0, 40, 10)])
    masks = box_masks(boxes, 10, 40)
    counts, counted = dedup_count(masks, torch.tensor([0.4, 0.7, 0.5]), torch.tensor([0, 1, 0]), 2)
    assert counts.tolist() == [1, 1] and counted.tolist() == [False, True, True]
    # partial overlap < 50 %: both count
    boxes = torch.tensor([_box(0, 0, 10, 10), _box(6, 0, 16, 10)])
    counts, _ = dedup_count(box_masks(boxes, 10, 20), torch.tensor([0.4, 0.7]), torch.tensor([0, 1]), 2)
    assert counts.tolist() == [1, 1]


def test_dedup_empty_and_zero_area():
    counts, counted = dedup_count(torch.zeros(0, 4, 4, dtype=torch.bool), torch.zeros(0),
                                  torch.zeros(0, dtype=torch.long), 3)
    assert counts.tolist() == [0, 0, 0] and counted.numel() == 0
    counts, _ = dedup_count(box_masks(torch.tensor([_box(2, 2, 2, 2)]), 4, 4) & False, torch.tensor([0.9]),
                            torch.tensor([0]), 1)
    assert counts.tolist() == [0]


@pytest.mark.parametrize("prompt, expected", [
    ("Six airplanes flying over a desert with seven camels walking below", {"airplanes": 6, "camels": 7}),
    ("six red airplanes and 3 blue cars.", {"red airplanes": 6, "blue cars": 3}),
    ("Two sleeping cats, one dog running in the garden", {"sleeping cats": 2, "dog": 1}),
    ("five people standing near four children playing", {"people": 5, "children": 4}),
    ("three dogs on the left and two dogs on the right", {"dogs": 5}),
    ("twelve apples; 20 oranges", {"apples": 12, "oranges": 20}),
])
def test_counts_in_prompt(prompt, expected):
    assert counts_in_prompt(prompt) == expected


@pytest.mark.parametrize("prompt", ["a photo of a cat", "one of the 1990 cars at 1024px", "twenty-one birds", "", None])
def test_counts_in_prompt_no_false_counts(prompt):
    """'a'/'an', years, sizes, 'one of' and unsupported compounds are not counts."""
    assert counts_in_prompt(prompt) == {}


def test_targets_from_prompt_and_the_error_that_names_the_fix():
    assert targets_from_prompt("Six airplanes and seven camels") == (["airplanes", "camels"], [6, 7])
    with pytest.raises(RewardError, match="Fill in class_names and counts, or write counts in the prompt like "
                                          "'six airplanes and seven camels'") as e:
        targets_from_prompt("a cat on a mat")
    assert "'a cat on a mat'" in str(e.value)
    with pytest.raises(RewardError, match="the prompt is empty"):
        targets_from_prompt("  ")


class CharTok:
    """Whitespace tokenizer with a fixed vocabulary: decode joins tokens with spaces."""

    def __init__(self, words):
        self.vocab = ["[CLS]", "[SEP]", "."] + words
        self.ids = {w: i for i, w in enumerate(self.vocab)}

    def decode(self, ids):
        return " ".join(self.vocab[i] for i in ids)


def test_grounded_detections_exact_phrase_matching_and_thresholds():
    tok = CharTok(["airplanes", "camels", "blue"])
    # caption "[CLS] airplanes . camels . [SEP]" -> ids positions 0..5
    ids = [0, 3, 2, 4, 2, 1]
    t = 8  # logits padded beyond the caption (prob 0 there)
    probs = torch.zeros(5, t)
    probs[0, 1] = 0.5   # "airplanes" -> class 0
    probs[1, 3] = 0.45  # "camels" -> class 1
    probs[2, 1] = 0.5
    probs[2, 3] = 0.3   # "airplanes camels" -> no exact match: dropped
    probs[3, 1] = 0.15  # below box threshold: dropped
    probs[4, 3] = 0.5
    probs[4, 2] = 0.25  # ". camels" -> no match: dropped
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.2]] * 5)
    det = grounded_detections(probs, boxes, ids, tok, ["airplanes", "camels"], 0.2, 0.2, (100, 200))
    assert det.labels.tolist() == [0, 1]
    assert det.scores.tolist() == pytest.approx([0.5, 0.45])
    assert det.boxes[0].tolist() == pytest.approx([80.0, 40.0, 120.0, 60.0])
    # the first and last logit positions never enter a phrase (transformers' rule)
    probs2 = torch.zeros(1, 6)
    probs2[0, 0] = 0.9
    probs2[0, 1] = 0.5
    probs2[0, 5] = 0.9
    det = grounded_detections(probs2, boxes[:1], ids, tok, ["airplanes", "camels"], 0.2, 0.2, (10, 10))
    assert det.labels.tolist() == [0]


# ------------------------------------------------------------------------------------------------ converters
def test_open_clip_converter_splits_qkv_and_transposes():
    from rewards.clip_rewards import convert_open_clip

    d = 4
    in_w = torch.arange(3 * d * d, dtype=torch.float32).view(3 * d, d)
    sd = {"visual.transformer.resblocks.0.attn.in_proj_weight": in_w,
          "visual.transformer.resblocks.0.attn.in_proj_bias": torch.arange(3 * d, dtype=torch.float32),
          "transformer.resblocks.1.ln_1.weight": torch.ones(d), "visual.proj": torch.arange(8.).view(d, 2),
          "text_projection": torch.arange(8.).view(d, 2), "logit_scale": torch.tensor(4.6),
          "visual.conv1.weight": torch.zeros(d, 3, 2, 2), "attn_mask": torch.zeros(2, 2)}
    out = convert_open_clip(sd)
    pre = "vision_model.encoder.layers.0.self_attn."
    torch.testing.assert_close(out[pre + "q_proj.weight"], in_w[:d])
    torch.testing.assert_close(out[pre + "v_proj.weight"], in_w[2 * d:])
    torch.testing.assert_close(out[pre + "k_proj.bias"], torch.arange(d, 2 * d, dtype=torch.float32))
    assert "text_model.encoder.layers.1.layer_norm1.weight" in out
    torch.testing.assert_close(out["visual_projection.weight"], sd["visual.proj"].t())
    assert out["text_projection.weight"].shape == (2, d)
    assert "vision_model.embeddings.patch_embedding.weight" in out and "attn_mask" not in out
    with pytest.raises(RewardError, match="unexpected OpenCLIP key"):
        convert_open_clip({"visual.trunk.x": torch.zeros(1)})


def test_imagereward_converter_names():
    from rewards.imagereward import convert_imagereward

    sd = {"blip.visual_encoder.cls_token": torch.zeros(1, 1, 8), "blip.visual_encoder.pos_embed": torch.zeros(1, 5, 8),
          "blip.visual_encoder.patch_embed.proj.weight": torch.zeros(8, 3, 2, 2),
          "blip.visual_encoder.blocks.0.attn.qkv.weight": torch.zeros(24, 8),
          "blip.visual_encoder.blocks.0.attn.proj.bias": torch.zeros(8),
          "blip.visual_encoder.blocks.0.norm2.weight": torch.zeros(8),
          "blip.visual_encoder.norm.bias": torch.zeros(8),
          "blip.text_encoder.encoder.layer.0.crossattention.self.key.weight": torch.zeros(8, 8),
          "blip.text_encoder.embeddings.position_ids": torch.zeros(1, 4),
          "blip.vision_proj.weight": torch.zeros(2, 8), "mlp.layers.0.weight": torch.zeros(4, 8)}
    vis, txt, mlp = convert_imagereward(sd)
    assert set(vis) == {"embeddings.class_embedding", "embeddings.position_embedding",
                        "embeddings.patch_embedding.weight", "encoder.layers.0.self_attn.qkv.weight",
                        "encoder.layers.0.self_attn.projection.bias", "encoder.layers.0.layer_norm2.weight",
                        "post_layernorm.bias"}
    assert set(txt) == {"encoder.layer.0.crossattention.self.key.weight"} and set(mlp) == {"layers.0.weight"}
    with pytest.raises(RewardError):
        convert_imagereward({"mlp.layers.0.weight": torch.zeros(1)})


def test_describe_is_json_serialisable():
    c = CompositeReward([(JpegReward(), 1.0), (ColorReward(), 2.0)])
    assert json.loads(json.dumps(c.describe()))["normalize"] == "range"
    assert math.isfinite(c(_img(1)).item())



def test_count_objects_check_prompt_names_the_prompt():
    from rewards.count_objects import CountObjectsReward

    r = CountObjectsReward()
    r.check_prompt("three red squares and two blue crosses")
    with pytest.raises(RewardError, match=r"\(the prompt\): the caption is 600 characters"):
        r.check_prompt("x" * 600)
    with pytest.raises(RewardError, match=r"\(input 'targets'\)"):
        CountObjectsReward(targets="² red squares")
