"""Gradient guidance with a non-differentiable reward is a node error that names the fix, through the real server,
for the all-in-one FlowSearch and for FlowSearch Sampler; the server then runs the next prompt."""
import pytest

import host
from playground_graphs import sampler_inputs, sampler_nodes

HEAD = {
    "1": {"class_type": "FlowSearchPlaygroundLoader", "inputs": {"weights": "playground_flux.safetensors"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "two red squares and one blue cross"}},
    "3": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}},
    "4": {"class_type": "FlowSearchRewardJPEG", "inputs": {"mode": "compressibility", "quality": 95}},
}


def all_in_one(guidance, reward=("4", 0)):
    return {**HEAD, "5": {"class_type": "FlowSearch", "inputs": {
        "model": ["1", 0], "positive": ["2", 0], "latent": ["3", 0], "vae": ["1", 2], "reward": list(reward),
        "seed": 0, "preset": "RBF (paper)", "steps": 4, "interpolant": "vp", "nfe_budget": 12, "prompt": "",
        "max_batch": 0, "finish_steps": 0, "guidance_scale": guidance, "options": ""}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}}}


def sampler_graph(guidance):
    return {**HEAD, **sampler_nodes(sampler_inputs("4", guidance=guidance))}


@pytest.mark.parametrize("graph", [all_in_one, sampler_graph], ids=["FlowSearch", "FlowSearchSampler"])
def test_guidance_with_jpeg_reward_names_the_fix(comfy, graph):
    with pytest.raises(host.ComfyError, match="Gradient guidance needs a differentiable reward.*guidance_scale to 0"):
        comfy.run(graph(1.0), timeout=120)
    assert host.output_images(comfy.run(graph(0.0), timeout=120))


def test_guidance_with_a_combine_of_non_differentiable_parts(comfy):
    g = all_in_one(1.0, reward=("12", 0))
    g["12"] = {"class_type": "FlowSearchRewardCombine", "inputs": {"reward_1": ["4", 0], "weight_1": 1.0,
                                                                   "normalize": "none"}}
    with pytest.raises(host.ComfyError, match="Gradient guidance needs a differentiable reward"):
        comfy.run(g, timeout=120)
    assert host.output_images(comfy.run(all_in_one(0.0), timeout=120))
