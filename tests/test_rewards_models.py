"""Every reward family through the real loading code on tiny random models in the users' folder layouts
(tests/fixtures/tiny_rewards.py), offline: loads, batch == one by one, finite scores of the right shape,
gradients (non-zero, finite-difference agreement), checkpoint converters against the HF-format originals, and the
scores against transformers' own loss / processors."""
import os
import sys
from pathlib import Path

import pytest
import torch

tf = pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import tiny_rewards  # noqa: E402

import rewards  # noqa: E402
from rewards import RewardError  # noqa: E402

tf.utils.logging.set_verbosity_error()
tf.utils.logging.disable_progress_bar()

PROMPTS = ["a photo of two red cats on a table", "a blue car", "a photo of two red cats on a table"]

#: id -> (kind, folder, options, prompt needed)
FAMILIES = {
    "clip_score": ("clip_score", "tiny-clip", {}),
    "pickscore": ("pickscore", "tiny-clip", {}),
    "hpsv2": ("hpsv2", "tiny-hpsv2", {}),
    "aesthetic": ("aesthetic", "tiny-aesthetic", {}),
    "imagereward": ("imagereward", "tiny-imagereward", {}),
    "vqa_clip_flant5": ("vqascore", "tiny-clip-flant5", {}),
    "vqa_blip2": ("vqascore", "tiny-blip2-flant5", {}),
    "vqa_instructblip": ("vqascore", "tiny-instructblip-flant5", {}),
    "vqa_qwen2_5_vl": ("vqascore", "tiny-qwen2.5-vl", {}),
    "vqa_qwen2_5_vl_lite": ("vqascore", "tiny-qwen2.5-vl", {"lite_processor": True}),
    "vqa_llava": ("vqascore", "tiny-llava", {}),
    "count_gdino": ("counting", "tiny-grounding-dino", {"classes": "cats, dogs", "counts": "2, 1"}),
    "count_gdino_sam": ("counting", "tiny-grounding-dino", {"classes": "cats, dogs", "counts": "2, 1",
                                                            "sam": "tiny-sam"}),
    "count_owlv2": ("counting", "tiny-owlv2", {"classes": "cat, dog", "counts": "2, 1", "box_threshold": 0.1}),
    "count_owlv2_sam": ("counting", "tiny-owlv2", {"classes": "cat, dog", "counts": "2, 1", "box_threshold": 0.1,
                                                   "sam": "tiny-sam"}),
}


@pytest.fixture(scope="module")
def tiny():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    return tiny_rewards.tiny_rewards_dir()


_LOADED = {}


def load(tiny, fid, **over):
    kind, folder, opts = FAMILIES[fid]
    opts = dict(opts, **over)
    if "sam" in opts:
        opts["sam_path"] = tiny / opts.pop("sam")
    key = (fid, tuple(sorted((k, str(v)) for k, v in over.items())))
    if key not in _LOADED:
        _LOADED[key] = rewards.load_reward(kind, tiny / folder, **opts)
    return _LOADED[key]


def images(b=3, h=48, w=64, seed=0):
    return torch.rand(b, h, w, 3, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("fid", list(FAMILIES))
def test_loads_scores_batch_equals_single(tiny, fid):
    r = load(tiny, fid, batch_size=2)  # 3 images -> minibatches of 2 and 1
    x = images()
    prompts = PROMPTS if r.needs_prompt else None
    s = r(x, prompts)
    assert s.shape == (3,) and s.dtype == torch.float32 and torch.isfinite(s).all()
    single = torch.cat([r(x[i:i + 1], prompts[i] if prompts else None) for i in range(3)])
    torch.testing.assert_close(s, single, rtol=1e-4, atol=1e-5)
    # different images/prompts give different scores (CLIP score clamps negative cosines of a random model to 0)
    assert s[0] != s[1] or r.needs_counts or (fid == "clip_score" and s[0] == 0)
    if r.needs_prompt:
        with pytest.raises(RewardError, match="needs a text prompt"):
            r(x)
    if fid.startswith("vqa"):
        assert ((s > 0) & (s < 1)).all()
    if r.needs_counts:
        assert not r.differentiable and (s <= 0).all() and torch.equal(s, s.round())
        assert set(r.last_details[0]["counts"]) == set(r.classes)


DIFFERENTIABLE = ["clip_score", "pickscore", "hpsv2", "aesthetic", "imagereward", "vqa_clip_flant5", "vqa_blip2",
                  "vqa_instructblip", "vqa_qwen2_5_vl", "vqa_llava", "count_gdino", "count_owlv2"]


@pytest.mark.parametrize("fid", DIFFERENTIABLE)
def test_gradient_nonzero_and_matches_finite_differences(tiny, fid):
    """float64 copies of the tiny models; directional derivative vs central differences.

    transformers keeps some internals in float32 even in a float64 model (T5/Qwen RMS norms, rotary tables), and
    Grounding DINO selects its queries with a top-k (a step function of the image), so no single step size fits
    every model: the analytic derivative must agree within 2 % with the central difference at one of the steps
    1e-2 ... 1e-6 (a wrong gradient agrees at none)."""
    if int(tf.__version__.split(".")[0]) < 5 and fid in ("clip_score", "pickscore", "hpsv2", "count_owlv2"):
        pytest.skip("transformers 4.x's CLIP text encoder cannot run in float64 (its causal mask overflows)")
    r = load(tiny, fid, dtype=torch.float64).to(dtype=torch.float64)  # also the modules kept in fp32 by transformers
    r = r.surrogate()  # counting: the soft-count surrogate; others: themselves
    assert r is not None and r.differentiable
    # smooth images in [0.1, 0.9]: the 8-bit-like clamp after bicubic resampling stays inactive
    x = torch.nn.functional.interpolate(images(2, 8, 10, seed=1).permute(0, 3, 1, 2), size=(40, 56), mode="bilinear")
    x = x.permute(0, 2, 3, 1).double().mul(0.8).add(0.1).contiguous().requires_grad_(True)
    prompts = PROMPTS[:2] if r.needs_prompt else None
    s = r(x, prompts)
    assert s.dtype == torch.float64
    s.sum().backward()
    g = x.grad
    if fid == "clip_score" and (s == 0).any():  # 100 * max(cos, 0): a random model may give cos < 0 (version-dependent)
        assert torch.equal(g[s == 0], torch.zeros_like(g[s == 0]))
        pytest.skip("random tiny CLIP gives cos < 0 here; PickScore/HPSv2 cover the same path without the clamp")
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert (g[0].abs().sum() > 0) and (g[1].abs().sum() > 0)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    an = float((g * v).sum())
    errs = {}
    with torch.no_grad():
        for eps in (1e-2, 3e-3, 1e-3, 1e-4, 1e-5, 1e-6):
            fd = float((r(x + eps * v, prompts).sum() - r(x - eps * v, prompts).sum()) / (2 * eps))
            errs[eps] = abs(fd - an) / max(abs(fd), abs(an))
    assert min(errs.values()) < 2e-2, errs


def test_counting_hard_is_not_differentiable_but_surrogate_is(tiny):
    r = load(tiny, "count_owlv2")
    assert not r.differentiable and r.needs_counts and not r.needs_prompt
    soft = r.surrogate()
    assert soft.differentiable and soft.net is r.net and "soft" in soft.name
    assert r.describe()["classes"] == ["cat", "dog"]
    x = images(2).requires_grad_(True)
    assert not r(x).requires_grad
    # per-call targets override
    s = r(images(1), counts=[0, 0])
    assert s.item() == -sum(v ** 2 for v in r.last_details[0]["counts"].values())


def test_counting_with_empty_targets_reads_them_from_the_prompt(tiny):
    """class_names and counts empty: each prompt's counts are the targets; details() says so."""
    r = load(tiny, "count_gdino", classes="", counts="")
    fixed = load(tiny, "count_gdino")  # classes "cats, dogs", counts "2, 1"
    assert r.needs_prompt and r.describe()["targets_from_prompt"]
    prompts = ["Six airplanes flying over a desert with seven camels walking below", "two cats and one dogs",
               "Six airplanes flying over a desert with seven camels walking below"]
    x = images()
    s = r(x, prompts)
    assert [d["targets"] for d in r.last_details] == [{"airplanes": 6, "camels": 7}, {"cats": 2, "dogs": 1},
                                                      {"airplanes": 6, "camels": 7}]
    for score, d in zip(s.tolist(), r.last_details):
        assert score == -sum((d["counts"][c] - n) ** 2 for c, n in d["targets"].items())
    # the same scores as a reward loaded with those targets
    torch.testing.assert_close(s[1:2], fixed(x[1:2]))
    rows = r.details(x[:1], prompts[0])
    assert rows[0]["parsed_from_prompt"] and rows[0]["targets"] == {"airplanes": 6, "camels": 7}
    assert set(rows[0]["counts"]) == {"airplanes", "camels"} and rows[0]["exact"] == (rows[0]["rss"] == 0)
    assert not fixed.details(x[:1])[0]["parsed_from_prompt"]
    with pytest.raises(RewardError, match="needs a text prompt"):
        r(x)
    with pytest.raises(RewardError, match="Fill in class_names and counts, or write counts in the prompt"):
        r(x, "a photo of a cat")
    with pytest.raises(RewardError, match="counts is empty. Fill in both"):
        rewards.load_reward("counting", tiny / "tiny-grounding-dino", classes="cats", counts="")


# ------------------------------------------------------------------------------------------------ converters
def test_hpsv2_open_clip_checkpoint_matches_hf_original(tiny):
    """HPS_v2.1_compressed.pt (OpenCLIP names, fp16) -> CLIPModel: equals the HF original with fp16-rounded weights."""
    r = rewards.load_reward("hpsv2", tiny / "tiny-hpsv2")
    ref = tf.CLIPModel.from_pretrained(tiny / ".ref" / "tiny-hpsv2-hf", local_files_only=True).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(p.half().float())
        x = images(2)
        pv = rewards.preprocess.clip_pixels(x.permute(0, 3, 1, 2), 224)
        tok = r.tokenizer(PROMPTS[:2], padding=True, return_tensors="pt")
        o = ref(pixel_values=pv, **tok)
        ie = o.image_embeds / o.image_embeds.norm(dim=-1, keepdim=True)
        te = o.text_embeds / o.text_embeds.norm(dim=-1, keepdim=True)
        torch.testing.assert_close(r(x, PROMPTS[:2]), (ie * te).sum(-1), rtol=1e-4, atol=1e-5)


def test_imagereward_checkpoint_matches_hf_blip(tiny):
    """ImageReward.pt (BLIP-repo names) -> BlipVisionModel + BlipTextModel: equals BlipForImageTextRetrieval's
    vision_model + text_encoder with the same weights, then the MLP and ImageReward's normalisation."""
    from rewards.clip_rewards import AestheticMLP
    from rewards.imagereward import IR_MEAN, IR_STD

    r = rewards.load_reward("imagereward", tiny / "tiny-imagereward")
    ref_dir = tiny / ".ref" / "tiny-imagereward-hf"
    ref = tf.BlipForImageTextRetrieval.from_pretrained(ref_dir, local_files_only=True).eval()
    head = AestheticMLP.from_state_dict(torch.load(ref_dir / "mlp_head.pth"))
    x = images(2)
    with torch.no_grad():
        img = ref.vision_model(pixel_values=rewards.preprocess.clip_pixels(x.permute(0, 3, 1, 2), 224)).last_hidden_state
        tok = r.tokenizer(PROMPTS[:2], padding="max_length", truncation=True, max_length=35, return_tensors="pt")
        t = ref.text_encoder(input_ids=tok.input_ids, attention_mask=tok.attention_mask, encoder_hidden_states=img,
                             encoder_attention_mask=torch.ones(img.shape[:-1], dtype=torch.long)).last_hidden_state
        expect = (head(t[:, 0]).squeeze(-1) - IR_MEAN) / IR_STD
    torch.testing.assert_close(r(x, PROMPTS[:2]), expect, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------ score definitions
def test_encoder_decoder_vqascore_equals_exp_minus_hf_loss(tiny):
    """For one image, exp(-mean CE of '▁Yes </s>') == exp(-loss) as transformers computes it."""
    x = images(1)
    for fid in ("vqa_blip2", "vqa_instructblip"):
        r = load(tiny, fid)
        enc = dict(r._text_inputs(PROMPTS[0]))
        labels = enc.pop("labels")
        with torch.no_grad():
            loss = r.net["model"](pixel_values=r.pixels(x.permute(0, 3, 1, 2)), labels=labels, **enc).loss
        assert r(x, PROMPTS[0]).item() == pytest.approx(torch.exp(-loss).item(), rel=1e-5)
        assert r.processor.tokenizer.convert_ids_to_tokens(labels[0].tolist()) == ["▁yes", "</s>"]


def test_clip_flant5_layout_pad_and_prompt(tiny):
    r = load(tiny, "vqa_clip_flant5")
    a, b, ans = r._text_ids("a cat")
    tok = r.tokenizer
    assert tok.decode(a).startswith("A chat between") and tok.convert_ids_to_tokens(a)[-1] == "</s>"
    assert "Does this figure show" in tok.decode(b) and tok.decode(b).rstrip("</s> ").endswith("ASSISTANT:")
    assert tok.convert_ids_to_tokens(ans) == ["▁Yes", "</s>"]
    # non-square input == the same image padded to a square with int(mean*255)/255 by hand
    x = images(1, 30, 50)
    fill = torch.tensor([int(m * 255) / 255 for m in r.geometry["mean"]]).view(1, 1, 1, 3)
    sq = fill.expand(1, 50, 50, 3).clone()
    sq[:, 10:40] = x
    torch.testing.assert_close(r(x, "a cat"), r(sq, "a cat"), rtol=1e-5, atol=1e-7)
    # one image: exp(-loss) from T5 itself on the spliced embeddings
    with torch.no_grad():
        t5 = r.net["t5"]
        emb = t5.get_input_embeddings()
        img = r.image_features(x.permute(0, 3, 1, 2))
        e = torch.cat([emb(torch.tensor([a])), img, emb(torch.tensor([b]))], 1)
        loss = t5(inputs_embeds=e, labels=torch.tensor([ans])).loss
    assert r(x, "a cat").item() == pytest.approx(torch.exp(-loss).item(), rel=1e-5)
    assert img.shape[1] == (r.geometry["size"] // 14) ** 2  # patch tokens, CLS dropped


def test_qwen_twin_matches_real_processor_score(tiny):
    """Qwen2.5-VL: torch pixels vs the real processor on the 8-bit image give the same P('Yes') (8-bit tolerance)."""
    from PIL import Image

    r = load(tiny, "vqa_qwen2_5_vl")
    x = (images(1, 56, 84) * 255).round() / 255
    pil = Image.fromarray((x[0] * 255).round().to(torch.uint8).numpy())
    enc = r.processor(images=[pil], text=[r._chat("a cat")], return_tensors="pt")
    with torch.no_grad():
        ref = torch.softmax(r.net["model"](**enc).logits[:, -1].float(), -1)[:, r.answer_id]
    assert r(x, "a cat").item() == pytest.approx(ref.item(), rel=1e-2)


def test_grounding_dino_phrases_match_transformers_postprocess(tiny):
    from rewards.counting import grounded_phrases

    r = load(tiny, "count_gdino")
    x = images(1)
    with torch.no_grad():
        _, _, (probs, boxes) = r.forward_detector(x.permute(0, 3, 1, 2))
    ids = r._text["input_ids"]
    proc = tf.AutoProcessor.from_pretrained(tiny / "tiny-grounding-dino", local_files_only=True)
    q = probs[0].max(-1).values
    box_thr = float(q.median())
    tok_p = probs[0][q > box_thr]
    text_thr = float(tok_p[tok_p > 0].median())

    class Out:
        logits = torch.logit(probs.clamp(1e-12, 1 - 1e-7))
        pred_boxes = boxes

    ref = proc.post_process_grounded_object_detection(Out, ids, threshold=box_thr, text_threshold=text_thr,
                                                      target_sizes=[(48, 64)])[0]
    keep, phrases = grounded_phrases(probs[0], ids[0].tolist(), r.tokenizer, box_thr, text_thr)
    assert len(phrases) == len(ref["scores"]) > 0
    assert phrases == list(ref["text_labels"] if "text_labels" in ref else ref["labels"])
    torch.testing.assert_close(probs[0, keep].max(-1).values, ref["scores"])
    assert r.phrases == ["cats", "dogs"] and r.caption == "cats. dogs."


def test_sam_masks_match_processor_postprocess(tiny):
    r = load(tiny, "count_owlv2_sam")
    x = images(1, 48, 64).permute(0, 3, 1, 2)
    from rewards.counting import Detections

    det = Detections(torch.tensor([[4.0, 6.0, 30.0, 40.0], [20.0, 10.0, 60.0, 44.0]]), torch.tensor([0.9, 0.8]),
                     torch.tensor([0, 1]))
    mine = r.masks_for(x, det)
    proc = tf.SamProcessor.from_pretrained(tiny / "tiny-sam", local_files_only=True)
    g = r.sam_geometry
    from rewards.preprocess import sam_pixels

    pv, (rh, rw) = sam_pixels(x, g["longest"], g["pad"], g["mean"], g["std"])
    with torch.no_grad():
        out = r.net["sam"](pixel_values=pv, input_boxes=(det.boxes * g["longest"] / 64).unsqueeze(0),
                           multimask_output=True)
    ref = proc.post_process_masks(out.pred_masks, torch.tensor([[48, 64]]), torch.tensor([[rh, rw]]))[0]
    assert torch.equal(mine, ref.any(1))


# ------------------------------------------------------------------------------------------------ errors
def test_wrong_family_and_bad_inputs(tiny):
    with pytest.raises(RewardError, match="Grounding DINO or OWLv2"):
        rewards.load_reward("counting", tiny / "tiny-clip", classes="a", counts="1")
    with pytest.raises(RewardError, match="no aesthetic head"):
        rewards.load_reward("aesthetic", tiny / "tiny-clip")
    with pytest.raises(RewardError, match="2 class names"):
        rewards.load_reward("counting", tiny / "tiny-owlv2", classes="a, b", counts="1")
    with pytest.raises(RewardError, match="input 'question'.*exactly one {}"):
        rewards.load_reward("vqascore", tiny / "tiny-blip2-flant5", question="no placeholder")


@pytest.mark.parametrize("question", ["{} {oops}", "{} {0}", "{0}", "{:>10}", "{!r}", "{", "}"])
def test_vqascore_question_template_refused_at_load(tiny, question):
    with pytest.raises(RewardError, match="input 'question'"):
        rewards.load_reward("vqascore", tiny / "tiny-clip-flant5", question=question)


def test_vqascore_question_template_literal_braces_allowed(tiny):
    r = rewards.load_reward("vqascore", tiny / "tiny-clip-flant5", question='{{"caption"}}: does it show {}?')
    assert 0 < float(r(images(1), "a cat")) < 1


@pytest.mark.parametrize("fid, limit", [("tiny-clip-flant5", 512), ("tiny-blip2-flant5", 512),
                                        ("tiny-instructblip-flant5", 512), ("tiny-qwen2.5-vl", 512),
                                        ("tiny-llava", 256)])
def test_vqascore_prompt_length_limit_every_backend(tiny, fid, limit):
    """The limit is the model's (llava: 256 LM positions) capped at 512; a prompt just inside scores, one token's worth
    of words over it is refused, naming the prompt and the fix."""
    r = rewards.load_reward("vqascore", tiny / fid)
    assert r.max_prompt_tokens() == limit
    tok = r.text_tokenizer()
    n_q = len(tok(r.question.format(""), add_special_tokens=False)["input_ids"])
    words, n = [], n_q
    while n <= limit:  # grow the prompt until its question crosses the limit
        words.append("cat")
        n = len(tok(r.question.format(" ".join(words)), add_special_tokens=False)["input_ids"])
    inside, over = " ".join(words[:-1]), " ".join(words)
    assert 0 <= float(r(images(1), inside)) <= 1
    with pytest.raises(RewardError, match=rf"prompt is too long \({n} tokens.*at most {limit} tokens.*shorten"):
        r(images(1), over)


def test_vqascore_huge_prompt_refused_before_tokenizing(tiny):
    r = rewards.load_reward("vqascore", tiny / "tiny-clip-flant5")
    calls = []
    real = r.tokenizer.__call__

    class Counting:
        model_max_length = r.tokenizer.model_max_length

        def __call__(self, *a, **k):
            calls.append(a)
            return real(*a, **k)

    r.tokenizer = Counting()
    r(images(1), "a cat")  # the first prompt also checks the template once
    calls.clear()
    with pytest.raises(RewardError, match="120000 characters"):
        r(images(1), "x" * 120_000)
    assert calls == []


def test_counting_sam_folder_must_hold_sam(tiny):
    with pytest.raises(RewardError, match="input 'sam'.*'clip' model.*SamModel"):
        rewards.load_reward("counting", tiny / "tiny-owlv2", classes="cat", counts="1", sam_path=tiny / "tiny-clip")
    r = rewards.load_reward("counting", tiny / "tiny-owlv2", classes="cat", counts="1", sam_path=tiny / "tiny-sam")
    assert "sam" in r.net


def test_counting_class_names_must_fit_the_dino_caption(tiny):
    """tiny-grounding-dino reads 64 text tokens: classes that fit load, one more that overflows is refused at load;
    prompt-read classes that overflow are refused when scored, naming the prompt."""
    names = []
    while True:
        names.append(f"cat{len(names)}")
        caption = "".join(f"{c}. " for c in names).strip()
        if len(tiny_tok(tiny)(caption)["input_ids"]) > 64:
            break
    ok = rewards.load_reward("counting", tiny / "tiny-grounding-dino", classes=names[:-1],
                             counts=[1] * (len(names) - 1))
    assert ok.classes == names[:-1]
    with pytest.raises(RewardError, match=rf"input 'class_names' give {len(names)} class names.*at most 64 tokens.*"
                                          "count fewer kinds"):
        rewards.load_reward("counting", tiny / "tiny-grounding-dino", classes=names, counts=[1] * len(names))
    r = rewards.load_reward("counting", tiny / "tiny-grounding-dino")
    prompt = " and ".join(f"two cat{i}s" for i in range(len(names)))  # distinct names (repeats add up)
    with pytest.raises(RewardError, match="the prompt's counts give.*count fewer kinds"):
        r(images(1), prompt)


def test_counting_prompt_counts_over_the_range_name_the_prompt(tiny):
    """Repeated phrases add up; a sum over 99 is refused as the prompt's, not as the 'counts' input."""
    r = rewards.load_reward("counting", tiny / "tiny-owlv2")
    with pytest.raises(RewardError, match=r"the prompt's counts: 100 is not a count.*0 to 99"):
        r(images(1), "60 cats and 40 cats")
    assert r(images(1), "59 cats and 40 cats").shape == (1,)


def tiny_tok(tiny):
    return tf.AutoTokenizer.from_pretrained(str(tiny / "tiny-grounding-dino"), local_files_only=True)


def test_pickled_objects_in_checkpoints_are_refused(tiny, tmp_path):
    """A checkpoint that would run code when unpickled is refused (both the pack's own .pt reader and transformers'
    pytorch_model.bin path), and the code never runs."""
    import pickle
    import shutil

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    d = tmp_path / "evil-hps"
    shutil.copytree(tiny / "tiny-hpsv2", d)
    for f in d.glob("HPS_*.pt"):
        f.unlink()
    torch.save({"state_dict": Evil()}, d / "HPS_v2.1_compressed.pt")
    with pytest.raises(RewardError, match="pickled Python objects are refused"):
        rewards.load_reward("hpsv2", d)
    (d / "HPS_v2.1_compressed.pt").write_bytes(pickle.dumps({"x": Evil()}, protocol=2))  # legacy, non-zip format
    with pytest.raises(RewardError, match="pickled Python objects are refused"):
        rewards.load_reward("hpsv2", d)
    c = tmp_path / "evil-clip"
    shutil.copytree(tiny / "tiny-clip", c)
    (c / "model.safetensors").unlink()
    torch.save({"x": Evil()}, c / "pytorch_model.bin")
    with pytest.raises(RewardError, match="could not load"):
        rewards.load_reward("clip_score", c)
    assert not marker.exists()


def test_missing_weights_file_is_reported(tiny, tmp_path):
    import shutil

    d = tmp_path / "broken"
    shutil.copytree(tiny / "tiny-clip", d)
    (d / "model.safetensors").unlink()
    with pytest.raises(RewardError, match="missing model.safetensors.*openai/clip-vit-large-patch14"):
        rewards.load_reward("clip_score", d)
    (d / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RewardError, match="could not load"):
        rewards.load_reward("clip_score", d)


def test_missing_optional_package_disables_only_that_scorer(tiny, monkeypatch):
    """Without transformers, the model rewards raise a RewardError naming the package; weight-free ones still work."""
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(RewardError, match="needs the 'transformers' package"):
        rewards.load_reward("imagereward", tiny / "tiny-imagereward")
    with pytest.raises(RewardError, match="transformers"):
        rewards.load_reward("clip_score", tiny / "tiny-clip")
    assert rewards.load_reward("jpeg")(images(1)).shape == (1,)


def test_vqascore_overlong_question_template_names_the_question(tiny):
    r = rewards.load_reward("vqascore", tiny / "tiny-clip-flant5", question="cat " * 600 + "{}?")
    with pytest.raises(RewardError, match="input 'question': the template alone is longer than the 512 tokens"):
        r(images(1), "a cat")


def test_check_prompt_refuses_up_front_what_scoring_would_refuse(tiny):
    """A host can check the prompt before a search: the same refusals as scoring, and nothing for a good prompt."""
    vqa = rewards.load_reward("vqascore", tiny / "tiny-clip-flant5")
    cnt = rewards.load_reward("counting", tiny / "tiny-owlv2")
    both = rewards.CompositeReward([(vqa, 1.0), (cnt, 1.0)])
    both.check_prompt("two cats and one dog")
    with pytest.raises(RewardError, match="the prompt is too long"):
        both.check_prompt("two cats " * 400)
    with pytest.raises(RewardError, match="holds no counts"):
        both.check_prompt("a cat")
    with pytest.raises(RewardError, match="needs a text prompt"):
        vqa.check_prompt("  ")
    rewards.JpegReward().check_prompt(None)  # weight-free, prompt-free: nothing to check
