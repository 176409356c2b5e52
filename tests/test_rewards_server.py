"""Reward nodes through the real ComfyUI server (session fixture ``comfy`` from tests/comfy_fixtures.py, models in
.build/base/models, rewards in .build/base/models/rewards filled with tests/fixtures/tiny_rewards.py)."""
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import tiny_rewards  # noqa: E402

host = pytest.importorskip("host")

REWARD_NODES = ["FlowSearchRewardLoaderCLIP", "FlowSearchRewardLoaderAesthetic", "FlowSearchRewardLoaderImageReward",
                "FlowSearchRewardLoaderVQAScore", "FlowSearchRewardLoaderCounting", "FlowSearchRewardJPEG",
                "FlowSearchRewardImageStat", "FlowSearchRewardColor", "FlowSearchRewardCombine",
                "FlowSearchScoreImages"]


@pytest.fixture(scope="module")
def rewards_dir():
    """The server's models/rewards, filled with the tiny folders (cached build; the lead's set-up usually did it)."""
    tiny_rewards.build_all(tiny_rewards.BASE_REWARDS)
    return tiny_rewards.BASE_REWARDS


@pytest.fixture(scope="module")
def server(rewards_dir, comfy):
    return comfy


def _images(n=2, w=64, h=48, color=0x336699):
    return {"class_type": "EmptyImage", "inputs": {"width": w, "height": h, "batch_size": n, "color": color}}


def _score(reward_id, prompt="a photo of a cat", images="img"):
    return {"class_type": "FlowSearchScoreImages",
            "inputs": {"images": [images, 0], "reward": [reward_id, 0], "prompt": prompt}}


def _preview(entry, node_id):
    return entry["outputs"][node_id]["text"][0]


def test_reward_nodes_in_object_info(server):
    info = server.object_info(refresh=True)
    for nid in REWARD_NODES:
        assert nid in info, nid
        assert info[nid]["category"] == "sampling/flowsearch/rewards"
    for nid in REWARD_NODES[:5]:
        assert info[nid]["output"] == ["REWARD"]
    clip = info["FlowSearchRewardLoaderCLIP"]["input"]["required"]["model"]
    options = clip[1]["options"] if len(clip) > 1 and "options" in clip[1] else clip[0]
    assert {"tiny-clip", "tiny-hpsv2", "tiny-grounding-dino"} <= set(options)
    score = info["FlowSearchScoreImages"]
    assert score["output"] == ["FLOAT", "STRING"] and score["output_is_list"] == [True, False]
    assert score["output_node"] is True
    assert info["FlowSearchRewardCombine"]["input"]["optional"]["reward_2"][0] == "REWARD"


def test_score_images_workflow_runs(server):
    prompt = {
        "img": _images(2),
        "clip": {"class_type": "FlowSearchRewardLoaderCLIP",
                 "inputs": {"model": "tiny-clip", "metric": "clip_score", "dtype": "auto", "batch_size": 8}},
        "aes": {"class_type": "FlowSearchRewardLoaderAesthetic",
                "inputs": {"model": "tiny-aesthetic", "dtype": "auto", "batch_size": 8}},
        "jpeg": {"class_type": "FlowSearchRewardJPEG", "inputs": {"mode": "compressibility", "quality": 95}},
        "mix": {"class_type": "FlowSearchRewardCombine",
                "inputs": {"reward_1": ["aes", 0], "weight_1": 1.0, "reward_2": ["jpeg", 0], "weight_2": 0.5,
                           "normalize": "range"}},
        "s1": _score("clip"),
        "s2": _score("mix", prompt=""),
    }
    entry = server.run(prompt, timeout=300)
    t1, t2 = _preview(entry, "s1"), _preview(entry, "s2")
    assert t1.startswith("clip_score") and "#0:" in t1 and "#1:" in t1
    assert "laion_aesthetic" in t2 and "jpeg_compressibility" in t2


def test_vqascore_and_counting_workflow_runs(server):
    prompt = {
        "img": _images(1, color=0xAA2200),
        "vqa": {"class_type": "FlowSearchRewardLoaderVQAScore",
                "inputs": {"model": "tiny-clip-flant5", "backend": "auto", "question": "", "answer": "",
                           "dtype": "auto", "batch_size": 4}},
        "cnt": {"class_type": "FlowSearchRewardLoaderCounting",
                "inputs": {"detector": "tiny-grounding-dino", "sam": "tiny-sam", "class_names": "cats, dogs",
                           "counts": "2, 1", "box_threshold": 0.2, "text_threshold": 0.2, "mode": "hard",
                           "dtype": "auto", "batch_size": 4}},
        "s1": _score("vqa", "two red cats"),
        "s2": _score("cnt", ""),
    }
    entry = server.run(prompt, timeout=300)
    v = float(_preview(entry, "s1").split("#0:")[1].split()[0])
    assert 0.0 < v < 1.0
    c = float(_preview(entry, "s2").split("#0:")[1].split()[0])
    assert c <= 0 and c == round(c)


def test_missing_reward_folder_clear_error_then_next_prompt_runs(server, rewards_dir):
    # a name that is not in the folder list: rejected at validation, naming the node and the value
    bad = {"img": _images(1), "clip": {"class_type": "FlowSearchRewardLoaderCLIP",
                                       "inputs": {"model": "no-such-reward", "metric": "clip_score",
                                                  "dtype": "auto", "batch_size": 8}},
           "s": _score("clip")}
    with pytest.raises(host.ComfyError, match="no-such-reward"):
        server.run(bad, timeout=120)
    # a folder that is listed but holds no weights: the loader's error names the layout and the public source
    broken = rewards_dir / "broken-clip"
    broken.mkdir(exist_ok=True)
    shutil.copy(rewards_dir / "tiny-clip" / "config.json", broken / "config.json")
    try:
        bad["clip"]["inputs"]["model"] = "broken-clip"
        with pytest.raises(host.ComfyError) as e:
            server.run(bad, timeout=120)
        msg = str(e.value)
        assert "FlowSearchRewardLoaderCLIP" in msg and "model.safetensors" in msg
        assert "huggingface.co/openai/clip-vit-large-patch14" in msg
    finally:
        shutil.rmtree(broken, ignore_errors=True)
    # the server keeps serving
    ok = {"img": _images(1), "st": {"class_type": "FlowSearchRewardImageStat",
                                    "inputs": {"stat": "brightness", "mode": "maximize", "target": 0.5}},
          "s": _score("st", "")}
    entry = server.run(ok, timeout=120)
    assert json.dumps(entry["outputs"]["s"]) and "brightness_maximize" in _preview(entry, "s")
