"""(Re)create the shipped workflows in example_workflows/ against a live server's /object_info.

    .build/venv/bin/python scripts/build_workflows.py
File names and order: host.WORKFLOW_FILES. Model file names are those ComfyUI users have
(flux1-schnell.safetensors, ae.safetensors, clip_l.safetensors, t5xxl_*.safetensors) and carry their download
URLs (`properties.models`, for the frontend's missing-model dialog); reward folders are named as README documents.
Tests and the demo swap in tiny stand-ins by the rule in scripts/host.py. Thumbnails (same-name .jpg):
scripts/render_thumbnails.py."""
import os
import sys

import host
from workflow_builder import BYPASS, Workflow, combo_options

sys.path.insert(0, host.ROOT)
from playground.harness import SETTINGS  # noqa: E402

GROUPS = {"Loaders": [1], "Search": [2, 3], "Outputs": [4, 5]}

HF = "https://huggingface.co"
MODELS = {
    "flux1-schnell.safetensors": (f"{HF}/black-forest-labs/FLUX.1-schnell/resolve/main/flux1-schnell.safetensors",
                                  "diffusion_models"),
    "flux1-dev.safetensors": (f"{HF}/black-forest-labs/FLUX.1-dev/resolve/main/flux1-dev.safetensors",
                              "diffusion_models"),
    "ae.safetensors": (f"{HF}/black-forest-labs/FLUX.1-schnell/resolve/main/ae.safetensors", "vae"),
    "clip_l.safetensors": (f"{HF}/comfyanonymous/flux_text_encoders/resolve/main/clip_l.safetensors",
                           "text_encoders"),
    "t5xxl_fp16.safetensors": (f"{HF}/comfyanonymous/flux_text_encoders/resolve/main/t5xxl_fp16.safetensors",
                               "text_encoders"),
    "t5xxl_fp8_e4m3fn.safetensors": (
        f"{HF}/comfyanonymous/flux_text_encoders/resolve/main/t5xxl_fp8_e4m3fn.safetensors", "text_encoders"),
}


def models(*names):
    return [{"name": n, "url": MODELS[n][0], "directory": MODELS[n][1]} for n in names]


def flux_files(dev=False, t5="t5xxl_fp16.safetensors"):
    unet = "flux1-dev.safetensors" if dev else "flux1-schnell.safetensors"
    return (f"**Model files** (the missing-model dialog offers them): `models/diffusion_models/{unet}`, "
            f"`models/text_encoders/clip_l.safetensors` and `{t5}`, `models/vae/ae.safetensors`.")


SEARCH_SETTINGS = """**FlowSearch settings**
* **preset**: RBF (paper) = Rollover Budget Forcing, the best quality per NFE. SVDD / SMC / SoP / CoDe: the \
paper's particle baselines. Best-of-N: N complete images, keep the best. Noise search: search over start noise.
* **nfe_budget**: model evaluations to spend (one FLUX forward per candidate). Time grows linearly with it. \
The paper uses 500 over 10 steps; 100 already matches Best-of-N at 500 for RBF.
* **steps**: denoising steps (paper: 10). **interpolant**: vp (paper: more diverse candidates) or linear.
* **prompt**: wired from the Prompt node, so the reward judges the text you generate from.
* **max_batch**: candidates per model call (0 = from free memory; results do not depend on it).
* **finish_steps**: clean-up steps for the chosen image (0 for schnell, 4–8 for FLUX.1-dev).
* **guidance_scale**: gradient guidance for differentiable rewards (aesthetic, CLIP, PickScore, ImageReward).
* **options**: advanced method options as JSON, e.g. `{"n": 2, "init_noises": 25}` (README: methods).
* **seed**: the same seed gives the same result; the report lists every candidate's seed and lineage \
(FlowSearch Replay regenerates any of them).

After a run the FlowSearch node shows the summary and every candidate's score."""


def header(title, vram, time_, outputs):
    return f"## {title}\n\n* **VRAM**: {vram}\n* **Time**: {time_}\n* **Outputs**: {outputs}\n"


def outputs_text(name):
    return (f"best image → `ComfyUI/output/flowsearch/{name}_00001_.png`; candidates and the reward plot are "
            "previews only (not saved). To save every candidate at full size, select the purple **Save all "
            "candidates** node and press Ctrl+B.")


# ---------------------------------------------------------------------------------------------- building blocks
def flux_loaders(w, dev=False, weight_dtype="default", t5="t5xxl_fp16.safetensors"):
    unet_file = "flux1-dev.safetensors" if dev else "flux1-schnell.safetensors"
    unet = w.node("UNETLoader", [unet_file, weight_dtype], col=1, models=models(unet_file))
    clip = w.node("DualCLIPLoader", ["clip_l.safetensors", t5, "flux", "default"], col=1,
                  models=models("clip_l.safetensors", t5))
    vae = w.node("VAELoader", ["ae.safetensors"], col=1, models=models("ae.safetensors"))
    return unet, clip, vae


def prompt_nodes(w, prompt, clip, dev=False, size=(1024, 1024), batch=1):
    """One Prompt node wired to CLIPTextEncode (and to the reward), FluxGuidance for dev, the empty latent."""
    text = w.node("PrimitiveStringMultiline", [prompt], col=2, size=(340, 130), title="Prompt")
    cond = w.node("CLIPTextEncode", [prompt], col=2, size=(340, 90), clip=clip, text=(text, 0))
    if dev:
        cond = w.node("FluxGuidance", [3.5], col=2, conditioning=(cond, 0))
    latent = w.node("EmptySD3LatentImage", [size[0], size[1], batch], col=2, title="Image size")
    return text, cond, latent


def search_outputs(w, fs, name):
    """Best image saved; candidates and plot previewed; a bypassed Save Image for every candidate."""
    w.node("SaveImage", [f"flowsearch/{name}"], col=4, size=(400, 420), images=(fs, 0), title="Best image")
    w.node("SaveImage", [f"flowsearch/{name}_candidates"], col=4, size=(400, 100), images=(fs, 2), mode=BYPASS,
           title="Save all candidates (off: Ctrl+B turns it on)")
    w.node("PreviewImage", [], col=5, size=(360, 280), images=(fs, 2), title="All final candidates (preview)")
    w.node("PreviewImage", [], col=5, size=(360, 280), images=(fs, 4), title="Reward vs NFE")


def flowsearch(w, model, cond, latent, vae, reward, text, *, preset, budget=500, steps=10, interpolant="vp",
               finish=0, guidance=0.0, options="", seed=42, grid="paper"):
    return w.node("FlowSearch", {"seed": seed, "preset": preset, "steps": steps, "interpolant": interpolant,
                                 "nfe_budget": budget, "prompt": "", "max_batch": 0, "finish_steps": finish,
                                 "guidance_scale": guidance, "options": options, "grid": grid},
                  col=3, size=(340, 760), model=model, positive=(cond, 0), latent=(latent, 0), vae=vae,
                  reward=(reward, 0), prompt=(text, 0))


def flux_search(oi, name, prompt, reward_node, note, *, size=(1024, 1024), weight_dtype="default",
                t5="t5xxl_fp16.safetensors", **search):
    """A FLUX.1-schnell FlowSearch graph: loaders + reward | prompt, latent | FlowSearch | outputs."""
    w = Workflow(oi, groups=GROUPS)
    w.markdown(note, col=0, size=(400, 760))
    unet, clip, vae = flux_loaders(w, weight_dtype=weight_dtype, t5=t5)
    reward = reward_node(w)
    text, cond, latent = prompt_nodes(w, prompt, (clip, 0), size=size)
    fs = flowsearch(w, (unet, 0), cond, latent, (vae, 0), reward, text, **search)
    search_outputs(w, fs, name)
    return w


def vqascore_reward(folder="clip-flant5-xxl", col=1, title=None):
    return lambda w: w.node("FlowSearchRewardLoaderVQAScore", [folder, "auto", "", "Yes", "auto", 4], col=col,
                            title=title)


# ---------------------------------------------------------------------------------------------- starters
STARTER_NOTE = """{header}
**Start here** (recommended first FLUX workflow, 12–24 GB cards). FLUX.1-schnell in fp8 (UNET Loader \
weight_dtype fp8_e4m3fn, T5 in fp8) at {px}×{px}; RBF spends {budget} model evaluations on candidates and keeps \
the one the **{reward}** likes best. {reward_blurb}

**Reward folder**: `ComfyUI/models/rewards/{folder}` ({folder_blurb}).

{files}

Out of memory? Lower the image size to 512, set max_batch to 2. Too slow? Lower nfe_budget (50 still helps).

{settings}"""


def starter(name, *, px, budget, reward_label, reward_blurb, folder, folder_blurb, vram, time_, reward_node,
            prompt):
    def build(oi):
        note = STARTER_NOTE.format(
            header=header(f"FLUX schnell starter: {reward_label} search", vram, time_, outputs_text(name)),
            px=px, budget=budget, reward=reward_label, reward_blurb=reward_blurb, folder=folder,
            folder_blurb=folder_blurb, files=flux_files(t5="t5xxl_fp8_e4m3fn.safetensors"), settings=SEARCH_SETTINGS)
        return flux_search(oi, name, prompt, reward_node, note, size=(px, px), weight_dtype="fp8_e4m3fn",
                           t5="t5xxl_fp8_e4m3fn.safetensors", preset="RBF (paper)", budget=budget)
    return build


starter_schnell_clip = starter(
    "starter_schnell_clip", px=512, budget=100, reward_label="CLIP score",
    reward_blurb="CLIP score measures how well the picture matches the prompt (0.9 GB).",
    folder="clip-vit-large-patch14", folder_blurb="all files of openai/clip-vit-large-patch14",
    vram="12 GB with ComfyUI's offloading, about 14 GB without (estimate)",
    time_="about 1 min on an RTX 4090-class card (estimate)",
    reward_node=lambda w: w.node("FlowSearchRewardLoaderCLIP", ["clip-vit-large-patch14", "clip_score", "auto", 8],
                                 col=1),
    prompt="a cozy reading nook with a sleeping cat on a stack of books, warm lamp light, watercolor")

starter_schnell_aesthetic = starter(
    "starter_schnell_aesthetic", px=768, budget=100, reward_label="LAION aesthetic score",
    reward_blurb="The aesthetic predictor scores how pleasing a picture looks, whatever the prompt (0.9 GB).",
    folder="laion-aesthetic", folder_blurb="openai/clip-vit-large-patch14 plus sac+logos+ava1-l14-linearMSE.pth",
    vram="16 GB (estimate; 12 GB with ComfyUI's offloading, slower)",
    time_="about 2 min on an RTX 4090-class card (estimate)",
    reward_node=lambda w: w.node("FlowSearchRewardLoaderAesthetic", ["laion-aesthetic", "auto", 8], col=1),
    prompt="a lighthouse on a rocky coast at sunset, dramatic clouds, oil painting")


# ---------------------------------------------------------------------------------------------- playground
PLAYGROUND_PROMPT = "four red squares, three blue crosses and two green squares"
PLAYGROUND_INTERPOLANT, PLAYGROUND_GRID = SETTINGS["interpolant"], SETTINGS["grid"]  # why: playground/harness.py

NOTE_PLAYGROUND = """{header}
**FlowSearch Playground**: inference-time search on a model small enough for any CPU. The Playground Loader \
gives a 2.3 M-parameter FLUX (ComfyUI's own Flux class) trained on pictures of coloured squares and crosses, its \
caption encoder (stock CLIPTextEncode) and a lossless pixel VAE. Nothing to download: the weights ship with the \
pack. Run this first to check the install.

The caption asks for exact counts ("{prompt}"); the **Count Objects Reward** scores −Σ(count − target)² \
(0 = every count right). A plain sample gets every count of a three-group caption right about 3 % of the time; \
search spends {budget} model evaluations to find one that does (README: RBF 0.76, SMC 0.86, Best-of-N 0.47 at \
100 NFE over 100 captions).

**What to look for**: the best image shows exactly the counts you asked for; the FlowSearch node lists the \
counts by the reward counter and by a stricter held-out counter (they should agree: no reward hacking) and \
every candidate's score. Compare with **{twin}** at the same budget. Change the caption (two or three groups, \
counts one..six, colours red/green/blue, shapes squares/crosses), the seed, the preset or the budget.

**Settings**: 10 steps on FLUX's linear path with a uniform grid (this model is not step-distilled like \
FLUX.1-schnell: the paper grid would return blurs). Latent 128×128 (the world is 32×32 pixels shown 4× enlarged).
"""


def playground_search(preset, name, twin, budget=100):
    def build(oi):
        w = Workflow(oi, groups=GROUPS)
        note = NOTE_PLAYGROUND.format(
            header=header(f"Playground: {preset} counting", "none (runs on the CPU; the model has 2.3 M parameters)",
                          "seconds on a laptop CPU", outputs_text(name)),
            prompt=PLAYGROUND_PROMPT, budget=budget, twin=twin)
        w.markdown(note, col=0, size=(400, 760))
        loader = w.node("FlowSearchPlaygroundLoader", ["playground_flux.safetensors"], col=1, size=(330, 120))
        reward = w.node("FlowSearchCountObjectsReward", [""], col=1, size=(330, 80))
        text = w.node("PrimitiveStringMultiline", [PLAYGROUND_PROMPT], col=2, size=(340, 120),
                      title="Prompt (caption)")
        cond = w.node("CLIPTextEncode", [PLAYGROUND_PROMPT], col=2, size=(340, 90), clip=(loader, 1),
                      text=(text, 0))
        latent = w.node("EmptySD3LatentImage", [128, 128, 1], col=2, title="Image size")
        fs = flowsearch(w, (loader, 0), cond, latent, (loader, 2), reward, text, preset=preset, budget=budget,
                        steps=SETTINGS["steps"], interpolant=PLAYGROUND_INTERPOLANT, grid=PLAYGROUND_GRID, seed=7)
        search_outputs(w, fs, name)
        return w
    return build


# ---------------------------------------------------------------------------------------------- FLUX, no search
NOTE_VP_SDE = """{header}
FLUX.1-schnell sampled with the **FlowSearch SDE on the VP interpolant** (Kim et al. 2025, §4). No search, no \
reward: the sampler the searches build on.

* **Interpolant Converter**: the same FLUX on a variance-preserving path (β 0.1 → 20) with the same marginals. \
Nothing is retrained. 'linear' keeps FLUX's own path.
* **FlowSearch Scheduler**: 10 steps on the paper's grid s_i = √(1 − (i/M)²): small steps near noise, where the \
image is decided.
* **FlowSearch SDE Sampler**: the ODE made stochastic without changing the marginals. diffusion 'square' with \
norm 3 is g(s) = 3s², the paper's choice. Raise the norm for more variety, lower it for fidelity; sde off gives \
the deterministic probability-flow ODE. The RandomNoise seed fixes both the start and the SDE noise.

With FLUX.1-dev add a FluxGuidance node (3.5) after CLIPTextEncode and use more steps.

{files}"""


def flux_schnell_vp_sde(oi):
    w = Workflow(oi, groups=GROUPS)
    w.markdown(NOTE_VP_SDE.format(header=header(
        "FLUX schnell: VP-SDE sampler (no search)", "24 GB (FLUX bf16; 12 GB with weight_dtype fp8_e4m3fn)",
        "10 NFE: about 10 s at 1024² (estimate)", "`ComfyUI/output/flowsearch/vp_sde_00001_.png`"),
        files=flux_files()), col=0, size=(400, 640))
    unet, clip, vae = flux_loaders(w)
    text = w.node("CLIPTextEncode", ["a red fox sitting in fresh snow, golden hour, detailed fur"], col=2,
                  size=(340, 140), clip=(clip, 0), title="Prompt")
    latent = w.node("EmptySD3LatentImage", [1024, 1024, 1], col=2, title="Image size")
    conv = w.node("FlowSearchInterpolantConverter", ["vp", 0.1, 20.0, 2.0], col=2, model=(unet, 0))
    noise = w.node("RandomNoise", [42], col=3)
    guider = w.node("BasicGuider", [], col=3, model=(conv, 0), conditioning=(text, 0))
    sampler = w.node("FlowSearchSDESampler", [True, "square", 3.0], col=3)
    sched = w.node("FlowSearchScheduler", [10, "paper"], col=3, model=(conv, 0))
    out = w.node("SamplerCustomAdvanced", [], col=4, size=(400, 140), noise=(noise, 0), guider=(guider, 0),
                 sampler=(sampler, 0), sigmas=(sched, 0), latent_image=(latent, 0))
    dec = w.node("VAEDecode", [], col=4, size=(400, 60), samples=(out, 0), vae=(vae, 0))
    w.node("SaveImage", ["flowsearch/vp_sde"], col=5, size=(360, 420), images=(dec, 0))
    return w


# ---------------------------------------------------------------------------------------------- the paper's
VQA_PROMPT = "a green bench and a red car in front of a stone tower, the car is to the left of the bench"
PAPER_VQA = dict(vram="48 GB (FLUX bf16 24 GB + CLIP-FlanT5-XXL 22 GB; estimate)",
                 time_="≈ 11 min for 500 NFE at 1024² (paper: 635 s on an RTX A6000)")


def _paper_vqa(name, title, blurb, preset, options=""):
    def build(oi):
        note = (header(title, PAPER_VQA["vram"], PAPER_VQA["time_"], outputs_text(name)) + "\n" + blurb
                + "\n\n**Reward folder**: `ComfyUI/models/rewards/clip-flant5-xxl` (README; BLIP-2 / InstructBLIP / "
                "Qwen2.5-VL folders work too; CLIP-FlanT5-XL needs 6 GB).\n\n" + flux_files() + "\n\n"
                + SEARCH_SETTINGS)
        return flux_search(oi, name, VQA_PROMPT, vqascore_reward(), note, preset=preset, options=options)
    return build


rbf_vqascore = _paper_vqa("rbf_vqascore", "Paper: RBF with VQAScore",
                          "Compositional text-to-image with Rollover Budget Forcing and VQAScore (the paper's main "
                          "experiment: VQAScore 0.925 vs 0.879 for Best-of-N at 500 NFE). The reward is the "
                          "probability that a vision-language model answers 'Yes' to 'Does this figure show "
                          "\"<prompt>\"?'.", "RBF (paper)")
smc_vqascore = _paper_vqa("smc_vqascore", "Paper baseline: SMC with VQAScore",
                          "Sequential Monte Carlo (DAS-style): 50 particles, each step re-weighted by "
                          "exp(Δreward/β) and resampled when the effective sample size drops (β = 0.1 as in the "
                          "paper). Options: n, beta, ess_threshold, potential.", "SMC")
svdd_vqascore = _paper_vqa("svdd_vqascore", "Paper baseline: SVDD with VQAScore",
                           "SVDD: 2 chains; at each step draw 25 candidates per chain and keep the best (paper: "
                           "0.915 VQAScore at 500 NFE with VP-SDE). Options: n, k.", "SVDD")
sop_vqascore = _paper_vqa("sop_vqascore", "Paper baseline: Search over Paths with VQAScore",
                          "Search over Paths: run 2 ODE paths to t = 0.12, then repeatedly re-noise each 5 times "
                          "forward by 0.78 and solve back by 0.81, keeping the best. Options: n, k, t0, delta_f, "
                          "delta_b, ode_steps.", "SoP")
bon_baseline = _paper_vqa("bon_baseline", "Paper baseline: Best-of-N with VQAScore",
                          "Best-of-N: the budget buys N = budget / steps complete images and the best one is kept "
                          "(50 images at 500 NFE). Compare its scores with RBF's to see what search buys you at "
                          "the same cost.", "Best-of-N")


def rbf_counting(oi):
    name = "rbf_counting"
    note = (header("Paper: RBF counting (six airplanes, seven camels)",
                   "28 GB (FLUX bf16 24 GB + GroundingDINO 0.5 GB + SAM 0.2 GB; estimate)",
                   "≈ 10 min for 500 NFE at 1024² (estimate)", outputs_text(name))
            + "\nQuantity-aware generation. The reward is minus the squared count error (−RSS) from GroundingDINO, "
            "with SAM masks to remove duplicate boxes (paper §7.3: RBF reaches 80 % exact counts at 500 NFE vs "
            "58 % for Best-of-N). class_names and counts are separate inputs, one count per name; names must be "
            "the words the detector should find. sam 'none' uses box de-duplication only.\n\n**Reward folders**: "
            "`models/rewards/grounding-dino-base`, `models/rewards/sam-vit-base`.\n\n" + flux_files() + "\n\n"
            + SEARCH_SETTINGS)
    reward = lambda w: w.node("FlowSearchRewardLoaderCounting",  # noqa: E731
                              ["grounding-dino-base", "sam-vit-base", "airplanes, camels", "6, 7", 0.2, 0.2, "hard",
                               "auto", 4], col=1)
    return flux_search(oi, name, "Six airplanes flying over a desert with seven camels walking below", reward, note,
                       preset="RBF (paper)")


def rbf_dps_aesthetic(oi):
    name = "rbf_dps_aesthetic"
    note = (header("Paper: RBF + gradient guidance, aesthetic",
                   "32 GB (FLUX bf16 + gradients through the VAE and the predictor; estimate)",
                   "≈ 20 min for 500 NFE at 1024² (estimate: guidance about doubles an NFE)", outputs_text(name))
            + "\nAesthetic generation with RBF plus gradient guidance (paper App. E: RBF+DPS 7.17 aesthetic vs "
            "6.44 for DPS alone). guidance_scale > 0 adds the reward's gradient to every SDE step; it needs a "
            "differentiable reward such as the LAION aesthetic predictor and more memory. Start around 10–50 and "
            "lower it if images look over-sharpened.\n\n**Reward folder**: `models/rewards/laion-aesthetic`.\n\n"
            + flux_files() + "\n\n" + SEARCH_SETTINGS)
    reward = lambda w: w.node("FlowSearchRewardLoaderAesthetic", ["laion-aesthetic", "auto", 8], col=1)  # noqa: E731
    return flux_search(oi, name, "a fluffy red panda sitting on a mossy branch", reward, note, preset="RBF (paper)",
                       guidance=20.0)


def score_only(oi):
    w = Workflow(oi, groups=GROUPS)
    w.markdown(header("Score images with held-out rewards", "24 GB (FLUX bf16, then InstructBLIP-XXL 24 GB; "
                      "ComfyUI swaps them; estimate)", "under 1 min (estimate)",
                      "`ComfyUI/output/flowsearch/scored_*.png`; the scores are shown on the Score Images nodes")
               + "\nScore-only evaluation: generate (or load) images and score them with held-out rewards, as the "
               "paper does (InstructBLIP VQAScore for compositional prompts, aesthetic for quality). Score Images "
               "takes any IMAGE batch and a REWARD, shows one score per image on the node and outputs them (FLOAT "
               "list and JSON). Swap the KSampler for a Load Image node to score your own images.\n\n**Reward "
               "folders**: `models/rewards/instructblip-flan-t5-xxl`, `models/rewards/laion-aesthetic`.\n\n"
               + flux_files(), col=0, size=(400, 560))
    unet, clip, vae = flux_loaders(w)
    held = vqascore_reward("instructblip-flan-t5-xxl", title="Held-out: InstructBLIP VQAScore")(w)
    aes = w.node("FlowSearchRewardLoaderAesthetic", ["laion-aesthetic", "auto", 8], col=1)
    text, cond, latent = prompt_nodes(w, VQA_PROMPT, (clip, 0), batch=4)
    sample = w.node("KSampler", [7, 4, 1.0, "euler", "simple", 1.0], col=3,
                    model=(unet, 0), positive=(cond, 0), negative=(cond, 0), latent_image=(latent, 0))
    dec = w.node("VAEDecode", [], col=3, size=(340, 60), samples=(sample, 0), vae=(vae, 0))
    w.node("FlowSearchScoreImages", [""], col=4, size=(400, 200), images=(dec, 0), reward=(held, 0),
           prompt=(text, 0), title="Score: InstructBLIP")
    w.node("FlowSearchScoreImages", [""], col=4, size=(400, 200), images=(dec, 0), reward=(aes, 0),
           prompt=(text, 0), title="Score: aesthetic")
    w.node("SaveImage", ["flowsearch/scored"], col=5, size=(360, 420), images=(dec, 0))
    return w


def flux_dev_rbf(oi):
    w = Workflow(oi, groups=GROUPS)
    w.markdown(header("FLUX dev: RBF as a sampler, PickScore", "28 GB (FLUX.1-dev bf16 + PickScore 2 GB; estimate)",
                      "≈ 11 min for 500 NFE at 1024² (estimate)",
                      "best image → `ComfyUI/output/flowsearch/flux_dev_rbf_00001_.png`")
               + "\nFLUX.1-dev with RBF as a **SAMPLER** (FlowSearch Sampler in SamplerCustomAdvanced). Differences "
               "from schnell: FluxGuidance 3.5 on the conditioning (dev is guidance-distilled; no CFG, so still 1 "
               "NFE per candidate), 20 steps on the paper grid, and finish_steps = 8: dev's clean estimates at the "
               "noisy end of the VP grid are blurry, so the chosen candidate is finished with 8 deterministic steps "
               "to t = 0 (counted in the budget). The SAMPLER form composes with any GUIDER, NOISE and SIGMAS; the "
               "NOISE seed seeds the search.\n\n**Reward folder**: `models/rewards/PickScore_v1`.\n\n"
               + flux_files(dev=True) + " FLUX.1-dev has its own (non-commercial) licence.", col=0, size=(400, 600))
    unet, clip, vae = flux_loaders(w, dev=True)
    reward = w.node("FlowSearchRewardLoaderCLIP", ["PickScore_v1", "pickscore", "auto", 8], col=1)
    text, cond, latent = prompt_nodes(w, "a lighthouse on a cliff at dusk, three seagulls in the sky", (clip, 0),
                                      dev=True)
    conv = w.node("FlowSearchInterpolantConverter", ["vp", 0.1, 20.0, 2.0], col=2, model=(unet, 0))
    noise = w.node("RandomNoise", [42], col=3)
    guider = w.node("BasicGuider", [], col=3, model=(conv, 0), conditioning=(cond, 0))
    method = _choice(oi, "FlowSearchSampler", "method", ("RBF (paper)", "rbf"))
    sampler = w.node("FlowSearchSampler", {"method": method, "nfe_budget": 500, "prompt": "", "max_batch": 0,
                                           "finish_steps": 8, "guidance_scale": 0.0, "options": ""},
                     col=3, size=(340, 300), reward=(reward, 0), vae=(vae, 0), prompt=(text, 0))
    sched = w.node("FlowSearchScheduler", [20, "paper"], col=3, model=(conv, 0))
    out = w.node("SamplerCustomAdvanced", [], col=4, size=(400, 140), noise=(noise, 0), guider=(guider, 0),
                 sampler=(sampler, 0), sigmas=(sched, 0), latent_image=(latent, 0))
    dec = w.node("VAEDecode", [], col=4, size=(400, 60), samples=(out, 0), vae=(vae, 0))
    w.node("SaveImage", ["flowsearch/flux_dev_rbf"], col=5, size=(360, 420), images=(dec, 0), title="Best image")
    return w


def _choice(oi, node, name, preferred):
    """The first of `preferred` that the server's combo offers (the method names changed once)."""
    spec = oi[node]["input"]
    options = combo_options(spec.get("required", {}).get(name) or spec.get("optional", {}).get(name))
    return next(p for p in preferred if p in options)


BUILDERS = {"starter_schnell_clip": starter_schnell_clip, "starter_schnell_aesthetic": starter_schnell_aesthetic,
            "playground_rbf_counting": playground_search("RBF (paper)", "playground_rbf_counting",
                                                         host.WORKFLOW_FILES["playground_bon_counting"][:-5]),
            "playground_bon_counting": playground_search("Best-of-N", "playground_bon_counting",
                                                         host.WORKFLOW_FILES["playground_rbf_counting"][:-5]),
            "flux_schnell_vp_sde": flux_schnell_vp_sde, "rbf_vqascore": rbf_vqascore, "bon_baseline": bon_baseline,
            "smc_vqascore": smc_vqascore, "svdd_vqascore": svdd_vqascore, "sop_vqascore": sop_vqascore,
            "rbf_counting": rbf_counting, "rbf_dps_aesthetic": rbf_dps_aesthetic, "score_only": score_only,
            "flux_dev_rbf": flux_dev_rbf}
assert list(BUILDERS) == list(host.WORKFLOW_FILES), "BUILDERS and host.WORKFLOW_FILES must list the same keys"


def main():
    os.makedirs(host.WORKFLOW_DIR, exist_ok=True)
    with host.Server(threads=1) as srv:
        oi = srv.object_info()
        for key, build in BUILDERS.items():
            path = host.workflow_path(key)
            build(oi).save(path)
            host.ui_to_api(host.load_workflow(path), oi)  # round-trip check
            print("wrote", os.path.relpath(path, host.ROOT))


if __name__ == "__main__":
    main()
