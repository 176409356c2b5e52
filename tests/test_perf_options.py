"""Performance options of the ComfyUI glue: reward_resolution (off by default), channels-last CPU decodes and the
memory policy's CPU short-cut (neither changes a search's decisions)."""
import json

import pytest
import torch


@pytest.fixture(scope="module")
def env(comfy_inproc):
    import importlib
    sn = comfy_inproc.node_module("search_nodes")
    glue = comfy_inproc.node_module("search_glue")
    opts = comfy_inproc.node_module("search_options")
    dec = comfy_inproc.node_module("decoder")
    rw = importlib.import_module("comfyui_flowsearch.rewards")
    g = torch.Generator().manual_seed(0)
    cond = [[torch.randn(1, 16, 4096, generator=g) * 0.1, {"pooled_output": torch.randn(1, 768, generator=g) * 0.1}]]
    return {"sn": sn, "glue": glue, "opts": opts, "dec": dec, "rw": rw, "model": comfy_inproc.tiny_flux(), "vae": comfy_inproc.vae(),
            "cond": cond}


def run(env, px=64, options="", budget=24, preset="SVDD", seed=0, reward=None):
    out = env["sn"].FlowSearch.execute(env["model"], env["cond"], {"samples": torch.zeros(1, 16, px // 8, px // 8)},
                                       env["vae"], reward or env["rw"].ImageStatReward("brightness", "maximize"),
                                       seed, preset, 10, "vp", budget, "", 0, 0, 0.0, options)
    return out.result, json.loads(out.result[3])


def test_reward_resolution_caps_the_decoded_size(env, monkeypatch):
    seen = []
    real = env["vae"].decode
    monkeypatch.setattr(env["vae"], "decode", lambda z, *a, **k: (seen.append(tuple(z.shape[-2:])), real(z, *a, **k))[1])
    (img, lat, *_), rep = run(env, px=128, options='{"reward_resolution": 64}')
    search_decodes = seen[:-2]  # the node's last two decodes are the best image and the candidates, at full size
    assert search_decodes and all(s == (8, 8) for s in search_decodes)
    assert seen[-1] == (16, 16) and img.shape == (1, 128, 128, 3) and lat["samples"].shape == (1, 16, 16, 16)
    assert rep["searches"][0]["options"]["reward_resolution"] == 64
    assert rep["nfe"] <= 24


def test_reward_resolution_off_by_default_and_no_op_at_or_above_size(env):
    (_, lat0, *_), rep0 = run(env)
    (_, lat1, *_), rep1 = run(env, options='{"reward_resolution": 64}')   # 64 px image: nothing to shrink
    assert "reward_resolution" not in rep0["searches"][0]["options"]
    assert torch.equal(lat0["samples"], lat1["samples"]) and rep0["best_reward"] == rep1["best_reward"]


def test_reward_resolution_sizes_and_errors(env):
    glue = env["glue"]
    dec = glue.LatentDecoder(env["vae"], env["model"], reward_resolution=224)
    assert dec.reward_size(128, 128) == (28, 28) and dec.reward_size(128, 64) == (28, 14)
    assert dec.reward_size(16, 16) == (16, 16)
    assert env["opts"].split_options({"n": 2, "reward_resolution": 256}) == ({"n": 2}, {"reward_resolution": 256})
    assert env["opts"].split_options({}) == ({}, {"reward_resolution": 0})
    for bad in (-1, 2.5, True, 4):
        with pytest.raises(ValueError, match="reward_resolution"):
            env["opts"].split_options({"reward_resolution": bad})


def test_channels_last_decode_matches_contiguous(env):
    """The CPU decoder's channels-last input gives the stock decode up to float rounding."""
    glue = env["glue"]
    dec = glue.LatentDecoder(env["vae"], env["model"])
    assert dec.channels_last
    x0 = torch.randn(3, 16, 8, 8, generator=torch.Generator().manual_seed(1))
    ref = env["dec"].decode_images(env["vae"], env["model"], x0)
    torch.testing.assert_close(dec(x0), ref, rtol=0, atol=1e-5)


def test_cpu_memory_policy_loads_the_group_once(env, monkeypatch):
    """On a CPU load device ComfyUI never evicts, so the group is loaded once per search, not per decode."""
    import comfy.model_management as mm
    calls, real = [], mm.load_models_gpu
    monkeypatch.setattr(mm, "load_models_gpu", lambda models, *a, **k: (calls.append(len(models)), real(models, *a, **k))[1])
    _, rep = run(env, budget=24)
    assert 0 < rep["nfe"] <= 24
    assert sum(1 for n in calls if n >= 2) == 1  # the group (model + VAE) once; per decode only the VAE's own load
