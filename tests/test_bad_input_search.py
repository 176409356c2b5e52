"""Bad-input matrix, search nodes (issue 11): each row drives one bad input through the real ComfyUI server and
asserts that the node error names the input and the fix, that the server stays alive, and that the next normal
prompt still produces an image. Graphs use the shipped playground model (128 px, a few NFE)."""
import copy
import json
import os
import re

import pytest
import torch
from safetensors.torch import save_file

import host
from playground_graphs import sampler_inputs, sampler_nodes

CAPTION = "two red squares and one blue cross"


def head(width=128, height=128):
    return {
        "1": {"class_type": "FlowSearchPlaygroundLoader", "inputs": {"weights": "playground_flux.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": CAPTION}},
        "3": {"class_type": "EmptySD3LatentImage", "inputs": {"width": width, "height": height, "batch_size": 1}},
        "4": {"class_type": "FlowSearchRewardJPEG", "inputs": {"mode": "compressibility", "quality": 95}},
        "12": {"class_type": "FlowSearchRewardCombine", "inputs": {"reward_1": ["4", 0], "weight_1": 1.0,
                                                                   "normalize": "none"}},
    }


def flowsearch(seed=0, reward="4", latent=("3", 0), width=128, **inputs):
    """Playground → FlowSearch (RBF, 4 steps, 12 NFE) → PreviewImage; `inputs` override FlowSearch widgets."""
    fs = {"model": ["1", 0], "positive": ["2", 0], "latent": list(latent), "vae": ["1", 2], "reward": [reward, 0],
          "seed": seed, "preset": "RBF (paper)", "steps": 4, "interpolant": "vp", "nfe_budget": 12, "prompt": "",
          "max_batch": 0, "finish_steps": 0, "guidance_scale": 0.0, "options": "", **inputs}
    return {**head(width, width), "5": {"class_type": "FlowSearch", "inputs": fs},
            "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}}}


def sampler(reward="4", guidance=1.0):
    """FlowSearch Sampler inside SamplerCustomAdvanced (BasicGuider, FlowSearch Scheduler) → VAEDecode → Preview."""
    return {**head(), **sampler_nodes(sampler_inputs(reward, guidance=guidance))}


def replay(report, candidate=-1, search_index=0, width=128):
    """FlowSearch Replay of `report` (a dict, dumped as the node's text input, or raw text) → VAEDecode → Preview."""
    return {**head(width, width),
            "5": {"class_type": "FlowSearchReplay", "inputs": {
                "model": ["1", 0], "positive": ["2", 0], "latent": ["3", 0],
                "report": report if isinstance(report, str) else json.dumps(report),
                "candidate": candidate, "search_index": search_index}},
            "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
            "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}}}


def sd_latent_file():
    """A non-empty 4-channel SD latent in ComfyUI's input folder, for LoadLatent."""
    name = "flowsearch_test_sd4.latent"
    path = os.path.join(host.BASE_DIR, "input", name)
    if not os.path.exists(path):
        save_file({"latent_tensor": torch.ones(1, 4, 16, 16)}, path)
    return name


def with_sd_latent():
    g = flowsearch(latent=("13", 0))
    g["13"] = {"class_type": "LoadLatent", "inputs": {"latent": sd_latent_file()}}
    return g


def with_count_objects(**inputs):
    g = flowsearch(reward="15", **inputs)
    g["15"] = {"class_type": "FlowSearchCountObjectsReward", "inputs": {"targets": ""}}
    return g


def with_constant_reward(value):
    g = flowsearch(reward="14")
    g["14"] = {"class_type": "FlowSearchTestConstantReward", "inputs": {"value": value}}
    return g


def tampered(report, edit):
    rep = copy.deepcopy(report)
    edit(rep["searches"][0])
    return rep


# id, graph builder (gets the 64 px FlowSearch report), regex fragments: the input it names, the fix it names
ROWS = [
    ("guidance-jpeg-flowsearch", lambda r: flowsearch(guidance_scale=1.0),
     ["Gradient guidance needs a differentiable reward", "guidance_scale to 0"]),
    ("guidance-combine-flowsearch", lambda r: flowsearch(reward="12", guidance_scale=1.0),
     ["differentiable reward; '1\\*jpeg", "guidance_scale to 0"]),
    ("guidance-jpeg-sampler", lambda r: sampler(),
     ["Gradient guidance needs a differentiable reward", "guidance_scale to 0"]),
    ("guidance-combine-sampler", lambda r: sampler(reward="12"),
     ["differentiable reward; '1\\*jpeg", "guidance_scale to 0"]),
    ("guidance-count-objects-flowsearch", lambda r: with_count_objects(guidance_scale=1.0, prompt=CAPTION),
     ["differentiable reward; 'count_objects' is not", "guidance_scale to 0"]),
    ("sd-latent-into-flowsearch", lambda r: with_sd_latent(),
     ["latent has 4 channels but this model works on 16-channel", "EmptySD3LatentImage"]),
    ("unknown-preset", lambda r: flowsearch(preset="Bogus preset"),
     ["Bogus preset", "RBF \\(paper\\)"]),
    ("interpolant-vp-5-1", lambda r: flowsearch(interpolant="vp:5:1"),
     ["interpolant 'vp:5:1'", "beta_min < beta_max", "'vp'"]),
    ("all-rewards-nan", lambda r: with_constant_reward("nan"),
     ["reward 'constant_nan' gave no finite score", "Fix the reward's inputs"]),
    ("all-rewards-minus-inf", lambda r: with_constant_reward("-inf"),
     ["reward 'constant_-inf' gave no finite score", "another reward"]),
    ("cpu-latent-too-large", lambda r: flowsearch(width=8192),
     ["8192×8192 px search needs", "RAM is free", "smaller image: at most about \\d+×\\d+ px"]),
    ("replay-no-chosen", lambda r: replay(tampered(r, lambda s: s.pop("chosen"))),
     ["no 'chosen' candidate index", "set candidate to 0"]),
    ("replay-no-options", lambda r: replay(tampered(r, lambda s: s.pop("options"))),
     ["no 'options' with its interpolant and seed", "'report' output to FlowSearch Replay unchanged"]),
    ("replay-truncated-lineage-op", lambda r: replay(tampered(r, lambda s: [c["lineage"].__setitem__(
        0, c["lineage"][0][:2]) for c in s["seeds"]])),
     ["operation 0 of candidate \\d+'s lineage", "unchanged"]),
    ("replay-empty-seeds", lambda r: replay(tampered(r, lambda s: s.__setitem__("seeds", []))),
     ["no 'seeds' list", "unchanged"]),
    ("replay-search-index", lambda r: replay(r, search_index=3),
     ["search_index 3 does not exist", "use 0..0"]),
    ("replay-candidate-index", lambda r: replay(r, candidate=999),
     ["candidate 999 does not exist", "candidate -1 = the chosen one"]),
    ("replay-not-json", lambda r: replay("{not json"),
     ["report: this is not JSON", "unchanged"]),
    ("replay-64px-report-on-128px-latent", lambda r: replay(r, width=128),
     ["ran on 64×64 px .* this latent is 128×128 px", "EmptySD3LatentImage width 64, height 64"]),
]


@pytest.fixture(scope="module")
def report_64(comfy):
    """A real FlowSearch report of a 64 px search (the Replay rows tamper with copies of it)."""
    out = comfy.run(flowsearch(seed=7, width=64), timeout=180)["outputs"]["5"]
    rep = json.loads(out["flowsearch_report"][0])
    assert rep["searches"][0]["latent_shape"] == [16, 8, 8]
    return rep


@pytest.mark.parametrize("build, fragments", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_is_a_node_error_naming_input_and_fix(comfy, report_64, build, fragments):
    graph = build(report_64)
    with pytest.raises(host.ComfyError) as err:
        comfy.run(graph, timeout=180)
    print(err.value)
    for fragment in fragments:
        assert re.search(fragment, str(err.value)), (fragment, str(err.value))
    assert comfy.alive()
    seed = 100 + [r[1] for r in ROWS].index(build)   # a fresh seed: the normal prompt really runs again
    assert host.output_images(comfy.run(flowsearch(seed=seed), timeout=180))


def test_replay_of_an_untampered_report_matches_on_its_own_size(comfy, report_64):
    """The control for the Replay rows: the same report on a 64 px latent replays (no false refusal)."""
    assert host.output_images(comfy.run(replay(report_64, width=64), timeout=180))


def test_empty_sd_latent_is_fixed_up_like_sampler_custom_advanced(comfy):
    """An empty 4-channel latent (EmptyLatentImage) runs in FlowSearch as in SamplerCustomAdvanced: the same image
    as the 16-channel empty latent."""
    g16 = flowsearch(seed=3)
    g4 = flowsearch(seed=3, latent=("13", 0))
    g4["13"] = {"class_type": "EmptyLatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}}
    r16 = json.loads(comfy.run(g16, timeout=180)["outputs"]["5"]["flowsearch_report"][0])
    r4 = json.loads(comfy.run(g4, timeout=180)["outputs"]["5"]["flowsearch_report"][0])
    assert r4["searches"][0]["latent_shape"] == [16, 16, 16]
    assert r4["searches"][0]["seeds"] == r16["searches"][0]["seeds"]
    assert r4["best_reward"] == pytest.approx(r16["best_reward"], rel=1e-6)
