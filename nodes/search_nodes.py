"""FlowSearch Sampler (SAMPLER), FlowSearch (all-in-one) and FlowSearch Replay (V3 nodes; maths in sampling/)."""
import functools
import json
import time

import torch

import comfy.samplers
from comfy_api.latest import io, ui
from comfy_extras.nodes_custom_sampler import Guider_Basic

from ..sampling.sde import GRIDS
from ..sampling.search import replay as replay_candidate
from . import search_glue as glue
from .decoder import decode_images
from .reward_plot import reward_plot
from .search_options import METHODS, PRESETS, parse_options
from .sampling_nodes import CATEGORY, INTERPOLANT_CHOICES, convert_model, flow_parametrisation, grid_sigmas
from .types import REWARD

SEARCH_CATEGORY = f"{CATEGORY}/search"


def _common_inputs():
    return [
        io.Int.Input("nfe_budget", default=500, min=1, max=100000,
                     tooltip="Model evaluations the search may spend (paper: 500 = 50 per step over 10 steps). "
                             "One NFE = one FLUX forward pass for one candidate."),
        io.String.Input("prompt", default="", multiline=True,
                        tooltip="Text for text-aware rewards (VQAScore, CLIP, PickScore, ImageReward): use the same "
                                "prompt as your CLIPTextEncode. Ignored by image-only rewards."),
        io.Int.Input("max_batch", default=0, min=0, max=256,
                     tooltip="Candidates per model call; 0 = sized from free memory. Results do not depend on it."),
        io.Int.Input("finish_steps", default=0, min=0, max=100,
                     tooltip="Extra deterministic steps that take the chosen candidate to a clean image (counted in "
                             "the budget). 0 for FLUX.1-schnell (the paper); 4–8 for FLUX.1-dev, whose early clean "
                             "estimates are blurry."),
        io.Float.Input("guidance_scale", default=0.0, min=0.0, max=1000.0, step=0.1,
                       tooltip="Gradient guidance (paper App. E): pushes every step up the reward's gradient. Needs a "
                               "differentiable reward (aesthetic, CLIP, PickScore, ImageReward). 0 = off."),
        io.String.Input("options", default="", multiline=False,
                        tooltip='Advanced method options as JSON, e.g. {"n": 4, "k": 10} (see README: methods). '
                                '"reward_resolution": 224 decodes the candidates the reward scores at most 224 px '
                                'on the longer side (downsampled latent; several times cheaper decodes at 1024 px, '
                                'reward ranking approximate; 0 = full size, the default). See docs/performance.md.'),
    ]


def _search_args(method, nfe_budget, prompt, max_batch, finish_steps, guidance_scale, options, reward, vae):
    if reward is None:
        raise ValueError("Connect a REWARD (e.g. Load LAION Aesthetic Reward or JPEG Compressibility Reward).")
    return dict(reward=reward, vae=vae, prompt=prompt, method=method, nfe_budget=nfe_budget,
                options=parse_options(options), max_batch=max_batch or None, finish_steps=finish_steps,
                guidance_scale=guidance_scale)


class FlowSearchSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchSampler", display_name="FlowSearch Sampler", category=SEARCH_CATEGORY,
            description="Reward-guided search as a SAMPLER for SamplerCustomAdvanced: spends the NFE budget on "
                        "candidates along the SIGMAS grid and returns the best latent. Works with any GUIDER "
                        "(BasicGuider + FluxGuidance for FLUX.1-dev) and with the Interpolant Converter.",
            inputs=[
                REWARD.Input("reward", tooltip="What 'better' means: a FlowSearch reward (loader or weight-free)."),
                io.Vae.Input("vae", tooltip="Decodes candidates so the reward can see them (FLUX: ae.safetensors)."),
                io.Combo.Input("method", options=METHODS, default="rbf",
                               tooltip="rbf: Rollover Budget Forcing (paper); svdd, smc, sop, code: particle "
                                       "baselines; bon: best-of-N; noise_search: search over start noise."),
                *_common_inputs(),
            ],
            outputs=[io.Sampler.Output(display_name="search sampler",
                                       tooltip="Runs the reward-guided search and returns the best latent: connect it "
                                               "to SamplerCustomAdvanced's sampler input.")])

    @classmethod
    def execute(cls, reward, vae, method, nfe_budget, prompt, max_batch, finish_steps, guidance_scale,
                options) -> io.NodeOutput:
        args = _search_args(method, nfe_budget, prompt, max_batch, finish_steps, guidance_scale, options, reward, vae)
        fn = functools.partial(glue.sample_search, **args, result_box={})
        return io.NodeOutput(comfy.samplers.KSAMPLER(fn))


def _flow_model(model, interpolant):
    """The model on `interpolant` (converted unless it already is, or linear) and its interpolant."""
    kind, ip = flow_parametrisation(model.get_model_object("model_sampling"), "FlowSearch")
    if kind == "ve" or interpolant == "linear":
        return model, ip
    m = convert_model(model, interpolant)
    return m, m.get_model_object("model_sampling").interpolant


class FlowSearch(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearch", display_name="FlowSearch (inference-time scaling)", category=SEARCH_CATEGORY,
            description="Spend more compute for a better image: searches with the chosen method for the candidate the "
                        "REWARD likes best, within an NFE budget (Kim et al. 2025). Outputs the best image and latent, "
                        "every final candidate, the scores/seeds as JSON and a reward-vs-NFE plot.",
            inputs=[
                io.Model.Input("model", tooltip="A flow model: FLUX.1-schnell (recommended) or FLUX.1-dev."),
                io.Conditioning.Input("positive", tooltip="Your prompt's conditioning (CLIPTextEncode; add FluxGuidance "
                                                          "for FLUX.1-dev)."),
                io.Latent.Input("latent", tooltip="Empty latent of the size you want (EmptySD3LatentImage)."),
                io.Vae.Input("vae", tooltip="The model's VAE (FLUX: ae.safetensors)."),
                REWARD.Input("reward", tooltip="What 'better' means: a FlowSearch reward (loader or weight-free)."),
                io.Int.Input("seed", default=0, min=0, max=2 ** 63 - 1, control_after_generate=True,
                             tooltip="Fixes every random draw of the search: same seed, same result."),
                io.Combo.Input("preset", options=list(PRESETS), default="RBF (paper)",
                               tooltip="RBF (paper): best quality per NFE. SVDD / SMC / SoP / CoDe: the paper's "
                                       "baselines. Best-of-N: N full images, keep the best. Noise search: search over "
                                       "start noise only."),
                io.Int.Input("steps", default=10, min=1, max=200, tooltip="Denoising steps (paper: 10)."),
                io.Combo.Input("interpolant", options=INTERPOLANT_CHOICES, default="vp",
                               tooltip="vp: the paper's VP-SDE (more diverse candidates); linear: FLUX's own path. "
                                       "A model from an Interpolant Converter keeps its own."),
                *_common_inputs(),
                io.Combo.Input("grid", options=list(GRIDS), default="paper", optional=True,
                               tooltip="Time grid of the steps. paper: s_i = √(1 − (i/M)²), dense at high noise, for "
                                       "few-step models whose clean estimates are sharp (FLUX.1-schnell, the paper). "
                                       "uniform: equal steps; its last step is near the clean end, for models whose "
                                       "early estimates are blurry (the FlowSearch Playground, FLUX.1-dev)."),
            ],
            outputs=[io.Image.Output("best_image", display_name="best image",
                                     tooltip="The candidate the reward liked best, decoded (one per latent in the "
                                             "batch): connect it to Save Image."),
                     io.Latent.Output("best_latent", display_name="best latent",
                                      tooltip="The best candidate's latent, for VAE Decode or a further pass."),
                     io.Image.Output("candidates", display_name="all candidates",
                                     tooltip="Every final candidate of the search, decoded (also previewed on the "
                                             "node)."),
                     io.String.Output("report", display_name="report (JSON)",
                                      tooltip="Method, NFE spent, every candidate's reward, seed and lineage (and what "
                                              "counting rewards counted) as JSON: feed it to FlowSearch Replay."),
                     io.Image.Output("reward_plot", display_name="reward vs NFE plot",
                                     tooltip="The best reward against the NFE spent, as an image for Preview Image.")],
            is_output_node=True)

    @classmethod
    def execute(cls, model, positive, latent, vae, reward, seed, preset, steps, interpolant, nfe_budget, prompt,
                max_batch, finish_steps, guidance_scale, options, grid="paper") -> io.NodeOutput:
        t0 = time.time()
        method, preset_opts = PRESETS[preset]
        spec = interpolant if interpolant != "vp" else "vp"
        model, ip = _flow_model(model, spec)
        args = _search_args(method, nfe_budget, prompt, max_batch, finish_steps, guidance_scale, options, reward, vae)
        args["options"] = {**preset_opts, **args["options"]}
        box = {}
        sampler = comfy.samplers.KSAMPLER(functools.partial(glue.sample_search, **args, result_box=box))
        guider = Guider_Basic(model)
        guider.set_conds(positive)
        lat = latent["samples"]
        sigmas = grid_sigmas(model, steps, grid, "FlowSearch")
        best = guider.sample(torch.zeros_like(lat), lat, sampler, sigmas, seed=seed)
        results = box["results"]
        best_image = decode_images(vae, model, _model_space(model, best))
        cands = torch.cat([r.candidates for r in results])
        cand_images = decode_images(vae, model, cands)
        report = _report(results, preset=preset, interpolant=str(ip), steps=steps, grid=grid, seed=seed, prompt=prompt,
                         seconds=time.time() - t0, decodes=box.get("decodes"))
        details = _reward_details(reward, best_image, cand_images, prompt)
        if details:
            report["reward_details"] = details
        text = _summary_text(report)
        preview = ui.PreviewImage(cand_images, cls=cls).as_dict()
        report_json = json.dumps(report, indent=1)
        return io.NodeOutput(best_image, {"samples": best}, cand_images, report_json, reward_plot(results),
                             ui={**preview, "text": [text], "flowsearch_report": [report_json]})


def _model_space(model, latent_out):
    """Undo process_latent_out so decode_images (which applies it) sees the model-space latent."""
    return model.model.latent_format.process_in(latent_out)


def _report(results, **context):
    runs = [r.to_json() for r in results]
    return {"flowsearch": 1, **context, "nfe": sum(r.nfe for r in results), "budget": sum(r.budget for r in results),
            "best_reward": max(r.reward for r in results), "searches": runs}


def _reward_details(reward, best_image, cand_images, prompt):
    """What rewards that explain themselves (e.g. the Count Objects Reward's two counters) say about the outputs."""
    out = {}
    for leaf in reward.leaves():
        if callable(getattr(leaf, "details", None)):
            out[leaf.name] = {"best": leaf.details(best_image, prompt or None),
                              "candidates": leaf.details(cand_images, prompt or None)}
    return out


def _pairs(d):
    return ", ".join(f"{k} {v}" for k, v in d.items()) if isinstance(d, dict) else str(d)


def _detail_line(name, i, row):
    """One line per best image of a reward's details: targets, counts, exact hit (and the held-out counter's)."""
    yes = {True: "yes", False: "no"}
    line = f"{name} (image {i}): target {_pairs(row.get('targets'))}"
    if row.get("parsed_from_prompt"):
        line += " (from the prompt)"
    line += f" · counted {_pairs(row.get('counts', {}))}"
    if "counts_heldout" in row:
        line += f" · held-out {_pairs(row['counts_heldout'])}"
    line += f" · exact {yes[bool(row.get('exact'))]}"
    if "exact_heldout" in row:
        line += f" / held-out {yes[bool(row['exact_heldout'])]}"
    return line


def _summary_text(report):
    lines = [f"{report['searches'][0]['method']} · NFE {report['nfe']}/{report['budget']} · "
             f"best reward {report['best_reward']:.4g} · {report['seconds']:.1f} s"]
    for name, d in report.get("reward_details", {}).items():
        lines += [_detail_line(name, i, row) for i, row in enumerate(d["best"])]
    for i, run in enumerate(report["searches"]):
        scores = ", ".join("—" if r is None else f"{r:.4g}" for r in run["candidate_rewards"])
        lines.append(f"search {i}: chosen #{run['chosen']} of [{scores}]")
    return "\n".join(lines)


class FlowSearchReplay(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchReplay", display_name="FlowSearch Replay", category=SEARCH_CATEGORY,
            description="Regenerates one candidate of a FlowSearch run from its report (seed and lineage), with the "
                        "same model, conditioning and latent size. Costs one NFE per step of that candidate.",
            inputs=[
                io.Model.Input("model", tooltip="The same model (and Interpolant Converter) as the search."),
                io.Conditioning.Input("positive", tooltip="The same conditioning as the search."),
                io.Latent.Input("latent", tooltip="A latent of the same size as the search's."),
                io.String.Input("report", multiline=True, tooltip="The FlowSearch node's report output (JSON)."),
                io.Int.Input("candidate", default=-1, min=-1, max=100000,
                             tooltip="Which candidate: -1 = the chosen (best) one, else its index in the report."),
                io.Int.Input("search_index", default=0, min=0, max=4096,
                             tooltip="Which search of the report (one per latent in the batch)."),
            ],
            outputs=[io.Latent.Output("replayed_latent", display_name="replayed latent",
                                      tooltip="The chosen candidate regenerated from its seed and lineage: connect "
                                              "it to VAE Decode.")])

    @classmethod
    def execute(cls, model, positive, latent, report, candidate, search_index) -> io.NodeOutput:
        try:
            rep = json.loads(report)
            run = rep["searches"][search_index]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ValueError("report must be the JSON from a FlowSearch node's 'report' output "
                             f"(with at least {search_index + 1} search(es)).") from None
        idx = run["chosen"] if candidate < 0 else candidate
        if not 0 <= idx < len(run["seeds"]):
            raise ValueError(f"candidate {idx} does not exist: this search kept {len(run['seeds'])} candidates.")
        model, ip = _flow_model(model, run["options"]["interpolant"])
        box = {}

        def sample_replay(m, x, sigmas, extra_args=None, callback=None, disable=None):
            s_in = x.new_ones([1])
            kind, _ = flow_parametrisation(m.inner_model.model_patcher.get_model_object("model_sampling"), "Replay")
            out = replay_candidate(lambda xb, sig: m(xb, sig.to(xb.dtype) * s_in, **(extra_args or {})),
                                   tuple(x.shape[1:]), run["seeds"][idx], interpolant=ip, parametrisation=kind,
                                   device=x.device, dtype=x.dtype)
            box["x0"] = out
            return out

        guider = Guider_Basic(model)
        guider.set_conds(positive)
        lat = latent["samples"][:1]
        out = guider.sample(torch.zeros_like(lat), lat, comfy.samplers.KSAMPLER(sample_replay),
                            grid_sigmas(model, 1, "uniform", "FlowSearch Replay"), seed=run["options"]["seed"])
        return io.NodeOutput({"samples": out})


NODES = [FlowSearchSampler, FlowSearch, FlowSearchReplay]
