"""FlowSearch Sampler (SAMPLER), FlowSearch (all-in-one) and FlowSearch Replay (V3 nodes; maths in sampling/)."""
import functools
import json
import math
import time

import torch

import comfy.sample
import comfy.samplers
from comfy_api.latest import io, ui
from comfy_extras.nodes_custom_sampler import Guider_Basic

from ..sampling.sde import GRIDS
from ..sampling.search import replay as replay_candidate
from . import search_glue as glue
from .decoder import decode_images
from .reward_plot import reward_plot
from .options_node import options_for
from .search_options import DEFAULT_PRESET, PRESETS, parse_options, resolve_preset
from .sampling_nodes import CATEGORY, INTERPOLANT_CHOICES, convert_model, flow_parametrisation, grid_sigmas
from .types import FLOWSEARCH_OPTIONS, REWARD

SEARCH_CATEGORY = f"{CATEGORY}/search"
_PRESET_TIP = ("SMC (adaptive β), the default: SMC whose temperature adapts to the reward's scale (the effective "
               "sample size is held at 20 %); best or tied on the pack's benchmarks. RBF (paper): Rollover Budget "
               "Forcing, the paper's method. SVDD / SMC / SoP / CoDe: the paper's baselines. Best-of-N: N full images, "
               "keep the best. Noise search: search over start noise only. PSP: progressive seed pruning. "
               "SMC (funnel) / SMC (tempered): fewer particles over time / early rewards down-weighted. RBF (verifier "
               "threshold): leave a step only once a draw's reward reaches τ (set rbf_threshold_tau for your reward; "
               "0 = every count right for counting rewards). RBF (adaptive): accept only gains above the step's own "
               "reward noise. Method ids (rbf, smc, …) from older workflows are accepted too.")


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
                                '"reward_resolution": "auto" (default) decodes the copy the reward scores at the '
                                'reward\'s own input size (e.g. 224 px for CLIP; full size for JPEG, counts and '
                                'pixel statistics); "full" or 0 = full size; 224 = at most 224 px on the longer '
                                'side. Outputs are always full size. See docs/performance.md.'),
    ]


def _options_input():
    return FLOWSEARCH_OPTIONS.Input("search_options", optional=True, display_name="search options",
                                    tooltip="Typed advanced settings from a FlowSearch Options node; they win over "
                                            "the same keys in the JSON 'options' field.")


def _search_args(preset, nfe_budget, prompt, max_batch, finish_steps, guidance_scale, options, reward, vae,
                 search_options=None):
    """The sample_search keywords, and the Options-node widgets that do not apply to the preset's method."""
    if reward is None:
        raise ValueError("Connect a REWARD (e.g. Load LAION Aesthetic Reward or JPEG Compressibility Reward).")
    method, preset_opts = resolve_preset(preset)
    node_opts, ignored = options_for(method, search_options)
    merged = {**preset_opts, **parse_options(options), **node_opts}
    return dict(reward=reward, vae=vae, prompt=prompt, method=method, nfe_budget=nfe_budget, options=merged,
                max_batch=max_batch or None, finish_steps=finish_steps, guidance_scale=guidance_scale), ignored


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
                io.Combo.Input("method", options=list(PRESETS), default=DEFAULT_PRESET,
                               tooltip=_PRESET_TIP),
                *_common_inputs(),
                _options_input(),
            ],
            outputs=[io.Sampler.Output(display_name="search sampler",
                                       tooltip="Runs the reward-guided search and returns the best latent: connect it "
                                               "to SamplerCustomAdvanced's sampler input.")])

    @classmethod
    def execute(cls, reward, vae, method, nfe_budget, prompt, max_batch, finish_steps, guidance_scale,
                options, search_options=None) -> io.NodeOutput:
        args, _ = _search_args(method, nfe_budget, prompt, max_batch, finish_steps, guidance_scale, options, reward,
                               vae, search_options)
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
                io.Combo.Input("preset", options=list(PRESETS), default=DEFAULT_PRESET, tooltip=_PRESET_TIP),
                io.Int.Input("steps", default=10, min=1, max=200, tooltip="Denoising steps (paper: 10)."),
                io.Combo.Input("interpolant", options=INTERPOLANT_CHOICES, default="vp",
                               tooltip="vp: the paper's VP-SDE (more diverse candidates); linear: FLUX's own path. "
                                       "A model from an Interpolant Converter keeps its own."),
                *_common_inputs(),
                _options_input(),
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
                max_batch, finish_steps, guidance_scale, options, grid="paper", search_options=None) -> io.NodeOutput:
        t0 = time.time()
        args, ignored = _search_args(preset, nfe_budget, prompt, max_batch, finish_steps, guidance_scale, options,
                                     reward, vae, search_options)
        notes = _interpolant_notes(model, interpolant)
        if ignored:
            notes.append(f"FlowSearch Options: {', '.join(ignored)} do(es) not apply to the {args['method']} method "
                         f"of the preset '{preset}' and were ignored.")
        model, ip = _flow_model(model, interpolant)
        box = {}
        sampler = comfy.samplers.KSAMPLER(functools.partial(glue.sample_search, **args, result_box=box))
        guider = Guider_Basic(model)
        guider.set_conds(positive)
        lat = comfy.sample.fix_empty_latent_channels(model, latent["samples"])  # as SamplerCustomAdvanced does
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
        if notes:
            report["notes"] = notes
        text = "\n".join([_summary_text(report), *notes])
        preview = ui.PreviewImage(cand_images, cls=cls).as_dict()
        report_json = json.dumps(report, indent=1)
        return io.NodeOutput(best_image, {"samples": best}, cand_images, report_json, reward_plot(results),
                             ui={**preview, "text": [text], "flowsearch_report": [report_json]})


def _interpolant_notes(model, interpolant):
    """When an Interpolant Converter is upstream, the interpolant widget is not used: say so (and warn on a clash)."""
    kind, ip = flow_parametrisation(model.get_model_object("model_sampling"), "FlowSearch")
    if kind != "ve":
        return []
    upstream = str(ip).split(":")[0]
    note = (f"The model comes from an Interpolant Converter ({ip}), so the search samples on that path and the "
            f"interpolant widget ('{interpolant}') is not used.")
    if upstream != interpolant:
        note += (f" Warning: they disagree; set the widget to '{upstream}' or change the converter, so the graph "
                 "says what it does.")
    return [note]


def _model_space(model, latent_out):
    """Undo process_latent_out so decode_images (which applies it) sees the model-space latent."""
    return model.model.latent_format.process_in(latent_out)


def _report(results, **context):
    """The report JSON: context, totals, one entry per search (with the latent shape Replay checks) and the
    searches' warnings (memory fit, non-finite rewards), each once."""
    runs = [{**r.to_json(), "latent_shape": list(r.sample.shape[1:])} for r in results]
    warnings = list(dict.fromkeys(w for r in results for w in r.warnings))
    return {"flowsearch": 1, **context, "nfe": sum(r.nfe for r in results), "budget": sum(r.budget for r in results),
            "best_reward": max(r.reward for r in results), "searches": runs, "warnings": warnings}


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
    check = report["searches"][0].get("options", {}).get("reward_ranking_check") or {}
    if check.get("kept"):  # one check per node run (its decoder is shared by the batch's searches)
        decoder, size = check["route"].split()
        lines.append(f"reward copies: {decoder} from the {size} latent (ranking check: Spearman "
                     f"{check['spearman']:.2f}, same best)")
    for i, run in enumerate(report["searches"]):
        scores = ", ".join("—" if r is None else f"{r:.4g}" for r in run["candidate_rewards"])
        lines.append(f"search {i}: chosen #{run['chosen']} of [{scores}]")
    lines += [f"⚠ {w}" for w in report.get("warnings", [])]
    return "\n".join(lines)


LINEAGE_ARITY = {"noise": 4, "perturb": 4, "renoise": 5, "sde": 7, "ode": 3}  # op name + its arguments


def _bad_report(what):
    return ValueError(f"report: {what}. Connect the FlowSearch node's 'report' output to FlowSearch Replay unchanged "
                      "(or paste it whole).")


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_lineage(lineage, idx):
    if not isinstance(lineage, list) or not lineage:
        raise _bad_report(f"candidate {idx} has no lineage list")
    for j, op in enumerate(lineage):
        ok = (isinstance(op, list) and op and LINEAGE_ARITY.get(op[0]) == len(op) and all(map(_number, op[1:]))
              and (op[0] == "ode" or all(isinstance(v, int) for v in op[1:3])))
        if not ok:
            raise _bad_report(f"operation {j} of candidate {idx}'s lineage is {str(op)[:80]}, not one the search "
                              f"writes ({', '.join(f'{k}: {n - 1} numbers' for k, n in LINEAGE_ARITY.items())})")


def _replay_run(report, search_index, candidate):
    """(the search's entry, the candidate index) of a FlowSearch report, checked field by field."""
    try:
        rep = json.loads(report)
    except ValueError:
        raise _bad_report("this is not JSON") from None
    runs = rep.get("searches") if isinstance(rep, dict) else None
    if not isinstance(runs, list) or not runs:
        raise _bad_report("it has no 'searches' list")
    if search_index >= len(runs):
        raise ValueError(f"search_index {search_index} does not exist: the report holds {len(runs)} search(es) "
                         f"(one per latent in the batch); use 0..{len(runs) - 1}.")
    run = runs[search_index]
    if not isinstance(run, dict):
        raise _bad_report(f"search {search_index} is not an object")
    seeds, opts = run.get("seeds"), run.get("options")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(c, dict) for c in seeds):
        raise _bad_report(f"search {search_index} has no 'seeds' list of candidates")
    if not isinstance(opts, dict) or not isinstance(opts.get("interpolant"), str) \
            or not isinstance(opts.get("seed"), int) or isinstance(opts.get("seed"), bool):
        raise _bad_report(f"search {search_index} has no 'options' with its interpolant and seed")
    idx = run.get("chosen") if candidate < 0 else candidate
    if candidate < 0 and (not isinstance(idx, int) or isinstance(idx, bool)):
        raise _bad_report(f"search {search_index} has no 'chosen' candidate index; set candidate to "
                          f"0..{len(seeds) - 1}")
    if not 0 <= idx < len(seeds):
        raise ValueError(f"candidate {idx} does not exist: this search kept {len(seeds)} candidates "
                         f"(candidate -1 = the chosen one, or 0..{len(seeds) - 1}).")
    _check_lineage(seeds[idx].get("lineage"), idx)
    return run, idx


def _px(shape):
    return f"{shape[-1] * 8}×{shape[-2] * 8} px (latent {'×'.join(map(str, shape))})"


def _check_replay_latent(run, lat):
    """A report records its latent shape: replaying on another size would silently give a different image."""
    want = run.get("latent_shape")
    if want is None:  # reports written before the shape was recorded
        return
    if list(lat.shape[1:]) != list(want):
        raise ValueError(f"latent: the report's search ran on {_px(want)}, but this latent is {_px(lat.shape[1:])}. "
                         f"Replay needs the search's size: use EmptySD3LatentImage width {want[-1] * 8}, height "
                         f"{want[-2] * 8} (the latent the FlowSearch node got).")


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
        run, idx = _replay_run(report, search_index, candidate)
        lat = comfy.sample.fix_empty_latent_channels(model, latent["samples"][:1])
        _check_replay_latent(run, lat)
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
        out = guider.sample(torch.zeros_like(lat), lat, comfy.samplers.KSAMPLER(sample_replay),
                            grid_sigmas(model, 1, "uniform", "FlowSearch Replay"), seed=run["options"]["seed"])
        return io.NodeOutput({"samples": out})


NODES = [FlowSearchSampler, FlowSearch, FlowSearchReplay]
