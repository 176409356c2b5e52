"""Does scoring a candidate on a smaller decode keep the reward's ranking? ("reward_resolution": "auto", issue 13)

    .build/venv/bin/python bench/reward_agreement.py [--groups 12] [--per-group 8] [--sizes 256 512]
    .build/venv/bin/python bench/reward_agreement.py --smoke      # 2 groups of 4, 128 px (seconds; CI)

A "search" here is a group of candidates a search would rank: the clean estimates of one Best-of-N run (the
`sampling.search` / FlowSearch KSAMPLER path). Each candidate is decoded twice through the node's own decoder
(nodes/decoder.py LatentDecoder): at full size, and at the reward's auto size (the smallest decode whose shorter side
is not below the reward's declared `input_size`). Every reward scores both; per group we take the Spearman rank
correlation of the two score vectors and whether the top-1 candidate is the same. Worlds:
  tiny      tiny random FLUX h64 + 16-channel random TAESD in ComfyUI, tiny random rewards through the real loaders
            (tests/fixtures/tiny_rewards.py folders), a text prompt;
  playground the trained playground FLUX (real learned images; playground/harness.py) decoded by the playground VAE
            (the exact pixel codec, 128 px in ComfyUI), caption prompts; rewards whose size is below 128 px
            (CLIP-FlanT5 56 px, and PickScore on tiny random CLIPs built at 64 and 32 px; CLIP score
            clamps at 0, which ties most of these candidates) are the ones auto shrinks there.
            The playground rows also score with a *learned* reward, a small CNN counter trained at the start
            (bench/learned_counter.py, ~40 s): a trained image model at 64 px whose ranking follows content.
  playground + learned decoder  the same candidates decoded by the learned TAESD-architecture decoder of the
            playground latent (playground/train_decoder.py, through the stock comfy.sd.VAE): a trained
            convolutional decoder, as a real VAE is.
  playground, TAESD route  the exact codec as the VAE, and the reward's copy through `"reward_decoder": "taesd"`:
            ComfyUI's comfy.taesd with the learned decoder written as models/vae_approx/taef1_decoder.safetensors
            (a cheaper decoder of the real latent, as taef1 is of FLUX's), at auto size and at the full latent
            (the check's two TAESD routes, cheapest first).
Target: mean Spearman ≥ 0.95 and the same top-1 in ≥ 90 % of groups. Prints the table last; writes
bench/results/reward_agreement.json."""
import argparse
import os
import sys
import tempfile
import types
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import comfy_env as ce  # noqa: E402
import torch  # noqa: E402

TINY = [("CLIP score", "clip_score", "tiny-clip"), ("PickScore", "pickscore", "tiny-clip"),
        ("HPSv2", "hpsv2", "tiny-hpsv2"), ("LAION aesthetic", "aesthetic", "tiny-aesthetic"),
        ("ImageReward", "imagereward", "tiny-imagereward"), ("VQAScore CLIP-FlanT5", "vqascore", "tiny-clip-flant5"),
        ("VQAScore BLIP-2", "vqascore", "tiny-blip2-flant5")]
PROMPT = "a photo of a red cat"


ROUTES = {"vae": ("auto", "vae"), "taesd": ("auto", "taesd"), "taesd full latent": ("full", "taesd")}


_CACHE = {}


def decoded(fn, g, key):
    """Decodes memoised per (VAE, group, route): every reward of a world scores the same images."""
    if key not in _CACHE:
        with torch.no_grad():
            _CACHE[key] = fn(g)
    return _CACHE[key]


def agreement(label, reward, groups, vae, patcher, dec, prompts, route="vae"):
    """Per group of candidate latents: Spearman(full-size, cheap-route scores) and top-1 agreement. `dec` is the
    node's decoder module (nodes/decoder.py): its LatentDecoder decodes (the cheap route is the first of its
    `routes`, what the runtime check tries first), its spearman is the one the check uses. route: "vae" = the
    downsampled latent through the VAE (auto); "taesd" = ComfyUI's TAESD at auto size; "taesd full latent"."""
    full = dec.LatentDecoder(vae, patcher, reward_resolution="full")
    resolution, decoder = ROUTES[route]
    cheap = dec.LatentDecoder(vae, patcher, reward_resolution=resolution, input_size=reward.input_size,
                              reward_decoder=decoder)
    h, w = groups[0].shape[-2:]
    routes = cheap.routes(h, w)
    row = {"reward": label, "input_size": reward.input_size, "latent": [h, w], "route": route,
           "groups": len(groups), "candidates": sum(g.shape[0] for g in groups)}
    if not routes:
        return {**row, "auto_latent": [h, w], "spearman": None, "top1": None, "note": "auto = full size here"}
    name, fn = routes[0]
    size = [int(v) for v in name.split()[-1].split("x")]
    rho, top, tied = [], [], 0
    with torch.no_grad():
        for i, (g, p) in enumerate(zip(groups, prompts)):
            a = reward(decoded(full, g, (id(vae), h, w, i)), p).double()
            b = reward(decoded(fn, g, (id(vae), h, w, i, name)), p).double()
            if bool((a == a[0]).all()):  # one full-size score for the whole group (a clamped reward): no ranking
                tied += 1
                continue
            rho.append(dec.spearman(a, b))
            top.append(int(a.argmax()) == int(b.argmax()))
    row.update(auto_latent=size, decode_pixels=size[0] * size[1] / (h * w), tied_groups=tied)
    if not rho:
        return {**row, "spearman": None, "top1": None, "note": "every group tied at full size: nothing measured"}
    return {**row, "spearman": sum(rho) / len(rho), "spearman_min": min(rho), "top1": sum(top) / len(top)}


def tiny_world(env, rw, px, n_groups, per, steps, clip_dirs):
    groups = []
    for g in range(n_groups):
        res = env.search_only("bon", budget=per * steps, px=px, reward=env.reward("brightness"), seed=100 + g,
                              steps=steps, options={"n": per})
        groups.append(res.candidates)
    d, dec = clip_dirs["tiny"], env.ip.node_module("decoder")
    rows = []
    for label, kind, folder in TINY:
        r = rw.load_reward(kind, d / folder)
        rows.append({"world": "tiny", "px": px, **agreement(label, r, groups, env.vae, env.model, dec,
                                                            [PROMPT] * len(groups))})
    r = rw.CompositeReward([(rw.load_reward("clip_score", d / "tiny-clip"), 1.0),
                            (rw.load_reward("vqascore", d / "tiny-clip-flant5"), 1.0)])
    rows.append({"world": "tiny", "px": px, **agreement("CLIP + CLIP-FlanT5 (composite)", r, groups, env.vae,
                                                        env.model, dec, [PROMPT] * len(groups))})
    return rows


def playground_world(env, rw, n_groups, per, clip_dirs, counter_steps):
    import comfy.latent_formats
    import sampling
    from playground.comfy_glue import PlaygroundVAE, load_learned_vae
    from playground.harness import SETTINGS, Playground, cases
    from playground import counter as pg_counter, world
    pg = Playground()
    patcher = types.SimpleNamespace(model=types.SimpleNamespace(latent_format=comfy.latent_formats.Flux()))
    groups, prompts = [], []
    for case in cases(n_groups, seed=7):
        res = sampling.search(pg.denoiser(case), pg.reward(case), pg.shape, method="bon", nfe_budget=per * 10,
                              seed=case[1], n=per, **SETTINGS)
        groups.append(res.candidates)
        prompts.append(world.caption(case[0]))
    d = clip_dirs["tiny"]
    import learned_counter
    net, counter = learned_counter.train(world, steps=counter_steps)
    print(f"  learned counter: {counter}", flush=True)
    rewards = (("learned counter (64 px)", learned_counter.reward(rw, world, pg_counter, net)),
               ("VQAScore CLIP-FlanT5", rw.load_reward("vqascore", d / "tiny-clip-flant5")),
               ("PickScore (64 px tiny)", rw.load_reward("pickscore", clip_dirs["clip64"])),
               ("PickScore (32 px tiny)", rw.load_reward("pickscore", clip_dirs["clip32"])),
               ("CLIP score (224 px)", rw.load_reward("clip_score", d / "tiny-clip")))
    rows, dec = [], env.ip.node_module("decoder")
    # the exact pixel codec, the learned TAESD-architecture decoder of the same latent (a real conv decoder), and
    # the codec scored through ComfyUI's TAESD route with the learned decoder as models/vae_approx/taef1_decoder
    ce.learned_taef1(tempfile.mkdtemp(prefix="flowsearch_vae_approx_"))
    worlds = (("playground", PlaygroundVAE(), "vae"), ("playground + learned decoder", load_learned_vae(), "vae"),
              ("playground, TAESD route", PlaygroundVAE(), "taesd"),
              ("playground, TAESD route", PlaygroundVAE(), "taesd full latent"))
    for name, vae, route in worlds:
        for label, r in rewards:
            rows.append({"world": name, "px": 128, **agreement(label, r, groups, vae, patcher, dec, prompts, route)})
            if label.startswith("learned counter"):
                rows[-1]["counter"] = counter
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=12)
    ap.add_argument("--per-group", type=int, default=8)
    ap.add_argument("--sizes", type=int, nargs="*", default=[256, 512], help="tiny-world sizes (none: playground only)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--no-playground", action="store_true")
    ap.add_argument("--counter-steps", type=int, default=1500, help="training steps of the learned counter (40 s)")
    ap.add_argument("--smoke", action="store_true", help="2 groups of 4 candidates, 128 px + playground (CI)")
    a = ap.parse_args()
    if a.smoke:
        a.groups, a.per_group, a.sizes, a.steps, a.counter_steps = 2, 4, [128], 2, 30
    env = ce.ComfyEnv(threads=1)
    rw = env.rw
    sys.path.insert(0, str(Path(ce.ROOT) / "tests" / "fixtures"))
    import tiny_rewards
    tmp = tempfile.mkdtemp(prefix="flowsearch_agreement_")
    dirs = {"tiny": tiny_rewards.tiny_rewards_dir(), "clip64": tiny_rewards.clip_at_size(64, tmp),
            "clip32": tiny_rewards.clip_at_size(32, tmp)}
    rows = []
    for px in a.sizes:
        n = a.groups if px <= 256 else max(2, a.groups // 2)
        rows += tiny_world(env, rw, px, n, a.per_group, a.steps, dirs)
        print(f"  tiny {px}px done", flush=True)
    if not a.no_playground:
        rows += playground_world(env, rw, a.groups, a.per_group, dirs, a.counter_steps)
    res = {"machine": env.machine(), "rows": rows, "command": "bench/reward_agreement.py " + " ".join(sys.argv[1:])}
    ce.save("reward_agreement", res)
    print(f"machine: {res['machine']}")
    print(f"{'world':>28} {'route':>17} {'px':>4} {'reward':>32} {'size':>5} {'auto':>7} {'grp':>4} {'cand':>5} {'spearman':>8} "
          f"{'min':>6} {'top1':>5} {'pixels':>6} verdict")
    for r in rows:
        if r["spearman"] is None:
            tied = "tied" in r["note"]
            print(f"{r['world']:>28} {r['route']:>17} {r['px']:>4} {r['reward']:>32} {str(r['input_size']):>5} "
                  f"{'full' if not tied else str(r['auto_latent'][0] * 8) + 'px':>7} {r['groups']:>4} "
                  f"{r['candidates']:>5} {'-':>8} {'-':>6} {'-':>5} {'-':>6} "
                  f"{'all groups tied: nothing measured' if tied else 'full size'}")
            continue
        ok = r["spearman"] >= 0.95 and r["top1"] >= 0.9
        print(f"{r['world']:>28} {r['route']:>17} {r['px']:>4} {r['reward']:>32} {str(r['input_size']):>5} "
              f"{r['auto_latent'][0] * 8:>4}px {r['groups']:>4} {r['candidates']:>5} {r['spearman']:>8.3f} "
              f"{r['spearman_min']:>6.3f} {r['top1']:>5.2f} {r['decode_pixels']:>6.3f} "
              f"{'kept' if ok else 'SHORT of target'}"
              f"{' (%d tied groups left out)' % r['tied_groups'] if r['tied_groups'] else ''}")
    print("target: mean Spearman >= 0.95 and the same top-1 in >= 90 % of groups (pixels = cheap/full latent area; "
          "groups whose full-size scores are all equal are left out: they measure no ranking)")


if __name__ == "__main__":
    main()
