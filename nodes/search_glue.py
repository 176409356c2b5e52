"""ComfyUI side of a search: the KSAMPLER function that adapts ComfyUI's model, VAE and reward to `sampling.search`.

The search itself is `sampling.search` (pure torch). Decoding, memory, progress, guidance and options live in their
own modules next to this one."""
import torch

from ..sampling.ksampler import clock_from_sigmas
from ..sampling.search import search as run_search
from .decoder import LatentDecoder
from .guidance import autograd_ready, straight_through
from .memory import CoResident, plan
from .progress import Progress
from .sampling_nodes import flow_parametrisation
from .search_options import GLUE_OPTIONS, split_options


def check_guidance(reward, guidance_scale):
    """Gradient guidance needs a differentiable reward or surrogate (checked before anything is loaded)."""
    if guidance_scale > 0 and reward.surrogate() is None:
        raise ValueError(f"Gradient guidance needs a differentiable reward; '{reward.name}' is not. Set "
                         "guidance_scale to 0, or use an aesthetic / CLIP / PickScore / ImageReward reward.")


def check_latent(patcher, latent_channels):
    """The latent must be the diffusion model's own (FLUX: 16 channels); empty ones are fixed up before this."""
    want = patcher.get_model_object("latent_format").latent_channels
    if want != latent_channels:
        raise ValueError(f"The latent has {latent_channels} channels but this model works on {want}-channel latents "
                         "(an SD1.5/SDXL latent into FLUX?): start from EmptySD3LatentImage (or Empty Latent Image), "
                         "or from a latent this model's VAE encoded.")


def reward_fn(reward, decoder, prompt):
    if reward.needs_prompt and not (prompt or "").strip():
        raise ValueError(f"The reward '{reward.name}' scores how well the image matches a text: fill in the prompt "
                         "field of the FlowSearch node (the same text as your CLIPTextEncode).")
    reward.check_prompt(prompt or None)   # too long, or no counts in it: refused before any NFE is spent

    def score(x0):
        return reward(decoder(x0), prompt or None)
    score.name = reward.name  # sampling.search names the reward when every candidate's reward is NaN or −inf
    return score


def sample_search(model, x, sigmas, extra_args=None, callback=None, disable=None, *, reward, vae, prompt, method,
                  nfe_budget, options, max_batch, finish_steps, guidance_scale, result_box):
    """KSAMPLER function: one reward-guided search per latent in the batch, on the grid given by `sigmas`."""
    check_guidance(reward, guidance_scale)
    if guidance_scale > 0:
        autograd_ready(vae.first_stage_model)
        for leaf in (reward.surrogate() or reward).leaves():
            autograd_ready(leaf.net)
        with torch.inference_mode(False):
            return _sample_search(model, x.clone(), sigmas, extra_args, reward=reward, vae=vae, prompt=prompt,
                                  method=method, nfe_budget=nfe_budget, options=options, max_batch=max_batch,
                                  finish_steps=finish_steps, guidance_scale=guidance_scale, result_box=result_box)
    return _sample_search(model, x, sigmas, extra_args, reward=reward, vae=vae, prompt=prompt, method=method,
                          nfe_budget=nfe_budget, options=options, max_batch=max_batch, finish_steps=finish_steps,
                          guidance_scale=guidance_scale, result_box=result_box)


def _sample_search(model, x, sigmas, extra_args, *, reward, vae, prompt, method, nfe_budget, options, max_batch,
                   finish_steps, guidance_scale, result_box):
    extra_args = extra_args or {}
    patcher = model.inner_model.model_patcher
    kind, interpolant = flow_parametrisation(patcher.get_model_object("model_sampling"), "FlowSearch")
    grid = [float(v) for v in clock_from_sigmas(sigmas, interpolant, kind)]
    options, glue_opts = split_options(options)
    memory = CoResident(patcher, vae, reward)
    decoder = LatentDecoder(vae, patcher, differentiable=guidance_scale > 0, memory=memory,
                            reward_resolution=glue_opts["reward_resolution"],
                            input_size=getattr(reward, "input_size", None),
                            reward_decoder=glue_opts["reward_decoder"], check=(reward, prompt))
    check_latent(patcher, x.shape[1])
    decoder.check(x.shape[1])
    fit = plan(patcher, vae, reward, tuple(x.shape[1:]), max_batch, nfe_budget * x.shape[0],
               decode_hw=decoder.reward_size(*x.shape[-2:]))
    max_batch = fit.batch
    score = reward_fn(reward.surrogate() if guidance_scale > 0 and not reward.differentiable else reward, decoder,
                      prompt)
    seed = int(extra_args.get("seed", 0))
    s_in = x.new_ones([1])
    progress = Progress(patcher, nfe_budget * x.shape[0])
    done = 0

    def denoise(xb, sig):
        with torch.no_grad():
            x0 = model(xb.detach(), sig.to(xb.dtype) * s_in, **extra_args)
        if not xb.requires_grad:
            return x0
        gain = 1.0 if kind == "linear" else (1.0 / (1.0 + sig.to(xb.dtype))).reshape(-1, *[1] * (xb.ndim - 1))
        return straight_through(x0, xb, gain)

    def on_event(event):
        progress({**event, "nfe": done + event["nfe"]})

    out, results = [], []
    with memory:
        for i in range(x.shape[0]):
            res = run_search(denoise, score, tuple(x.shape[1:]), method=method, nfe_budget=nfe_budget,
                             steps=len(grid) - 1, interpolant=interpolant, grid=grid, seed=seed + i,
                             max_batch=max_batch, callback=on_event, parametrisation=kind, finish_steps=finish_steps,
                             guidance_scale=guidance_scale, device=x.device, dtype=x.dtype, **options)
            done += res.nfe
            res.warnings[:0] = fit.warnings
            res.options.update({k: v for k, v in glue_opts.items() if v != GLUE_OPTIONS[k]})
            out.append(res.sample)
            results.append(res)
    _report_ranking_check(decoder, results)
    result_box["results"], result_box["decodes"] = results, decoder.decodes
    return torch.cat(out).to(x.dtype)


def _report_ranking_check(decoder, results):
    """Put the cheap reward decode's ranking check (decoder.RankingCheck) into each result, and warn on a fallback."""
    check = decoder.ranking.result if decoder.ranking is not None else None
    if check is None:
        return
    skip = ("Set reward_decoder to 'vae' and reward_resolution to 'full'" if getattr(decoder, "taesd", None) is not None
            else "Set reward_resolution to 'full'") + " to skip the check."
    for res in results:
        res.options["reward_ranking_check"] = dict(check)
        if check.get("tied"):
            res.warnings.append(
                f"The reward gave the first {decoder.ranking.ROWS} candidates one and the same score at full size, "
                "so the check of the cheap reward decode measured nothing and they were scored at full size from "
                f"then on. {skip}")
        elif not check["kept"]:
            measured = "; ".join(f"{r['route']}: Spearman {r['spearman']:.2f}, same best: "
                                 f"{'yes' if r['top1'] else 'no'}" for r in check["routes"])
            res.warnings.append(
                f"The cheap reward decode did not keep the reward's ranking on the first {decoder.ranking.ROWS} "
                f"candidates ({measured}), so they were scored at full size from then on. {skip}")
