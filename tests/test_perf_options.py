"""Performance options of the ComfyUI glue: reward_resolution ("auto" by default: the reward's own input size), the
probed CPU decode layout and the memory policy's CPU short-cut (neither of the last two changes a decision)."""
import json
import sys
import time
from pathlib import Path

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
    cond = comfy_inproc.tiny_cond()
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


def test_auto_is_the_default_and_full_size_for_size_sensitive_rewards(env):
    (_, lat0, *_), rep0 = run(env)                                          # brightness: no input size
    (_, lat1, *_), rep1 = run(env, options='{"reward_resolution": "full"}')
    (_, lat2, *_), rep2 = run(env, options='{"reward_resolution": 0}')     # older reports' spelling of "full"
    assert env["rw"].ImageStatReward("brightness", "maximize").input_size is None
    assert "reward_resolution" not in rep0["searches"][0]["options"]
    assert rep1["searches"][0]["options"]["reward_resolution"] == "full"
    assert torch.equal(lat0["samples"], lat1["samples"]) and torch.equal(lat0["samples"], lat2["samples"])
    assert rep0["best_reward"] == rep1["best_reward"] == rep2["best_reward"]


def sized(env, size):
    r = env["rw"].ImageStatReward("brightness", "maximize")
    r.input_size = size
    return r


def test_auto_decodes_the_reward_copy_at_its_input_size(env, monkeypatch):
    seen = []
    real = env["vae"].decode
    monkeypatch.setattr(env["vae"], "decode", lambda z, *a, **k: (seen.append((tuple(z.shape[-2:]), z.shape[0])),
                                                                  real(z, *a, **k))[1])
    (img, lat, cand, *_), rep = run(env, px=128, reward=sized(env, 48))
    search, final = seen[:-2], seen[-2:]
    assert {s for s, _ in search} <= {(16, 16), (6, 6)}                    # 48 px: the smallest decode ≥ 48 px
    small = [n for s, n in search if s == (6, 6)]
    assert sum(small[:1]) and [s for s, _ in final] == [(16, 16)] * 2      # the check's first rows, outputs full
    assert img.shape == (1, 128, 128, 3) and cand.shape[1:] == (128, 128, 3)
    seen.clear()
    run(env, px=128, reward=sized(env, 256))                               # larger than the image: full size
    assert seen and all(s == (16, 16) for s, _ in seen)


class BoxVAE:
    """A scale-equivariant CPU 'VAE': nearest ×8 upsampling of the first 3 latent channels (area pooling of the latent
    commutes with it, so an image's mean brightness is the same at every decode size)."""
    device, latent_channels, downscale_ratio = "cpu", 16, 8

    def __init__(self):
        self.shapes = []
        self._flowsearch_channels_last = {"cpu": False}                     # layout already probed (no probe decodes)

    def decode(self, z):
        self.shapes.append(tuple(z.shape[-2:]))
        return torch.nn.functional.interpolate(z[:, :3], scale_factor=8, mode="nearest").movedim(1, -1)


class Mean(torch.nn.Module):
    input_size = 16

    def __call__(self, images, prompt=None):
        return images.mean((1, 2, 3))


class SizeFlipped(Mean):
    """Ranks small images the other way round: the cheap route does not keep its ranking."""

    def __call__(self, images, prompt=None):
        m = images.mean((1, 2, 3))
        return m if images.shape[1] >= 64 else -m


class Clamped(Mean):
    """Scores every image 0 at both sizes (as CLIP score, clamped at 0, does on the playground's candidates): ranks
    and best then agree by position alone, and a tie measures no ranking."""

    def __call__(self, images, prompt=None):
        return images.mean((1, 2, 3)) * 0


@pytest.mark.parametrize("reward,kept", [(Mean(), True), (SizeFlipped(), False), (Clamped(), False)])
def test_ranking_check_keeps_the_cheap_route_only_if_it_ranks_as_full(env, reward, kept):
    vae = BoxVAE()
    dec = env["glue"].LatentDecoder(vae, env["model"], reward_resolution="auto", input_size=16, check=(reward, None))
    g = torch.Generator().manual_seed(0)
    for _ in range(4):                                                     # 3 rows per call: decided in call 3
        x0 = torch.randn(3, 16, 8, 8, generator=g)
        out = dec(x0)
        assert out.shape[1] in (16, 64)
    assert dec.ranking.result["kept"] is kept
    assert dec.ranking.result["tied"] is isinstance(reward, Clamped)
    assert vae.shapes[-1] == ((2, 2) if kept else (8, 8))                  # after the check: cheap only if kept
    assert vae.shapes[:6] == [(8, 8), (2, 2)] * 3                          # first 8 rows: both ways, full returned
    explicit = env["glue"].LatentDecoder(vae, env["model"], reward_resolution=16, check=(reward, None))
    assert explicit.ranking is None                                       # an explicit size is the user's call


@pytest.mark.parametrize("cheap,kept", [
    ([0, 1, 2, 3, 4, 5, 6, 7], True),     # the same ranking
    ([1, 0, 2, 3, 4, 5, 6, 7], True),     # two low ones swapped: Spearman 0.976, same best
    ([0, 1, 2, 3, 4, 5, 7, 6], False),    # the best two swapped: Spearman 0.976 but another best
    ([2, 1, 0, 3, 4, 5, 6, 7], False),    # Spearman 0.905 < 0.95, same best
])
def test_ranking_check_needs_both_the_spearman_and_the_same_best(env, cheap, kept):
    """RankingCheck's rule on scripted scores (full-size scores 0..7, then the cheap route's): kept only with
    Spearman ≥ 0.95 *and* the same best candidate."""
    calls = iter([torch.arange(8.0), torch.tensor(cheap, dtype=torch.float64)])
    check = env["dec"].RankingCheck(lambda images, prompt: next(calls), None)
    check(torch.zeros(8, 16, 2, 2), torch.zeros(8, 16, 16, 3), [("cheap", lambda x0: x0)])
    rho = 1 - 6 * sum((i - c) ** 2 for i, c in enumerate(cheap)) / (8 * 63)     # Spearman without ties
    assert check.result["spearman"] == pytest.approx(rho) and check.result["kept"] is kept
    assert check.result["top1"] is (cheap[-1] == 7) and check.result["tied"] is False
    assert check.choice == (0 if kept else None) and check.result["route"] == "cheap"


@pytest.mark.parametrize("first,second,kept,choice", [
    ([7, 6, 5, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5, 6, 7], [False, True], 1),   # the cheapest fails, the next keeps
    ([0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1, 0], [True, False], 0),   # the cheapest passes: kept
    ([1, 0, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3, 4, 5, 6, 7], [True, True], 0),    # both pass: the cheapest (first) wins
    ([7, 6, 5, 4, 3, 2, 1, 0], [2, 1, 0, 3, 4, 5, 6, 7], [False, False], None),  # none passes: full size
])
def test_ranking_check_keeps_the_first_route_that_passes(env, first, second, kept, choice):
    """With several cheap routes (cheapest first; TAESD at the reward's size, then at the full latent) the check
    measures each on the same rows and keeps the first that passes, or none (then it reports the last route)."""
    scores = {"full": torch.arange(8.0), "small": torch.tensor(first, dtype=torch.float64),
              "large": torch.tensor(second, dtype=torch.float64)}
    check = env["dec"].RankingCheck(lambda images, prompt: scores[images], None)
    check(torch.zeros(8, 16, 2, 2), "full", [("small", lambda x0: "small"), ("large", lambda x0: "large")])
    assert check.choice == choice and check.failed is (choice is None)
    assert [r["route"] for r in check.result["routes"]] == ["small", "large"]
    assert [r["kept"] for r in check.result["routes"]] == kept
    assert check.result["route"] == ("small" if choice == 0 else "large")
    assert check.result["kept"] is (choice is not None)


def test_auto_rule_smallest_decode_not_smaller(env):
    dec = lambda size: env["glue"].LatentDecoder(env["vae"], env["model"], reward_resolution="auto", input_size=size)
    assert dec(224).reward_size(128, 128) == (28, 28)                      # 1024 px → 224 px
    assert dec(225).reward_size(128, 128) == (29, 29)                      # never below the reward's size
    assert dec(224).reward_size(128, 64) == (56, 28)                       # the shorter side reaches 224, aspect kept
    assert dec(224).reward_size(64, 96) == (28, 42)
    assert dec(224).reward_size(28, 28) == (28, 28) and dec(224).reward_size(16, 16) == (16, 16)
    assert dec(None).reward_size(128, 128) == (128, 128)                   # size-sensitive: full
    guided = env["glue"].LatentDecoder(env["vae"], env["model"], differentiable=True, reward_resolution="auto",
                                       input_size=64)
    assert guided.reward_size(128, 128) == (128, 128)                      # guidance: no check can run, so full
    assert env["glue"].LatentDecoder(env["vae"], env["model"], reward_resolution="full",
                                     input_size=64).reward_size(128, 128) == (128, 128)


def test_composite_takes_the_largest_part_and_full_if_any_is_size_sensitive(env):
    rw = env["rw"]
    a, b, jpeg = sized(env, 224), sized(env, 336), rw.JpegReward()
    assert rw.CompositeReward([(a, 1.0), (b, 0.5)]).input_size == 336
    assert rw.CompositeReward([(a, 1.0)]).input_size == 224
    assert rw.CompositeReward([(a, 1.0), (jpeg, 1.0)]).input_size is None
    from comfyui_flowsearch.rewards.count_objects import CountObjectsReward
    assert CountObjectsReward("two red squares").input_size is None       # counts cells of the world's own grid


def test_rewards_declare_their_processor_size():
    sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
    import tiny_rewards
    import rewards
    d = tiny_rewards.tiny_rewards_dir()
    want = {("clip_score", "tiny-clip"): 224, ("pickscore", "tiny-clip"): 224, ("aesthetic", "tiny-aesthetic"): 224,
            ("imagereward", "tiny-imagereward"): 224, ("vqascore", "tiny-clip-flant5"): 56,
            ("vqascore", "tiny-blip2-flant5"): 224}
    for (kind, folder), size in want.items():
        assert rewards.load_reward(kind, d / folder).input_size == size, (kind, folder)
    assert rewards.load_reward("vqascore", d / "tiny-qwen2.5-vl").input_size is None   # smart-resize: size-sensitive
    assert rewards.load_reward("jpeg").input_size is None


def test_reward_resolution_sizes_and_errors(env):
    glue = env["glue"]
    dec = glue.LatentDecoder(env["vae"], env["model"], reward_resolution=224)
    assert dec.reward_size(128, 128) == (28, 28) and dec.reward_size(128, 64) == (28, 14)
    assert dec.reward_size(16, 16) == (16, 16)
    split = env["opts"].split_options
    assert split({"n": 2, "reward_resolution": 256}) == ({"n": 2}, {"reward_resolution": 256, "reward_decoder": "vae"})
    assert split({}) == ({}, {"reward_resolution": "auto", "reward_decoder": "vae"})
    assert split({"reward_resolution": "full"})[1]["reward_resolution"] == "full"
    for bad in (-1, 2.5, True, 4, "half", None):
        with pytest.raises(ValueError, match="reward_resolution"):
            split({"reward_resolution": bad})
    with pytest.raises(ValueError, match="reward_decoder"):
        split({"reward_decoder": "fast"})


class SlowVAE:
    """A CPU 'VAE' whose decode is slower in one memory layout (to pin which layout the probe picks)."""
    device = "cpu"

    def __init__(self, slow_layout):
        self.slow, self.calls = slow_layout, 0

    def decode(self, z):
        self.calls += 1
        time.sleep(0.02 if z.is_contiguous(memory_format=self.slow) else 0.0)
        return z[:, :3].movedim(1, -1)


def test_cpu_layout_probe_picks_the_faster_and_is_cached_per_vae(env):
    z = torch.randn(2, 16, 8, 8)
    fast_cl, slow_cl = SlowVAE(torch.contiguous_format), SlowVAE(torch.channels_last)
    d1 = env["glue"].LatentDecoder(fast_cl, env["model"])
    d1(z)
    assert d1.channels_last and fast_cl.calls == 4 + 1                     # 2 timed decodes per layout, then one
    d1(z)
    env["glue"].LatentDecoder(fast_cl, env["model"])(z)                    # a new decoder: the same VAE's answer
    assert fast_cl.calls == 4 + 3
    d2 = env["glue"].LatentDecoder(slow_cl, env["model"])
    d2(z)
    assert not d2.channels_last and slow_cl.calls == 5                     # its own probe, not a global


def test_probed_layout_decode_matches_contiguous(env):
    """Whichever layout the probe chose, the decode is the stock one up to float rounding."""
    glue = env["glue"]
    dec = glue.LatentDecoder(env["vae"], env["model"])
    x0 = torch.randn(3, 16, 8, 8, generator=torch.Generator().manual_seed(1))
    out = dec(x0)
    with torch.no_grad():
        ref = env["vae"].decode(env["model"].model.latent_format.process_out(x0).contiguous())
    torch.testing.assert_close(out, ref.reshape(out.shape), rtol=0, atol=1e-5)


def test_cpu_memory_policy_loads_the_group_once(env, monkeypatch):
    """On a CPU load device ComfyUI never evicts, so the group is loaded once per search, not per decode."""
    import comfy.model_management as mm
    calls, real = [], mm.load_models_gpu
    monkeypatch.setattr(mm, "load_models_gpu", lambda models, *a, **k: (calls.append(len(models)), real(models, *a, **k))[1])
    _, rep = run(env, budget=24)
    assert 0 < rep["nfe"] <= 24
    assert sum(1 for n in calls if n >= 2) == 1  # the group (model + VAE) once; per decode only the VAE's own load


@pytest.fixture
def taef1_dir(vae_approx_dir):
    """A random-weight models/vae_approx/taef1_decoder.safetensors, visible only to this test."""
    from comfy.taesd.taesd import TAESD
    from safetensors.torch import save_file
    dec = TAESD(latent_channels=16).taesd_decoder   # comfy's ops leave weights uninitialised: fill them
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in dec.state_dict().items()}
    save_file(sd, str(vae_approx_dir / "taef1_decoder.safetensors"))
    return vae_approx_dir


def test_taesd_reward_decoder_scores_through_comfy_taesd(env, taef1_dir, monkeypatch):
    from comfy.taesd.taesd import TAESD
    vae_calls, taesd_calls = [], []
    real, real_t = env["vae"].decode, TAESD.decode
    monkeypatch.setattr(env["vae"], "decode", lambda z, *a, **k: (vae_calls.append(z.shape[0]), real(z, *a, **k))[1])
    vae_net = env["vae"].first_stage_model            # the test VAE is itself a TAESD: count only the other one
    monkeypatch.setattr(TAESD, "decode", lambda self, x: (self is not vae_net and taesd_calls.append(tuple(x.shape)),
                                                          real_t(self, x))[1])
    (img, _, cand, *_), rep = run(env, px=128, options='{"reward_decoder": "taesd"}', reward=sized(env, 48))
    sizes = [s[-2:] for s in taesd_calls]                                # the reward's copy: TAESD at auto size,
    assert set(sizes) <= {(6, 6), (16, 16)} and (6, 6) in sizes           # and at the full latent as a fallback
    check = rep["searches"][0]["options"]["reward_ranking_check"]
    assert [r["route"] for r in check["routes"]] == ["taesd 6x6", "taesd 16x16"]
    rows = {hw: sum(s[0] for s in taesd_calls if s[-2:] == hw) for hw in ((6, 6), (16, 16))}
    assert not check["kept"] and rows == {(6, 6): 8, (16, 16): 8}   # random pair: both measured on 8 rows, refused
    warning = next(w for w in rep["searches"][0]["warnings"] if "did not keep" in w)
    assert "taesd 6x6: Spearman" in warning and "taesd 16x16: Spearman" in warning
    assert "Set reward_decoder to 'vae' and reward_resolution to 'full'" in warning  # the fix that skips the check
    assert len(vae_calls) >= 2 and img.shape == (1, 128, 128, 3)          # outputs (and the check's rows): VAE
    assert rep["searches"][0]["options"]["reward_decoder"] == "taesd"
    (_, _, _, *_), rep_vae = run(env, px=128, reward=sized(env, 48))
    assert "reward_decoder" not in rep_vae["searches"][0]["options"]       # off by default


def test_taesd_routes_per_reward_resolution(env, taef1_dir):
    """TAESD's routes, cheapest first: auto tries the reward's size, then the full latent; an explicit size is only
    that size (the user's call, unchecked); "full" is the full latent. The VAE has one route, and none at full size."""
    def routes(res, decoder="taesd", size=48):
        d = env["glue"].LatentDecoder(env["vae"], env["model"], reward_resolution=res, input_size=size,
                                      reward_decoder=decoder)
        return [label for label, _ in d.routes(16, 16)]
    assert routes("auto") == ["taesd 6x6", "taesd 16x16"]
    assert routes("auto", size=256) == ["taesd 16x16"]                  # the image is not larger: one route
    assert routes(64) == ["taesd 8x8"] and routes("full") == ["taesd 16x16"]
    assert routes("auto", "vae") == ["vae 6x6"] and routes("full", "vae") == [] and routes("auto", "vae", 256) == []


def test_taesd_reward_decoder_without_the_file_names_it(env, monkeypatch):
    import folder_paths
    real_list = folder_paths.get_filename_list
    monkeypatch.setattr(folder_paths, "get_filename_list", lambda kind: [] if kind == "vae_approx" else real_list(kind))
    with pytest.raises(ValueError, match="taef1_decoder.*vae_approx"):
        run(env, options='{"reward_decoder": "taesd"}')


@pytest.mark.parametrize("kept", [True, False])
def test_ranking_check_outcome_reaches_the_report(env, kept):
    """The cheap decode's check is in every search's options; a fallback to full size is a warning on the node."""
    from types import SimpleNamespace
    row = {"route": "vae 8x8", "spearman": 0.99 if kept else 0.31, "top1": kept, "kept": kept}
    check = SimpleNamespace(ROWS=8, result={**row, "tied": False, "routes": [row]})
    results = [SimpleNamespace(options={}, warnings=[]) for _ in range(2)]
    env["glue"]._report_ranking_check(SimpleNamespace(ranking=check), results)
    for res in results:
        assert res.options["reward_ranking_check"]["kept"] is kept
        assert bool(res.warnings) is (not kept)
    if not kept:
        assert "vae 8x8: Spearman 0.31, same best: no" in results[0].warnings[0]
        assert "Set reward_resolution to 'full' to skip" in results[0].warnings[0]
    tied = [SimpleNamespace(options={}, warnings=[])]
    check.result = {"spearman": 1.0, "top1": True, "tied": True, "kept": False, "routes": [row]}
    env["glue"]._report_ranking_check(SimpleNamespace(ranking=check), tied)
    assert len(tied[0].warnings) == 1 and "same score at full size" in tied[0].warnings[0]
    assert "Spearman" not in tied[0].warnings[0]
    untouched = [SimpleNamespace(options={}, warnings=[])]
    env["glue"]._report_ranking_check(SimpleNamespace(ranking=None), untouched)
    assert untouched[0].options == {} and untouched[0].warnings == []


def test_the_node_text_names_the_kept_route(env):
    """After a run whose check kept a cheap route, the node's text says which one scored the candidates; a failed
    check says nothing there (its warning does), and a run without a check has no such line."""
    summary = env["sn"]._summary_text
    def report(check):
        run = {"method": "rbf", "candidate_rewards": [0.5], "chosen": 0, "options": {}}
        if check is not None:
            run["options"]["reward_ranking_check"] = check
        return {"searches": [run], "nfe": 10, "budget": 10, "best_reward": 0.5, "seconds": 1.0, "warnings": []}
    kept = {"route": "taesd 16x16", "spearman": 0.976, "top1": True, "tied": False, "kept": True, "routes": []}
    assert "reward copies: taesd from the 16x16 latent (ranking check: Spearman 0.98, same best)" in summary(
        report(kept))
    assert "reward copies" not in summary(report({**kept, "kept": False}))
    assert "reward copies" not in summary(report(None))
