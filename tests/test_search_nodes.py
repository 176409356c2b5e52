"""The search nodes inside ComfyUI on the tiny FLUX with weight-free rewards (in-process, quick)."""
import json

import pytest
import torch

PRESETS = ["RBF (paper)", "SVDD", "SMC", "SoP", "CoDe", "Best-of-N", "Noise search"]


@pytest.fixture(scope="module")
def env(comfy_inproc):
    import importlib
    sn = comfy_inproc.node_module("search_nodes")
    rw = importlib.import_module("comfyui_flowsearch.rewards")
    cond = comfy_inproc.tiny_cond()
    return {"sn": sn, "rw": rw, "model": comfy_inproc.tiny_flux(), "vae": comfy_inproc.vae(), "cond": cond,
            "latent": {"samples": torch.zeros(1, 16, 8, 8)}, "inproc": comfy_inproc}


def flowsearch(env, preset="RBF (paper)", budget=40, seed=0, reward=None, max_batch=0, steps=10, interpolant="vp",
               prompt="", finish=0, guidance=0.0, options="", latent=None, model=None):
    out = env["sn"].FlowSearch.execute(model or env["model"], env["cond"], latent or env["latent"], env["vae"],
                                       reward or env["rw"].JpegReward(), seed, preset, steps, interpolant, budget,
                                       prompt, max_batch, finish, guidance, options)
    return out.result, json.loads(out.result[3]), out.ui


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs_within_budget(env, preset):
    (img, lat, cands, _, plot), rep, ui = flowsearch(env, preset, budget=48)
    assert img.shape == (1, 64, 64, 3) and lat["samples"].shape == (1, 16, 8, 8)
    assert cands.ndim == 4 and cands.shape[1:] == (64, 64, 3) and plot.shape[-1] == 3
    assert 0 < rep["nfe"] <= rep["budget"] == 48
    run = rep["searches"][0]
    assert len(run["candidate_rewards"]) == cands.shape[0] and len(run["seeds"]) == cands.shape[0]
    assert max(r for r in run["candidate_rewards"] if r is not None) == pytest.approx(rep["best_reward"])
    assert ui["images"] and "NFE" in ui["text"][0]


def _same_search(x, y):
    """Same decisions (chosen candidate, every lineage) and the same image up to float32 batching noise: a
    network's batched matmuls differ from batch-1 ones in the last bits, never enough to change a choice."""
    (img_x, lat_x, *_), rep_x, _ = x
    (img_y, lat_y, *_), rep_y, _ = y
    sx, sy = rep_x["searches"][0], rep_y["searches"][0]
    assert sx["chosen"] == sy["chosen"] and sx["seeds"] == sy["seeds"]
    torch.testing.assert_close(lat_x["samples"], lat_y["samples"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(img_x, img_y, rtol=0, atol=2e-4)


def test_same_seed_same_image_any_max_batch(env):
    a = flowsearch(env, "RBF (paper)", budget=36, seed=5, max_batch=1)
    assert torch.equal(a[0][0], flowsearch(env, "RBF (paper)", budget=36, seed=5, max_batch=1)[0][0])
    _same_search(a, flowsearch(env, "RBF (paper)", budget=36, seed=5, max_batch=0))
    _same_search(flowsearch(env, "SMC", budget=36, seed=5, max_batch=3),
                 flowsearch(env, "SMC", budget=36, seed=5, max_batch=7))
    # the seed is used: a run that differs from `a` in the seed alone (same max_batch, so no batching noise)
    # reports that seed and gives another image, far beyond float32 noise (≤ 2e-4 above)
    b = flowsearch(env, "RBF (paper)", budget=36, seed=6, max_batch=1)
    assert [r[1]["searches"][0]["options"]["seed"] for r in (a, b)] == [5, 6]
    assert float((a[0][0] - b[0][0]).abs().max()) > 1e-2


def test_rbf_beats_best_of_n_on_tiny_flux(env):
    """The pipeline really searches: RBF's best reward beats Best-of-N's at equal budget, over 6 seeds."""
    reward = env["rw"].ImageStatReward("brightness", "maximize")
    rbf = [flowsearch(env, "RBF (paper)", budget=60, seed=s, reward=reward)[1]["best_reward"] for s in range(6)]
    bon = [flowsearch(env, "Best-of-N", budget=60, seed=s, reward=reward)[1]["best_reward"] for s in range(6)]
    wins = sum(r > b for r, b in zip(rbf, bon))
    gain = sum(rbf) / 6 - sum(bon) / 6
    print(f"brightness: RBF mean {sum(rbf) / 6:.4f} vs BoN {sum(bon) / 6:.4f} (wins {wins}/6)")
    assert wins >= 5 and gain > 0.005


def test_sampler_node_composes_with_guider_and_matches_all_in_one(env):
    """FlowSearch Sampler in SamplerCustomAdvanced's place gives the all-in-one node's latent."""
    import comfy.sample
    sn, sampling_nodes = env["sn"], env["inproc"].node_module("sampling_nodes")
    vp = sampling_nodes.InterpolantConverter.execute(env["model"], "vp", 0.1, 20.0, 2.0).result[0]
    sigmas = sampling_nodes.FlowSearchScheduler.execute(vp, 10, "paper").result[0]
    reward = env["rw"].JpegReward()
    sampler = sn.FlowSearchSampler.execute(reward, env["vae"], "svdd", 40, "", 0, 0, 0.0, "").result[0]
    z = torch.zeros(1, 16, 8, 8)
    out = comfy.sample.sample_custom(vp, z, 1.0, sampler, sigmas, env["cond"], env["cond"], z, seed=11, disable_pbar=True)
    (_, lat, *_), rep, _ = flowsearch(env, "SVDD", budget=40, seed=11, reward=reward)
    torch.testing.assert_close(out, lat["samples"], rtol=1e-5, atol=1e-5)
    assert rep["nfe"] <= 40


def test_replay_regenerates_the_chosen_candidate(env):
    (_, lat, *_, report, _), rep, _ = flowsearch(env, "RBF (paper)", budget=40, seed=2)
    out = env["sn"].FlowSearchReplay.execute(env["model"], env["cond"], env["latent"], report, -1, 0).result[0]
    torch.testing.assert_close(out["samples"], lat["samples"], rtol=1e-4, atol=1e-4)


def test_finish_steps_counted_in_budget(env):
    _, rep, _ = flowsearch(env, "RBF (paper)", budget=40, finish=4)
    assert rep["nfe"] <= 40 and rep["searches"][0]["options"]["finish_steps"] == 4


def test_errors_name_the_fix(env):
    import comfy.model_sampling
    eps = env["model"].clone()
    eps.add_object_patch("model_sampling", type("EPSModel", (comfy.model_sampling.ModelSamplingDiscrete,
                                                               comfy.model_sampling.EPS), {})())
    with pytest.raises(ValueError, match="flow-matching model"):
        flowsearch(env, model=eps)
    with pytest.raises(ValueError, match="smaller than"):
        flowsearch(env, budget=5)
    with pytest.raises(ValueError, match="latent has 4 channels but this model works on 16-channel.*EmptySD3Latent"):
        flowsearch(env, latent={"samples": torch.ones(1, 4, 8, 8)})       # a real SD latent: blamed on the latent
    import copy
    sd_vae = copy.copy(env["vae"])
    sd_vae.latent_channels = 4
    with pytest.raises(ValueError, match="VAE expects 4-channel latents but the model makes 16-channel"):
        env["sn"].FlowSearch.execute(env["model"], env["cond"], env["latent"], sd_vae, env["rw"].JpegReward(), 0,
                                     "RBF (paper)", 10, "vp", 40, "", 0, 0, 0.0, "")

    class NeedsText(env["rw"].Reward):
        name, needs_prompt = "text-reward", True

        def _score(self, x, prompts):
            return x.mean((1, 2, 3))
    with pytest.raises(ValueError, match="fill in the prompt"):
        flowsearch(env, reward=NeedsText())
    with pytest.raises(ValueError, match="JSON"):
        flowsearch(env, options="{n: 4")
    with pytest.raises(ValueError, match="unknown option"):
        flowsearch(env, options='{"bogus": 1}')


def test_memory_policy_loads_model_vae_and_reward_together(env, monkeypatch):
    """Every load the search makes names the whole group (FLUX, VAE, reward), so ComfyUI's free_memory never
    evicts FLUX to make room for scoring; the reward is never loaded on its own during the search."""
    import comfy.model_management as mm
    import importlib
    glue = importlib.import_module("comfyui_flowsearch.rewards.comfy_glue")
    import tiny_rewards
    reward = glue.manage(env["rw"].load_reward("aesthetic", tiny_rewards.tiny_rewards_dir() / "tiny-aesthetic"))
    rp = glue.patchers(reward)[0]
    calls, real = [], mm.load_models_gpu
    monkeypatch.setattr(mm, "load_models_gpu", lambda models, *a, **k: (calls.append(list(models)), real(models, *a, **k))[1])
    (_, _, _, report, _), rep, _ = flowsearch(env, "SVDD", budget=24, reward=reward)
    group_calls = [c for c in calls if rp in c]
    assert group_calls, "the reward was never loaded"
    assert all(len(c) >= 3 and any(p.model is env["model"].model for p in c) for c in group_calls), \
        "a load call named the reward without the diffusion model and the VAE"
    assert rep["nfe"] <= 24
    assert rp in mm.loaded_models() or any(lm.model is rp for lm in mm.current_loaded_models)
    assert reward.leaves()[0].before_use is not None  # the loader's own hook is restored afterwards


def test_summary_lines_of_reward_details(comfy_inproc):
    """The node's text shows a counting reward's targets (and where they came from) and the playground's held-out
    counter only where the reward has one."""
    line = comfy_inproc.node_module("search_nodes")._detail_line
    row = {"targets": {"airplanes": 6, "camels": 7}, "parsed_from_prompt": True,
           "counts": {"airplanes": 5, "camels": 7}, "rss": 1.0, "exact": False}
    assert line("count_grounding_dino", 0, row) == ("count_grounding_dino (image 0): target airplanes 6, camels 7 "
                                                    "(from the prompt) · counted airplanes 5, camels 7 · exact no")
    row = {"targets": "two red squares", "counts": {"red square": 2}, "counts_heldout": {"red square": 1},
           "exact": True, "exact_heldout": False}
    assert line("count_objects", 1, row) == ("count_objects (image 1): target two red squares · counted red square 2 "
                                             "· held-out red square 1 · exact yes / held-out no")


def test_empty_sd_latent_is_fixed_up_like_sampler_custom_advanced(env):
    """An empty 4-channel latent gets the model's 16 channels (comfy.sample.fix_empty_latent_channels), so
    FlowSearch gives the same latent as from the 16-channel empty latent; Replay accepts it too."""
    (_, lat16, *_, report, _), _, _ = flowsearch(env, budget=24, seed=4)
    (_, lat4, *_), rep4, _ = flowsearch(env, budget=24, seed=4, latent={"samples": torch.zeros(1, 4, 8, 8)})
    assert rep4["searches"][0]["latent_shape"] == [16, 8, 8]
    torch.testing.assert_close(lat4["samples"], lat16["samples"], rtol=0, atol=0)
    out = env["sn"].FlowSearchReplay.execute(env["model"], env["cond"], {"samples": torch.zeros(1, 4, 8, 8)}, report,
                                             -1, 0).result[0]
    torch.testing.assert_close(out["samples"], lat16["samples"], rtol=1e-4, atol=1e-4)


def test_replay_refuses_a_latent_of_another_size(env):
    (*_, report, _), _, _ = flowsearch(env, budget=24, seed=1)
    with pytest.raises(ValueError, match=r"ran on 64×64 px .*this latent is 128×128 px.*width 64, height 64"):
        env["sn"].FlowSearchReplay.execute(env["model"], env["cond"], {"samples": torch.zeros(1, 16, 16, 16)},
                                           report, -1, 0)


def test_interpolant_specs_from_the_api_are_checked_like_the_converter(env):
    for spec, match in [("vp:5:1", "beta_min < beta_max"), ("vp:0:20", "beta_min < beta_max"),
                        ("vp:0.1:nan", "finite"), ("polynomial:nan", "exponent n")]:
        with pytest.raises(ValueError, match=match):
            flowsearch(env, interpolant=spec, budget=12, steps=4)
    _, rep, _ = flowsearch(env, interpolant="vp:0.2:10", budget=12, steps=4)   # a valid spec still runs
    assert rep["interpolant"] == "vp:0.2:10.0"


# ---- memory fit (nodes/memory.py): ComfyUI's own figures, monkeypatched capacities --------------------------

def _figures(env, latent=(16, 8, 8), reward=None):
    """W (weights), A (one candidate's activations), D (one decode), as nodes/memory.plan reads them."""
    import importlib
    glue = importlib.import_module("comfyui_flowsearch.rewards.comfy_glue")
    model, vae = env["model"], env["vae"]
    reward_w = sum(p.model_size() for p in glue.patchers(reward)) if reward is not None else 0
    w = model.model_size() + vae.model_size() + reward_w
    a = model.model.memory_required([1, *latent])
    d = vae.memory_used_decode([1, *latent], vae.vae_dtype)
    return w, a, d, reward_w


def _gpu(monkeypatch, env, total):
    """Make plan() treat the load device as a GPU of `total` bytes (the search itself still runs on the CPU)."""
    import comfy.model_management as mm
    memory = env["inproc"].node_module("memory")
    monkeypatch.setattr(memory, "is_cpu", lambda device: False)
    monkeypatch.setattr(mm, "get_total_memory", lambda dev=None, torch_total_too=False: total)
    monkeypatch.setattr(mm, "extra_reserved_memory", lambda: 0)


def test_gpu_fit_warning_appears_only_when_the_group_does_not_fit(env, monkeypatch):
    w, a, d, _ = _figures(env)
    _gpu(monkeypatch, env, w + a + d)                      # exactly one candidate per call fits: no warning
    _, rep, ui = flowsearch(env, budget=24)
    assert rep["warnings"] == [] and "⚠" not in ui["text"][0]
    _gpu(monkeypatch, env, w + a + d - 1)                  # one byte short: warned in the report and the text
    _, rep, ui = flowsearch(env, budget=24)
    assert len(rep["warnings"]) == 1 and "stream" in rep["warnings"][0]
    assert "⚠ FlowSearch memory: a 64×64 px search needs" in ui["text"][0]
    assert "smaller image" in rep["warnings"][0]            # a JPEG reward has no weights: the size is the fix


def test_gpu_fit_warning_names_max_batch_or_the_reward_that_fits(env, monkeypatch):
    w, a, d, _ = _figures(env)
    _gpu(monkeypatch, env, w + 3 * a + d)                  # max_batch 8 does not fit, 3 does
    _, rep, _ = flowsearch(env, budget=24, max_batch=8)
    assert "set max_batch to 3" in rep["warnings"][0]
    _, rep, _ = flowsearch(env, budget=24, max_batch=3)
    assert rep["warnings"] == []
    _, rep, _ = flowsearch(env, budget=24)                 # max_batch 0 (auto) sizes itself to fit: no warning
    assert rep["warnings"] == [] and rep["searches"][0]["options"]["max_batch"] == 3

    import importlib
    import tiny_rewards
    rglue = importlib.import_module("comfyui_flowsearch.rewards.comfy_glue")
    reward = rglue.manage(env["rw"].load_reward("aesthetic", tiny_rewards.tiny_rewards_dir() / "tiny-aesthetic"))
    w, a, d, rw = _figures(env, reward=reward)
    assert rw > 0
    _gpu(monkeypatch, env, w + a + d - rw // 2)            # without the reward's weights it would fit
    _, rep, _ = flowsearch(env, budget=24, reward=reward)
    assert f"reward '{reward.name}' takes" in rep["warnings"][0] and "use a reward whose weights take under" in \
        rep["warnings"][0]


def test_cpu_refuses_a_2048px_latent_under_a_small_memory_limit(env, monkeypatch):
    import comfy.model_management as mm
    monkeypatch.setattr(mm, "get_free_memory", lambda dev=None, torch_free_too=False:
                        (4 * 1024 ** 3, 4 * 1024 ** 3) if torch_free_too else 4 * 1024 ** 3)
    with pytest.raises(ValueError, match=r"2048×2048 px search needs .*only 4\.0 GB of RAM is free.*model evaluations "
                                         r"over 16,384 image tokens.*smaller image: at most about (\d+)×\1 px"):
        flowsearch(env, budget=12, steps=4, latent={"samples": torch.zeros(1, 16, 256, 256)})
    _, rep, _ = flowsearch(env, budget=12, steps=4)          # 64 px under the same limit runs
    assert rep["nfe"] <= 12 and rep["warnings"] == []
    w, a, d, _ = _figures(env)
    monkeypatch.setattr(mm, "get_free_memory", lambda dev=None, torch_free_too=False: 2 * a + d)
    with pytest.raises(ValueError, match="set max_batch to 2"):   # a requested batch that does not fit
        flowsearch(env, budget=12, steps=4, max_batch=6)
