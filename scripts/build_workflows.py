"""(Re)create the shipped workflows in workflows/ against a live server's /object_info.

    .build/venv/bin/python scripts/build_workflows.py
Model file names are those ComfyUI users have (flux1-schnell.safetensors, ae.safetensors, clip_l.safetensors,
t5xxl_fp16.safetensors); tests and the demo swap in tiny stand-ins by the rule in scripts/host.py."""
import os

import host
from workflow_builder import Workflow

WF_DIR = os.path.join(host.ROOT, "workflows")

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

Models: models/diffusion_models/flux1-schnell.safetensors, models/text_encoders/clip_l.safetensors and \
t5xxl_fp16.safetensors, models/vae/ae.safetensors."""


def flux_schnell_vp_sde(oi):
    w = Workflow(oi)
    unet = w.node("UNETLoader", ["flux1-schnell.safetensors", "default"], pos=(40, 60))
    clip = w.node("DualCLIPLoader", ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"], pos=(40, 220))
    vae = w.node("VAELoader", ["ae.safetensors"], pos=(40, 420))
    conv = w.node("FlowSearchInterpolantConverter", ["vp", 0.1, 20.0, 2.0], pos=(420, 60), model=(unet, 0))
    text = w.node("CLIPTextEncode", ["a red fox sitting in fresh snow, golden hour, detailed fur"], pos=(420, 280),
                  size=(360, 160), clip=(clip, 0))
    guider = w.node("BasicGuider", [], pos=(840, 60), model=(conv, 0), conditioning=(text, 0))
    sched = w.node("FlowSearchScheduler", [10, "paper"], pos=(840, 180), model=(conv, 0))
    sampler = w.node("FlowSearchSDESampler", [True, "square", 3.0], pos=(840, 320))
    noise = w.node("RandomNoise", [42], pos=(840, 480))
    latent = w.node("EmptySD3LatentImage", [1024, 1024, 1], pos=(840, 600))
    out = w.node("SamplerCustomAdvanced", [], pos=(1220, 60), size=(300, 120), noise=(noise, 0), guider=(guider, 0),
                 sampler=(sampler, 0), sigmas=(sched, 0), latent_image=(latent, 0))
    dec = w.node("VAEDecode", [], pos=(1220, 240), samples=(out, 0), vae=(vae, 0))
    w.node("SaveImage", ["flowsearch/vp_sde"], pos=(1560, 60), size=(400, 440), images=(dec, 0))
    w.note(NOTE_VP_SDE, pos=(40, 560), size=(740, 360))
    return w


WORKFLOWS = {"flux_schnell_vp_sde": flux_schnell_vp_sde}


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
