"""The learned playground decoder (playground/train_decoder.py): ComfyUI's TAESD architecture trained to decode the
playground latent. It loads through the stock comfy.sd.VAE, reproduces the codec's pictures (also off its training
size), and the node's ranking check decides on real playground candidates by the agreement it measures (issue 13)."""
import hashlib
import json
import os

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DECODER_DIR = os.path.join(ROOT, "playground", "weights", "decoder")


@pytest.fixture(scope="module")
def pg(comfy_inproc):
    import importlib
    glue = importlib.import_module("comfyui_flowsearch.playground.comfy_glue")
    codec = importlib.import_module("comfyui_flowsearch.playground.codec")
    world = importlib.import_module("comfyui_flowsearch.playground.world")
    return {"glue": glue, "codec": codec, "world": world, "vae": glue.load_learned_vae(),
            "dec": comfy_inproc.node_module("decoder"), "inproc": comfy_inproc}


def world_latents(pg, n, seed):
    _, imgs = pg["world"].batch(np.random.default_rng(seed), n)
    return pg["codec"].to_model_space(torch.from_numpy(imgs))


def psnr(a, b):
    return float(10 * torch.log10(1 / torch.mean((a.detach() - b) ** 2)))


def test_shipped_decoder_manifest_matches_the_file():
    manifest = json.load(open(os.path.join(DECODER_DIR, "decoder_manifest.json")))
    assert manifest["command"].startswith("python -m playground.train_decoder")
    assert manifest["final_loss_mean_last_100"] < manifest["first_loss"] / 10
    for name, info in manifest["files"].items():
        with open(os.path.join(DECODER_DIR, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == info["sha256"]


def test_loads_as_stock_taesd_and_reproduces_the_codec(pg):
    from comfy.taesd.taesd import TAESD
    vae, codec = pg["vae"], pg["codec"]
    assert isinstance(vae.first_stage_model, TAESD) and vae.latent_channels == 16
    assert vae.downscale_ratio == 8
    z = world_latents(pg, 6, 11)                                      # held-out world images
    raw = z / codec.FLUX_SCALE + codec.FLUX_SHIFT                     # what VAEDecode gets (Flux latent format)
    img = vae.decode(raw)
    want = pg["codec"].PixelShuffleCodec().decode(raw).add(1).div(2).clamp(0, 1).movedim(1, -1)
    assert img.shape == want.shape == (6, 128, 128, 3)
    assert psnr(img, want) > 30                                       # trained: ~35 dB (decoder_manifest.json)
    other = want.roll(1, 0)                                           # another world image is far away
    assert psnr(img, other) < 20
    down = torch.nn.functional.interpolate(raw, size=(8, 8), mode="area")   # auto's route for a 64 px reward
    small = vae.decode(down)
    assert small.shape == (6, 64, 64, 3)                              # an 8× conv decoder at any size
    exact = pg["codec"].PixelShuffleCodec().decode(down).add(1).div(2).clamp(0, 1).movedim(1, -1)
    assert exact.shape == small.shape and psnr(small, exact) > 30   # faithful off its training size (~40 dB)


def route_scores(vae, reward, x0, prompt, size):
    """The reward's scores of candidates decoded at full size and from the latent area-downsampled to `size`."""
    import comfy.latent_formats
    raw = comfy.latent_formats.Flux().process_out(x0)
    with torch.no_grad():
        full = reward(vae.decode(raw), prompt).double()
        cheap = reward(vae.decode(torch.nn.functional.interpolate(raw, size=size, mode="area")), prompt).double()
    return full, cheap


def test_the_ranking_check_decides_by_the_measured_agreement_on_playground_candidates(pg, tmp_path):
    """Through the node's LatentDecoder + RankingCheck on real playground candidates (Best-of-N clean estimates,
    learned decoder, a 64 px reward): the check's Spearman and top-1 equal an independent full-vs-cheap scoring of
    the first 8 candidates; a passing check decodes the rest from 8×8 latents, a failing one at full size. Cases
    are taken in order until both outcomes have been seen (bench/reward_agreement.py: this pair keeps the ranking
    in only part of the searches, mean Spearman 0.60)."""
    import comfy.latent_formats
    from types import SimpleNamespace
    import importlib
    sampling = importlib.import_module("comfyui_flowsearch.sampling")
    harness = importlib.import_module("comfyui_flowsearch.playground.harness")
    import tiny_rewards                                               # a tiny random CLIP whose processor is 64 px
    reward = importlib.import_module("comfyui_flowsearch.rewards").load_reward(
        "pickscore", tiny_rewards.clip_at_size(64, tmp_path))
    assert reward.input_size == 64
    play, vae = harness.Playground(), pg["vae"]
    patcher = SimpleNamespace(model=SimpleNamespace(latent_format=comfy.latent_formats.Flux()))
    real, seen = vae.decode, {}
    for case in harness.cases(24, seed=7):                           # both outcomes come early (5 s)
        x0 = sampling.search(play.denoiser(case), play.reward(case), play.shape, method="bon", nfe_budget=100,
                             seed=case[1], n=10, **harness.SETTINGS).candidates
        prompt = pg["world"].caption(case[0])
        full, cheap = route_scores(vae, reward, x0[:8], prompt, (8, 8))
        shapes = []
        vae.decode = lambda z, *a, **k: (shapes.append(tuple(z.shape[-2:])), real(z, *a, **k))[1]
        try:
            dec = pg["dec"].LatentDecoder(vae, patcher, reward_resolution="auto", input_size=64,
                                          check=(reward, prompt))
            first, rest = dec(x0[:8]), dec(x0[8:])
        finally:
            del vae.decode
        got = dec.ranking.result
        rho, top1 = pg["dec"].spearman(full, cheap), int(full.argmax()) == int(cheap.argmax())
        assert got["spearman"] == pytest.approx(rho, abs=1e-9) and got["top1"] == top1
        assert got["kept"] == (rho >= 0.95 and top1)
        assert first.shape == (8, 128, 128, 3) and shapes[0] == (16, 16)   # the check's rows: full size first
        if got["kept"]:
            assert rest.shape == (2, 64, 64, 3) and shapes[-1] == (8, 8)
        else:
            assert rest.shape == (2, 128, 128, 3) and shapes[-1] == (16, 16)
        seen.setdefault(got["kept"], case)
        if len(seen) == 2:
            break
    assert set(seen) == {True, False}, seen


@pytest.fixture
def learned_taef1(pg, vae_approx_dir):
    """The learned decoder as models/vae_approx/taef1_decoder.safetensors (ComfyUI's preview file layout), visible
    only to this test: what `"reward_decoder": "taesd"` loads through comfy.taesd."""
    pg["glue"].save_taesd_preview_file(str(vae_approx_dir / "taef1_decoder.safetensors"))
    return vae_approx_dir


def test_taesd_route_falls_back_to_the_full_latent_and_keeps_the_ranking(pg, learned_taef1, tmp_path):
    """`"reward_decoder": "taesd"` under auto on real playground candidates (exact codec as the VAE, the learned
    decoder as ComfyUI's TAESD, a 64 px reward): the check measures TAESD at the reward's size (8×8 latent) and at
    the full latent on the same 8 rows, each route's figures equal an independent scoring, and the full latent keeps
    the ranking in most searches where the 8×8 route does not (bench/reward_agreement.py: Spearman 0.97 vs 0.60)."""
    import comfy.latent_formats
    from types import SimpleNamespace
    import importlib
    sampling = importlib.import_module("comfyui_flowsearch.sampling")
    harness = importlib.import_module("comfyui_flowsearch.playground.harness")
    import tiny_rewards
    reward = importlib.import_module("comfyui_flowsearch.rewards").load_reward(
        "pickscore", tiny_rewards.clip_at_size(64, tmp_path))
    play, vae = harness.Playground(), pg["glue"].PlaygroundVAE()
    patcher = SimpleNamespace(model=SimpleNamespace(latent_format=comfy.latent_formats.Flux()))
    kept = {"taesd 8x8": 0, "taesd 16x16": 0}
    chosen = []
    for case in harness.cases(6, seed=7):
        x0 = sampling.search(play.denoiser(case), play.reward(case), play.shape, method="bon", nfe_budget=100,
                             seed=case[1], n=10, **harness.SETTINGS).candidates
        prompt = pg["world"].caption(case[0])
        dec = pg["dec"].LatentDecoder(vae, patcher, reward_resolution="auto", input_size=64, reward_decoder="taesd",
                                      check=(reward, prompt))
        first, rest = dec(x0[:8]), dec(x0[8:])
        got = dec.ranking.result
        with torch.no_grad():
            full = reward(dec(x0[:8], full=True), prompt).double()
            for row, fn in zip(got["routes"], (lambda z: dec._taesd(z, (8, 8)), lambda z: dec._taesd(z, (16, 16)))):
                cheap = reward(fn(x0[:8]), prompt).double()
                rho, top1 = pg["dec"].spearman(full, cheap), int(full.argmax()) == int(cheap.argmax())
                assert row["spearman"] == pytest.approx(rho, abs=1e-9) and row["top1"] == top1
                assert row["kept"] == (rho >= 0.95 and top1)
                kept[row["route"]] += row["kept"]
        assert first.shape == (8, 128, 128, 3)                         # the check's rows: full size
        size = {0: 64, 1: 128, None: 128}[dec.ranking.choice]
        assert rest.shape == (2, size, size, 3)
        chosen.append(got["route"] if got["kept"] else None)
    assert kept["taesd 16x16"] >= 5 and kept["taesd 16x16"] > kept["taesd 8x8"], (kept, chosen)
    assert "taesd 16x16" in chosen


def test_training_smoke_lowers_the_loss_reproducibly(tmp_path):
    from playground import train_decoder
    args = ["--steps", "12", "--batch", "4", "--crop", "4", "--lr", "1e-2", "--threads", "1"]
    runs = [train_decoder.main(args + ["--out", str(tmp_path / name)]) for name in ("a", "b")]
    files = [r["files"][train_decoder.FILE]["sha256"] for r in runs]
    assert files[0] == files[1], "same seed, same steps: the same decoder file"
    assert runs[0]["final_loss_mean_last_100"] < runs[0]["first_loss"]
    assert runs[0]["steps_run"] == 12 and runs[0]["command"].endswith("--steps 12 --batch 4 --crop 4 --lr 1e-2 "
                                                                       "--threads 1 --out " + str(tmp_path / "a"))


def test_the_benches_learned_counter_rewards_the_right_counts(pg):
    """bench/learned_counter.py (the agreement bench's learned reward): after a short training its −RSS is higher for
    a picture's own caption than for the same caption with one count changed, and it declares its 64 px input."""
    import importlib
    import importlib.util
    spec = importlib.util.spec_from_file_location("learned_counter", os.path.join(ROOT, "bench", "learned_counter.py"))
    learned_counter = importlib.util.module_from_spec(spec)      # not via sys.path: bench/playground.py would shadow
    spec.loader.exec_module(learned_counter)                     # the playground package for later tests
    world = pg["world"]
    net, stats = learned_counter.train(world, steps=300)
    assert stats["held_out_mse"] < 0.5
    reward = learned_counter.reward(importlib.import_module("comfyui_flowsearch.rewards"), world,
                                    importlib.import_module("comfyui_flowsearch.playground.counter"), net)
    assert reward.input_size == 64
    rng = np.random.default_rng(5)
    groups, imgs = world.batch(rng, 16)
    img = torch.from_numpy(imgs).repeat_interleave(4, 1).repeat_interleave(4, 2)    # the 128 px display
    right = reward(img, [world.caption(g) for g in groups])
    wrong_groups = [[world.Group(g[0].count % 6 + 1, g[0].colour, g[0].shape), *g[1:]] for g in groups]
    wrong = reward(img, [world.caption(g) for g in wrong_groups])
    assert right.shape == (16,) and bool((right <= 0).all())
    assert int((right > wrong).sum()) >= 14
