"""The shipped playground through the real ComfyUI server: stock nodes sample countable pictures that follow the
caption, the search reports both counters, and bad captions get node errors that name the grammar."""
import json
import os

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

import host
from playground import counter, world

CAPTIONS = ["one red square and two blue crosses", "five green crosses and one red square",
            "three blue squares and four red crosses", "two green squares and six blue crosses",
            "six red squares and one green cross", "four blue crosses and two red crosses",
            "one green square and five red squares", "three red crosses and three green squares",
            "two red squares, one blue cross and four green crosses",
            "five blue squares, one red cross and two green crosses"]


def stock_graph(caption, seed, batch=4):
    """Playground loader → stock CLIPTextEncode → EmptySD3LatentImage 128² → KSampler (euler, 10 steps) → VAEDecode."""
    return {
        "1": {"class_type": "FlowSearchPlaygroundLoader", "inputs": {"weights": "playground_flux.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": caption}},
        "3": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 128, "height": 128, "batch_size": batch}},
        "4": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0],
                                                   "latent_image": ["3", 0], "seed": seed, "steps": 10, "cfg": 1.0,
                                                   "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "test_playground/stock"}},
    }


def saved_world_images(entry):
    out = []
    for fname, sub, kind in host.output_images(entry):
        img = np.asarray(Image.open(os.path.join(host.BASE_DIR, kind, sub, fname)).convert("RGB"), np.float32) / 255
        assert img.shape == (128, 128, 3)
        out.append(img.reshape(32, 4, 32, 4, 3).mean((1, 3)))       # undo the 4× display scale
    return out


def test_stock_nodes_sample_pictures_whose_counts_follow_the_caption(comfy):
    """Spec: Spearman(target, counted) > 0.6 over captions × images; the held-out counter must see real objects."""
    targets, counted, agree = [], [], []
    for i, caption in enumerate(CAPTIONS):
        groups = world.parse_caption(caption)
        images = saved_world_images(comfy.run(stock_graph(caption, seed=100 + i), timeout=300))
        assert len(images) == 4
        for img in images:
            cr, ch = counter.count_reward(img), counter.count_heldout(img)
            for g in groups:
                targets.append(g.count)
                counted.append(cr[g.type])
            agree.append(all(cr[g.type] == ch[g.type] for g in groups))
    rho = spearmanr(targets, counted).statistic
    assert rho > 0.6, (rho, list(zip(targets, counted)))
    assert np.mean(agree) >= 0.5, f"held-out counter agrees on only {np.mean(agree):.2f} of plain samples"


def test_search_report_carries_both_counters(comfy):
    path = host.workflow_path("playground_rbf_counting")
    api = host.ui_to_api(host.load_workflow(path), comfy.object_info())
    fs = next(nid for nid, n in api.items() if n["class_type"] == "FlowSearch")
    api[fs]["inputs"]["nfe_budget"] = 60
    out = comfy.run(api, timeout=300)["outputs"][fs]
    rep = json.loads(out["flowsearch_report"][0])
    details = rep["reward_details"]["count_objects"]
    n_cands = len(rep["searches"][0]["candidate_rewards"])
    assert len(details["best"]) == 1 and len(details["candidates"]) == n_cands
    best = details["best"][0]
    assert best["targets"] == "four red squares, three blue crosses and two green squares"
    assert set(best["counts"]) == set(best["counts_heldout"]) == {"red square", "blue cross", "green square"}
    assert -best["rss"] == pytest.approx(rep["best_reward"])          # the reward is −RSS of the best image
    assert "held-out" in out["text"][0]


@pytest.mark.parametrize("caption, fragment", [("three purple squares and two blue crosses", "unknown colour"),
                                               ("nine red squares and two blue crosses", "one..six"),
                                               ("a red car", "<count> <colour> <shape>")])
def test_bad_caption_is_a_node_error_naming_the_grammar(comfy, caption, fragment):
    with pytest.raises(host.ComfyError, match=fragment):
        comfy.run(stock_graph(caption, seed=0, batch=1), timeout=120)
    assert saved_world_images(comfy.run(stock_graph(CAPTIONS[0], seed=1, batch=1), timeout=120))


def test_loader_refuses_weights_outside_the_pack(comfy):
    graph = stock_graph(CAPTIONS[0], seed=0, batch=1)
    graph["1"]["inputs"]["weights"] = "../../../etc/passwd"
    with pytest.raises(host.ComfyError, match="unknown playground weights|not in list"):
        comfy.run(graph, timeout=60)
