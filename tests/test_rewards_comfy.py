"""Reward models under ComfyUI's model management and folder registry, in-process (ComfyUI 0.3.75 on CPU), plus the
reward nodes called directly.

ComfyUI is appended (not prepended) to sys.path: its top-level ``nodes`` module would otherwise shadow this pack's
``nodes`` package for the other test modules; comfy's own modules import no ``nodes``. The pack is imported under a
package name so the nodes' relative imports resolve."""
import importlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
COMFY = ROOT / ".build" / "comfyui"
if not (COMFY / "comfy" / "model_management.py").exists():
    pytest.skip("ComfyUI not extracted in .build/comfyui (run scripts/setup.sh)", allow_module_level=True)
if str(COMFY) not in sys.path:
    sys.path.append(str(COMFY))

import comfy.cli_args  # noqa: E402

comfy.cli_args.args.cpu = True  # same settings as scripts/inproc.py, whichever module imports ComfyUI first
comfy.cli_args.args.use_pytorch_cross_attention = True
import comfy.model_management as mm  # noqa: E402
import folder_paths  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import tiny_rewards  # noqa: E402

import rewards  # noqa: E402
from rewards import comfy_glue  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    d = tiny_rewards.tiny_rewards_dir()
    comfy_glue.register_folder()
    if str(d) not in folder_paths.get_folder_paths("rewards"):
        folder_paths.add_model_folder_path("rewards", str(d))  # what an extra_model_paths.yaml entry does
    return d


@pytest.fixture(scope="module")
def pack():
    if "comfyui_flowsearch" not in sys.modules:
        spec = importlib.util.spec_from_file_location("comfyui_flowsearch", ROOT / "__init__.py",
                                                      submodule_search_locations=[str(ROOT)])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["comfyui_flowsearch"] = mod
        spec.loader.exec_module(mod)
    return importlib.import_module("comfyui_flowsearch.nodes.reward_nodes")


def _x(b=2):
    return torch.rand(b, 48, 64, 3, generator=torch.Generator().manual_seed(0))


def test_folder_registered_and_listed(tiny):
    paths = folder_paths.get_folder_paths("rewards")
    assert str(Path(folder_paths.models_dir) / "rewards") in paths and str(tiny) in paths
    names = comfy_glue.reward_folder_names()
    assert {"tiny-clip", "tiny-grounding-dino", "tiny-sam", "tiny-imagereward"} <= set(names)
    assert not any(n.startswith(".") for n in names)
    assert comfy_glue.resolve_reward_path("tiny-clip", "clip") == str(tiny / "tiny-clip")
    with pytest.raises(rewards.RewardError, match="not found.*openai/clip-vit-large-patch14"):
        comfy_glue.resolve_reward_path("no-such-folder", "clip")


def test_reward_models_visible_to_and_evictable_by_model_management(tiny):
    r = comfy_glue.load_managed("clip_score", "tiny-clip")
    plain = rewards.load_reward("clip_score", tiny / "tiny-clip")
    patcher = r.patcher
    assert patcher.load_device == mm.get_torch_device() and patcher.model is r.net
    assert patcher.model_size() == sum(p.numel() * p.element_size() for p in r.net.state_dict().values())
    assert patcher not in mm.loaded_models()
    s = r(_x(), "a photo of a cat")
    torch.testing.assert_close(s, plain(_x(), "a photo of a cat"))
    assert patcher in mm.loaded_models()  # scoring loaded it through load_models_gpu
    assert patcher.loaded_size() == patcher.model_size()
    mm.unload_all_models()
    assert patcher not in mm.loaded_models() and patcher.loaded_size() == 0
    torch.testing.assert_close(r(_x(), "a photo of a cat"), s)  # reloads on demand
    assert patcher in mm.loaded_models()
    mm.free_memory(1e30, mm.get_torch_device())
    assert patcher not in mm.loaded_models()


def test_composite_and_counting_manage_every_part(tiny):
    a = comfy_glue.load_managed("aesthetic", "tiny-aesthetic")
    c = comfy_glue.load_managed("counting", "tiny-owlv2", classes="cat", counts="1",
                                sam_path=str(tiny / "tiny-sam"))
    comp = rewards.CompositeReward([(a, 1.0), (c, 0.5), (rewards.JpegReward(), 0.1)])
    comfy_glue.manage(comp)  # idempotent: the parts keep their patchers
    ps = comfy_glue.patchers(comp)
    assert len(ps) == 2 and {id(p.model) for p in ps} == {id(a.net), id(c.net)}
    assert "sam" in c.net and "detector" in c.net  # SAM and detector counted as one model
    assert comp(_x()).shape == (2,)
    loaded = mm.loaded_models()
    assert all(p in loaded for p in ps)
    mm.unload_all_models()
    assert not any(p in mm.loaded_models() for p in ps)


def test_dtype_choice_on_cpu():
    assert comfy_glue.dtype_for("auto") == torch.float32
    assert comfy_glue.dtype_for("bf16") == torch.bfloat16


# ------------------------------------------------------------------------------------------------ nodes, called directly
def test_node_schemas(pack, tiny):
    ids = set()
    for node in pack.NODES:
        s = node.define_schema()
        assert s.node_id.startswith("FlowSearch") and s.category == "sampling/flowsearch/rewards"
        assert all(i.tooltip for i in s.inputs), s.node_id
        ids.add(s.node_id)
        if s.node_id.startswith("FlowSearchRewardLoader"):
            combo = s.inputs[0]
            assert "tiny-clip" in combo.options
    assert {"FlowSearchRewardLoaderCLIP", "FlowSearchRewardLoaderAesthetic", "FlowSearchRewardLoaderImageReward",
            "FlowSearchRewardLoaderVQAScore", "FlowSearchRewardLoaderCounting", "FlowSearchRewardCombine",
            "FlowSearchScoreImages", "FlowSearchRewardJPEG", "FlowSearchRewardImageStat",
            "FlowSearchRewardColor"} == ids


def test_loader_combine_and_score_nodes(pack, tiny):
    clip = pack.RewardLoaderCLIP.execute(model="tiny-clip", metric="pickscore", dtype="auto", batch_size=2).args[0]
    assert clip.name == "pickscore" and clip.patcher is not None
    bright = pack.RewardImageStat.execute(stat="brightness", mode="maximize", target=0.5).args[0]
    comb = pack.RewardCombine.execute(reward_1=clip, weight_1=1.0, normalize="range", reward_2=bright,
                                      weight_2=2.0).args[0]
    out = pack.ScoreImages.execute(images=_x(3), reward=comb, prompt="a photo of a cat")
    scores, js = out.args
    assert isinstance(scores, list) and len(scores) == 3 and all(isinstance(v, float) for v in scores)
    rep = json.loads(js)
    assert rep["scores"] == scores and rep["best_index"] == max(range(3), key=scores.__getitem__)
    assert "pickscore" in rep["reward"] and out.ui.as_dict()["text"][0].startswith(comb.name)
    cnt = pack.RewardLoaderCounting.execute(detector="tiny-owlv2", sam="none", class_names="cat, dog",
                                            counts="1, 0", box_threshold=0.1, text_threshold=0.2, mode="hard",
                                            dtype="auto", batch_size=2).args[0]
    rep = json.loads(pack.ScoreImages.execute(images=_x(2), reward=cnt, prompt="").args[1])
    assert len(rep["details"]) == 2 and set(rep["details"][0]["counts"]) == {"cat", "dog"}


def test_loader_node_errors_are_clear(pack, tiny):
    with pytest.raises(ValueError, match="not found.*huggingface.co/openai/clip-vit-large-patch14"):
        pack.RewardLoaderCLIP.execute(model=comfy_glue.NO_FOLDERS, metric="clip_score", dtype="auto", batch_size=1)
    with pytest.raises(ValueError, match="no aesthetic head"):
        pack.RewardLoaderAesthetic.execute(model="tiny-clip", dtype="auto", batch_size=1)
    clip = pack.RewardLoaderCLIP.execute(model="tiny-clip", metric="clip_score", dtype="auto", batch_size=1).args[0]
    with pytest.raises(ValueError, match="needs a text prompt"):
        pack.ScoreImages.execute(images=_x(1), reward=clip, prompt="  ")


# ------------------------------------------------------------------------------------------------ folder names
@pytest.mark.parametrize("name", ["/etc", "/", "../../..", "..", "tiny-clip/../../rewards/tiny-clip", "./tiny-clip",
                                  "tiny-clip/", "a\\..\\b", "C:tiny-clip", ""])
def test_folder_names_outside_the_rewards_roots_are_refused_unseen(tiny, name, monkeypatch):
    """Absolute paths, '..', '.', backslashes and drives are refused before the file system is touched."""
    import os

    looked = []
    monkeypatch.setattr(os.path, "isdir", lambda p: looked.append(p) or False)
    with pytest.raises(rewards.RewardError, match="input 'model'.*not a folder name from the list.*Choose one"):
        comfy_glue.resolve_reward_path(name, "clip")
    assert looked == []


def test_absolute_path_to_a_real_reward_folder_is_refused(tiny):
    """Even an existing reward folder, named by its absolute path, does not load (names resolve only inside the
    registered roots); its plain name does."""
    with pytest.raises(rewards.RewardError, match="not a folder name from the list"):
        comfy_glue.resolve_reward_path(str(tiny / "tiny-clip"), "clip")
    assert comfy_glue.resolve_reward_path("tiny-clip", "clip") == str(tiny / "tiny-clip")


def test_nested_folder_names_resolve_inside_a_root(tiny, tmp_path):
    root = tmp_path / "extra_rewards"
    (root / "family" / "tiny-clip-copy").mkdir(parents=True)
    folder_paths.add_model_folder_path("rewards", str(root))
    assert comfy_glue.resolve_reward_path("family/tiny-clip-copy", "clip") == str(root / "family" / "tiny-clip-copy")


# ------------------------------------------------------------------------------------------------ Cancel
def test_cancel_between_minibatches_in_process(tiny):
    """ComfyUI's interrupt flag set while scoring stops a managed reward before its next minibatch
    (mm.throw_exception_if_processing_interrupted); an unmanaged one (no host) scores all of them."""
    scored = []

    class Flagging(rewards.ImageStatReward):
        def _score(self, x, prompts, **kw):
            scored.append(x.shape[0])
            mm.interrupt_current_processing(True)  # Cancel pressed during the first minibatch
            return super()._score(x, prompts, **kw)

    try:
        r = comfy_glue.manage(Flagging("brightness", "maximize", batch_size=1))
        assert r.check_interrupt is mm.throw_exception_if_processing_interrupted
        with pytest.raises(mm.InterruptProcessingException):
            r(_x(4))
        assert scored == [1]
        mm.interrupt_current_processing(False)
        scored.clear()
        plain = Flagging("brightness", "maximize", batch_size=1)
        assert plain(_x(4)).shape == (4,) and scored == [1, 1, 1, 1]
    finally:
        mm.interrupt_current_processing(False)


def test_every_reward_node_output_checks_cancel(pack, tiny):
    """Every reward node wires Cancel into what it outputs, and Score Images wires any reward it is given."""
    outs = [
        pack.RewardLoaderCLIP.execute(model="tiny-clip", metric="clip_score", dtype="auto", batch_size=2),
        pack.RewardLoaderAesthetic.execute(model="tiny-aesthetic", dtype="auto", batch_size=2),
        pack.RewardLoaderImageReward.execute(model="tiny-imagereward", dtype="auto", batch_size=2),
        pack.RewardLoaderVQAScore.execute(model="tiny-clip-flant5", backend="auto", question="", answer="",
                                          dtype="auto", batch_size=2),
        pack.RewardLoaderCounting.execute(detector="tiny-owlv2", sam="tiny-sam", class_names="cat", counts="1",
                                          box_threshold=0.2, text_threshold=0.2, mode="hard", dtype="auto",
                                          batch_size=2),
        pack.RewardJPEG.execute(mode="compressibility", quality=90),
        pack.RewardImageStat.execute(stat="brightness", mode="maximize", target=0.5),
        pack.RewardColor.execute(color="#ff0000", per_pixel=False),
    ]
    made = [o.args[0] for o in outs]
    comb = pack.RewardCombine.execute(reward_1=rewards.JpegReward(), weight_1=1.0, normalize="range").args[0]
    for r in made + [comb]:
        assert all(leaf.check_interrupt is mm.throw_exception_if_processing_interrupted for leaf in r.leaves()), r
    foreign = rewards.ImageStatReward("contrast", "maximize")
    pack.ScoreImages.execute(images=_x(1), reward=foreign, prompt="")
    assert foreign.check_interrupt is mm.throw_exception_if_processing_interrupted


@pytest.mark.parametrize("node, kw, fragment", [
    ("RewardJPEG", dict(mode="bogus", quality=95), "input 'mode' is 'bogus'; choose one of compressibility"),
    ("RewardImageStat", dict(stat="bogus", mode="target", target=0.5), "input 'stat' is 'bogus'"),
    ("RewardImageStat", dict(stat="brightness", mode="bogus", target=0.5), "input 'mode' is 'bogus'"),
    ("RewardImageStat", dict(stat="brightness", mode="target", target=float("nan")), "input 'target'.*finite"),
    ("RewardColor", dict(color="#zzzzzz", per_pixel=False), "input 'color'.*#rrggbb"),
    ("RewardLoaderCLIP", dict(model="tiny-clip", metric="bogus", dtype="auto", batch_size=1), "input 'metric'"),
    ("RewardLoaderCLIP", dict(model="tiny-clip", metric="clip_score", dtype="fp64", batch_size=1), "input 'dtype'"),
    ("RewardLoaderVQAScore", dict(model="tiny-clip-flant5", backend="bogus", question="", answer="", dtype="auto",
                                  batch_size=1), "input 'backend'"),
    ("RewardLoaderCounting", dict(detector="tiny-owlv2", sam="none", class_names="cat", counts="1",
                                  box_threshold=0.2, text_threshold=float("inf"), mode="hard", dtype="auto",
                                  batch_size=1), "input 'text_threshold'"),
    ("RewardLoaderCounting", dict(detector="tiny-owlv2", sam="none", class_names="cat", counts="1",
                                  box_threshold=0.2, text_threshold=0.2, mode="bogus", dtype="auto",
                                  batch_size=1), "input 'mode'"),
])
def test_node_inputs_checked_in_execute(pack, tiny, node, kw, fragment):
    """ComfyUI does not check combo values (or NaN floats) of API prompts: the nodes do, with a ValueError."""
    with pytest.raises(ValueError, match=fragment):
        getattr(pack, node).execute(**kw)


def test_combine_refuses_non_finite_weights(pack):
    with pytest.raises(ValueError, match="input 'weight_2'.*finite"):
        pack.RewardCombine.execute(reward_1=rewards.JpegReward(), weight_1=1.0, normalize="range",
                                   reward_2=rewards.JpegReward(), weight_2=float("nan"))
    with pytest.raises(ValueError, match="input 'normalize' is 'bogus'"):
        pack.RewardCombine.execute(reward_1=rewards.JpegReward(), weight_1=1.0, normalize="bogus")
