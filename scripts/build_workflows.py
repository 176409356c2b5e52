"""(Re)create the shipped workflows in workflows/ against a live server's /object_info.

    .build/venv/bin/python scripts/build_workflows.py
Model file names are those ComfyUI users have (flux1-schnell.safetensors, ae.safetensors, clip_l.safetensors,
t5xxl_fp16.safetensors) and reward folders are named as README documents; tests and the demo swap in tiny
stand-ins by the rule in scripts/host.py."""
import os
import sys

import host
from workflow_builder import Workflow

sys.path.insert(0, host.ROOT)
from playground.harness import SETTINGS  # noqa: E402

WF_DIR = os.path.join(host.ROOT, "workflows")

FLUX_FILES = """Models: models/diffusion_models/flux1-schnell.safetensors, models/text_encoders/clip_l.safetensors and \
t5xxl_fp16.safetensors, models/vae/ae.safetensors."""

SEARCH_SETTINGS = """FlowSearch settings:
• preset — RBF (paper): Rollover Budget Forcing, the best quality per NFE. SVDD / SMC / SoP / CoDe: the \
paper's particle baselines. Best-of-N: N complete images, keep the best. Noise search: search over start noise.
• nfe_budget — model evaluations to spend (one FLUX forward per candidate). The paper uses 500 over 10 steps; \
100 already matches Best-of-N at 500 for RBF. Time grows linearly with it.
• steps — denoising steps (paper: 10). interpolant — vp (paper: more diverse candidates) or linear.
• prompt — wired from the Prompt node, so the reward judges the same text you generate from.
• max_batch — candidates per model call (0 = from free memory; results do not depend on it).
• finish_steps — extra clean-up steps for the chosen image (0 for schnell, 4–8 for FLUX.1-dev).
• guidance_scale — gradient guidance for differentiable rewards (aesthetic, CLIP, PickScore, ImageReward).
• options — advanced method options as JSON, e.g. {"n": 2, "init_noises": 25} (README: methods).
• seed — fixes every random draw: the same seed gives the same result. The report lists every candidate's \
seed and lineage; FlowSearch Replay regenerates any of them.
Outputs: best image and latent, all final candidates, the JSON report and a reward-vs-NFE plot."""


def _note(text):
    return f"{text}\n\n{SEARCH_SETTINGS}\n\n{FLUX_FILES}"


def flux_head(w, prompt, dev=False, batch=1, latent_col=1):
    """Loaders, one Prompt node wired to CLIPTextEncode (and to the reward), the latent."""
    unet = w.node("UNETLoader", ["flux1-dev.safetensors" if dev else "flux1-schnell.safetensors", "default"], col=0)
    clip = w.node("DualCLIPLoader", ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"], col=0)
    vae = w.node("VAELoader", ["ae.safetensors"], col=0)
    text = w.node("PrimitiveStringMultiline", [prompt], col=1, size=(360, 150), title="Prompt")
    cond = w.node("CLIPTextEncode", [prompt], col=1, size=(360, 100), clip=(clip, 0), text=(text, 0))
    if dev:
        cond = w.node("FluxGuidance", [3.5], col=1, conditioning=(cond, 0))
    latent = w.node("EmptySD3LatentImage", [1024, 1024, batch], col=latent_col)
    return unet, vae, text, cond, latent


def flowsearch(w, name, head, reward, *, preset, budget=500, steps=10, interpolant="vp", finish=0, guidance=0.0,
               options="", seed=42, grid="paper"):
    unet, vae, text, cond, latent = head
    fs = w.node("FlowSearch", [seed, preset, steps, interpolant, budget, "", 0, finish, guidance, options, grid], col=2,
                size=(360, 420), model=(unet, 0), positive=(cond, 0), latent=(latent, 0), vae=(vae, 0),
                reward=(reward, 0), prompt=(text, 0))
    w.node("SaveImage", [f"flowsearch/{name}"], col=3, size=(420, 460), images=(fs, 0), title="Best image")
    w.node("SaveImage", [f"flowsearch/{name}_candidates"], col=4, size=(420, 300), images=(fs, 2),
           title="All final candidates")
    w.node("PreviewImage", [], col=4, size=(420, 300), images=(fs, 4), title="Reward vs NFE")
    w.node("PreviewAny", [], col=3, size=(420, 200), source=(fs, 3), title="Report (JSON)")
    return fs


# ---------------------------------------------------------------------------------------------- workflows
PLAYGROUND_PROMPT = "four red squares, three blue crosses and two green squares"
PLAYGROUND_INTERPOLANT, PLAYGROUND_GRID = SETTINGS["interpolant"], SETTINGS["grid"]  # why: playground/harness.py

NOTE_PLAYGROUND = """FlowSearch Playground: inference-time search on a model small enough for any CPU. \
The Playground Loader gives a 2.3 M-parameter FLUX (ComfyUI's own Flux class) trained on pictures of coloured \
squares and crosses, its caption encoder (stock CLIPTextEncode) and a lossless pixel VAE. Nothing to download: \
the weights ship with the pack.

The task is the paper's counting task in miniature: the caption asks for exact counts ("{prompt}"), \
and the Count Objects Reward scores −Σ(count − target)² (0 = every count right). A plain sample gets every count \
of a three-group caption right only about 3 % of the time; search spends {budget} model evaluations to find one \
that does (README: RBF 0.76, SMC 0.86, Best-of-N 0.47 at 100 NFE over 100 captions).

What to look for: the best image should show exactly the counts you asked for; the node's text and report list \
the counts by the reward counter and by a stricter held-out counter (they should agree: no reward hacking). \
Compare with the twin workflow at the same budget ({twin}). Change the caption (two or three groups, counts \
one..six, colours red/green/blue, shapes squares/crosses), the seed, the preset or the budget; a run takes seconds.

Settings: 10 steps on FLUX's linear path with a uniform grid. This model is not step-distilled like \
FLUX.1-schnell: its clean estimates are sharp only near the end, and the paper grid would return blurs.
Latent: EmptySD3LatentImage at 128×128 (the VAE is 8×, like FLUX's; the world is 32×32 pixels shown 4× enlarged).
Outputs: the best image goes to output/flowsearch/; candidates and the reward-vs-NFE plot are previews."""


def playground_head(w, prompt):
    """Playground loader (MODEL, CLIP, VAE), one Prompt node into CLIPTextEncode and the search, a 128² latent."""
    loader = w.node("FlowSearchPlaygroundLoader", ["playground_flux.safetensors"], col=0, size=(340, 120))
    text = w.node("PrimitiveStringMultiline", [prompt], col=1, size=(360, 120), title="Prompt (caption)")
    cond = w.node("CLIPTextEncode", [prompt], col=1, size=(360, 100), clip=(loader, 1), text=(text, 0))
    latent = w.node("EmptySD3LatentImage", [128, 128, 1], col=1)
    return loader, text, cond, latent


def playground_search(preset, name, twin, budget=100):
    def build(oi):
        w = Workflow(oi)
        loader, text, cond, latent = playground_head(w, PLAYGROUND_PROMPT)
        reward = w.node("FlowSearchCountObjectsReward", [""], col=1, size=(360, 80))
        widgets = [7, preset, SETTINGS["steps"], PLAYGROUND_INTERPOLANT, budget, "", 0, 0, 0.0, "", PLAYGROUND_GRID]
        fs = w.node("FlowSearch", widgets, col=2, size=(360, 420),
                    model=(loader, 0), positive=(cond, 0), latent=(latent, 0), vae=(loader, 2), reward=(reward, 0),
                    prompt=(text, 0))
        w.node("SaveImage", [f"flowsearch/{name}"], col=3, size=(420, 460), images=(fs, 0), title="Best image")
        w.node("PreviewImage", [], col=4, size=(420, 300), images=(fs, 2), title="All final candidates")
        w.node("PreviewImage", [], col=4, size=(420, 300), images=(fs, 4), title="Reward vs NFE")
        w.node("PreviewAny", [], col=3, size=(420, 200), source=(fs, 3), title="Report (JSON)")
        w.note(NOTE_PLAYGROUND.format(prompt=PLAYGROUND_PROMPT, budget=budget, twin=twin), col=0, size=(340, 620))
        return w
    return build


NOTE_VP_SDE = """FLUX.1-schnell sampled with the FlowSearch SDE on the VP interpolant (Kim et al. 2025, §4).

Interpolant Converter: runs the same FLUX on a variance-preserving path (β 0.1 → 20) with the same \
marginals. Nothing is retrained; the model is called at the equivalent linear time. 'linear' keeps FLUX's own path.

FlowSearch Scheduler: 10 steps on the paper's grid s_i = √(1 − (i/M)²): small steps near noise, where the \
image is decided. The last step jumps to the model's clean estimate.

FlowSearch SDE Sampler: the ODE made stochastic without changing the marginals. diffusion 'square' with \
norm 3 is g(s) = 3s², the paper's choice. Raise the norm for more variety, lower it for fidelity; sde off \
gives the deterministic probability-flow ODE. The seed in RandomNoise fixes both the start noise and the SDE \
noise, so the same seed gives the same image.

FLUX.1-schnell needs no guidance; with FLUX.1-dev add a FluxGuidance node (3.5) after CLIPTextEncode and \
use more steps (dev's clean estimates are blurry at the noisy end of the VP grid).

""" + FLUX_FILES


def flux_schnell_vp_sde(oi):
    w = Workflow(oi)
    unet = w.node("UNETLoader", ["flux1-schnell.safetensors", "default"], col=0)
    clip = w.node("DualCLIPLoader", ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"], col=0)
    vae = w.node("VAELoader", ["ae.safetensors"], col=0)
    conv = w.node("FlowSearchInterpolantConverter", ["vp", 0.1, 20.0, 2.0], col=1, model=(unet, 0))
    text = w.node("CLIPTextEncode", ["a red fox sitting in fresh snow, golden hour, detailed fur"], col=1,
                  size=(360, 160), clip=(clip, 0))
    noise = w.node("RandomNoise", [42], col=2)
    guider = w.node("BasicGuider", [], col=2, model=(conv, 0), conditioning=(text, 0))
    sampler = w.node("FlowSearchSDESampler", [True, "square", 3.0], col=2)
    sched = w.node("FlowSearchScheduler", [10, "paper"], col=2, model=(conv, 0))
    latent = w.node("EmptySD3LatentImage", [1024, 1024, 1], col=2)
    out = w.node("SamplerCustomAdvanced", [], col=3, size=(300, 140), noise=(noise, 0), guider=(guider, 0),
                 sampler=(sampler, 0), sigmas=(sched, 0), latent_image=(latent, 0))
    dec = w.node("VAEDecode", [], col=3, samples=(out, 0), vae=(vae, 0))
    w.node("SaveImage", ["flowsearch/vp_sde"], col=4, size=(420, 460), images=(dec, 0))
    w.note(NOTE_VP_SDE, col=0, size=(340, 520))
    return w


def rbf_vqascore(oi):
    w = Workflow(oi)
    head = flux_head(w, "a green bench and a red car in front of a stone tower, the car is to the left of the bench")
    reward = w.node("FlowSearchRewardLoaderVQAScore", ["clip-flant5-xxl", "auto", "", "Yes", "auto", 4], col=1)
    flowsearch(w, "rbf_vqascore", head, reward, preset="RBF (paper)")
    w.note(_note("Compositional text-to-image with Rollover Budget Forcing and VQAScore (the paper's main "
                 "experiment: VQAScore 0.925 vs 0.879 for Best-of-N at 500 NFE). The reward is the probability "
                 "that a vision-language model answers 'Yes' to 'Does this figure show \"<prompt>\"?'. Put the "
                 "CLIP-FlanT5 folder in models/rewards/clip-flant5-xxl (see README; BLIP-2 / InstructBLIP / "
                 "Qwen2.5-VL folders work too)."), col=0, size=(340, 560))
    return w


def rbf_counting(oi):
    w = Workflow(oi)
    head = flux_head(w, "Six airplanes flying over a desert with seven camels walking below")
    reward = w.node("FlowSearchRewardLoaderCounting", ["grounding-dino-base", "sam-vit-base", "airplanes, camels",
                                                       "6, 7", 0.2, 0.2, "hard", "auto", 4], col=1)
    flowsearch(w, "rbf_counting", head, reward, preset="RBF (paper)")
    w.note(_note("Quantity-aware generation: 'exactly six airplanes and seven camels'. The reward is minus the "
                 "squared count error (−RSS) from GroundingDINO, with SAM masks to remove duplicate boxes (paper "
                 "§7.3: RBF reaches 80% exact counts at 500 NFE vs 58% for Best-of-N). class_names and counts "
                 "are separate inputs, one count per name; names must be the words the detector should find. "
                 "sam 'none' uses box de-duplication only."), col=0, size=(340, 560))
    return w


def rbf_dps_aesthetic(oi):
    w = Workflow(oi)
    head = flux_head(w, "a fluffy red panda sitting on a mossy branch")
    reward = w.node("FlowSearchRewardLoaderAesthetic", ["laion-aesthetic", "auto", 8], col=1)
    flowsearch(w, "rbf_dps_aesthetic", head, reward, preset="RBF (paper)", guidance=20.0)
    w.note(_note("Aesthetic generation with RBF plus gradient guidance (paper App. E: RBF+DPS 7.17 aesthetic vs "
                 "6.44 for DPS alone). guidance_scale > 0 adds the reward's gradient to every SDE step; it needs a "
                 "differentiable reward such as the LAION aesthetic predictor (CLIP ViT-L/14 + MLP head in "
                 "models/rewards/laion-aesthetic) and more memory. Start around 10–50 and lower it if images "
                 "look over-sharpened."), col=0, size=(340, 560))
    return w


def _baseline(preset, name, blurb, budget=500, options=""):
    def build(oi):
        w = Workflow(oi)
        head = flux_head(w, "a green bench and a red car in front of a stone tower, the car is to the left of the bench")
        reward = w.node("FlowSearchRewardLoaderVQAScore", ["clip-flant5-xxl", "auto", "", "Yes", "auto", 4], col=1)
        flowsearch(w, name, head, reward, preset=preset, budget=budget, options=options)
        w.note(_note(blurb), col=0, size=(340, 560))
        return w
    return build


smc_vqascore = _baseline("SMC", "smc_vqascore", "Sequential Monte Carlo (DAS-style): 50 particles, each step "
                         "re-weighted by exp(Δreward/β) and resampled when the effective sample size drops (β = 0.1 "
                         "as in the paper). Options: n, beta, ess_threshold, potential.")
svdd_vqascore = _baseline("SVDD", "svdd_vqascore", "SVDD: 2 chains; at each step draw 25 candidates per chain and "
                          "keep the best (paper: 0.915 VQAScore at 500 NFE with VP-SDE). Options: n, k.")
sop_vqascore = _baseline("SoP", "sop_vqascore", "Search over Paths: run 2 ODE paths to t = 0.12, then repeatedly "
                         "re-noise each 5 times forward by 0.78 and solve back by 0.81, keeping the best. Options: "
                         "n, k, t0, delta_f, delta_b, ode_steps.")
bon_baseline = _baseline("Best-of-N", "bon_baseline", "Best-of-N baseline: the budget buys N = budget / steps complete "
                         "images and the best one is kept (50 images at 500 NFE). Compare its report with RBF's to "
                         "see what search buys you at the same cost.")


def score_only(oi):
    w = Workflow(oi)
    unet, vae, text, cond, latent = flux_head(
        w, "a green bench and a red car in front of a stone tower, the car is to the left of the bench", batch=4)
    sample = w.node("KSampler", [7, 4, 1.0, "euler", "simple", 1.0], col=2,
                    model=(unet, 0), positive=(cond, 0), negative=(cond, 0), latent_image=(latent, 0))
    dec = w.node("VAEDecode", [], col=2, samples=(sample, 0), vae=(vae, 0))
    held = w.node("FlowSearchRewardLoaderVQAScore", ["instructblip-flan-t5-xxl", "auto", "", "Yes", "auto", 4],
                  col=1, title="Held-out: InstructBLIP VQAScore")
    aes = w.node("FlowSearchRewardLoaderAesthetic", ["laion-aesthetic", "auto", 8], col=1)
    s1 = w.node("FlowSearchScoreImages", [""], col=3, images=(dec, 0), reward=(held, 0), prompt=(text, 0),
                title="Score: InstructBLIP")
    s2 = w.node("FlowSearchScoreImages", [""], col=3, images=(dec, 0), reward=(aes, 0), prompt=(text, 0),
                title="Score: aesthetic")
    w.node("SaveImage", ["flowsearch/scored"], col=4, size=(420, 460), images=(dec, 0))
    w.node("PreviewAny", [], col=4, source=(s1, 1), title="InstructBLIP scores (JSON)")
    w.node("PreviewAny", [], col=4, source=(s2, 1), title="Aesthetic scores (JSON)")
    w.note("Score-only evaluation: generate (or load) images and score them with held-out rewards, as the paper "
           "does (InstructBLIP VQAScore for compositional prompts, aesthetic for quality). Score Images takes any "
           "IMAGE batch and a REWARD and outputs one score per image plus a JSON string. Swap the KSampler for a "
           "LoadImage node to score your own images.\n\n" + FLUX_FILES, col=0, size=(340, 400))
    return w


def flux_dev_rbf(oi):
    w = Workflow(oi)
    unet, vae, text, cond, latent = flux_head(w, "a lighthouse on a cliff at dusk, three seagulls in the sky",
                                             dev=True, latent_col=3)
    reward = w.node("FlowSearchRewardLoaderCLIP", ["PickScore_v1", "pickscore", "auto", 8], col=1)
    conv = w.node("FlowSearchInterpolantConverter", ["vp", 0.1, 20.0, 2.0], col=2, model=(unet, 0))
    noise = w.node("RandomNoise", [42], col=2)
    guider = w.node("BasicGuider", [], col=2, model=(conv, 0), conditioning=(cond, 0))
    sampler = w.node("FlowSearchSampler", ["rbf", 500, "", 0, 8, 0.0, ""], col=2, size=(360, 300), reward=(reward, 0),
                     vae=(vae, 0), prompt=(text, 0))
    sched = w.node("FlowSearchScheduler", [20, "paper"], col=3, model=(conv, 0))
    out = w.node("SamplerCustomAdvanced", [], col=3, size=(300, 140), noise=(noise, 0), guider=(guider, 0),
                 sampler=(sampler, 0), sigmas=(sched, 0), latent_image=(latent, 0))
    dec = w.node("VAEDecode", [], col=3, samples=(out, 0), vae=(vae, 0))
    w.node("SaveImage", ["flowsearch/flux_dev_rbf"], col=4, size=(420, 460), images=(dec, 0))
    w.note("FLUX.1-dev with RBF as a SAMPLER (FlowSearch Sampler in SamplerCustomAdvanced). Differences from "
           "schnell: FluxGuidance 3.5 on the conditioning (dev is guidance-distilled; no CFG, so still 1 NFE per "
           "candidate), 20 steps on the paper grid, and finish_steps = 8: dev's clean estimates at the noisy end "
           "of the VP grid are blurry, so the chosen candidate is finished with 8 deterministic steps to t = 0 "
           "(counted in the budget). The reward here is PickScore (models/rewards/PickScore_v1). The SAMPLER form "
           "composes with any GUIDER, NOISE and SIGMAS; the NOISE seed seeds the search.\n\nModels: "
           "models/diffusion_models/flux1-dev.safetensors (FLUX.1-dev licence), text encoders and VAE as for "
           "schnell.", col=0, size=(340, 480))
    return w


WORKFLOWS = {"playground_rbf_counting": playground_search("RBF (paper)", "playground_rbf_counting",
                                                          "playground_bon_counting.json"),
             "playground_bon_counting": playground_search("Best-of-N", "playground_bon_counting",
                                                          "playground_rbf_counting.json"),
             "flux_schnell_vp_sde": flux_schnell_vp_sde, "rbf_vqascore": rbf_vqascore, "rbf_counting": rbf_counting,
             "rbf_dps_aesthetic": rbf_dps_aesthetic, "smc_vqascore": smc_vqascore, "svdd_vqascore": svdd_vqascore,
             "sop_vqascore": sop_vqascore, "bon_baseline": bon_baseline, "score_only": score_only,
             "flux_dev_rbf": flux_dev_rbf}


def main():
    with host.Server(threads=1) as srv:
        oi = srv.object_info()
        for name, build in WORKFLOWS.items():
            path = os.path.join(WF_DIR, f"{name}.json")
            build(oi).save(path)
            host.ui_to_api(host.load_workflow(path), oi)  # round-trip check
            print("wrote", os.path.relpath(path, host.ROOT))


if __name__ == "__main__":
    main()
