"""Interpolant Converter, FlowSearch Scheduler and FlowSearch SDE Sampler (V3 nodes; maths in sampling/)."""
import functools
import math

import comfy.model_management
import comfy.model_sampling
import comfy.samplers
from comfy_api.latest import io

from ..sampling.interpolants import VP, Linear, Polynomial, get_interpolant
from ..sampling.ksampler import sample_sde_k
from ..sampling.sde import DIFFUSIONS, GRIDS, time_grid
from .interpolant_patch import InterpolantModelSampling

CATEGORY = "sampling/flowsearch"
INTERPOLANT_CHOICES = ["vp", "linear", "cosine", "polynomial"]


def flow_parametrisation(model_sampling, who):
    """('ve', interpolant) for a converted model, ('linear', Linear()) for a flow model; else a node error."""
    if isinstance(model_sampling, InterpolantModelSampling):
        return "ve", model_sampling.interpolant
    if isinstance(model_sampling, comfy.model_sampling.CONST):
        return "linear", Linear()
    raise ValueError(
        f"{who} needs a flow-matching model (FLUX, SD3, … whose model_sampling is CONST), but this model "
        f"uses {type(model_sampling).__name__} (e.g. an SD1.5/SDXL eps or v-prediction model). "
        "Load a FLUX model with UNETLoader / Load Diffusion Model, or remove the ModelSampling node that "
        "switched it to eps/v prediction.")


def check_interpolant(spec):
    """An interpolant spec as the Interpolant Converter's widgets allow it (API prompts bypass the widgets)."""
    ip = get_interpolant(spec)
    if isinstance(ip, VP) and not (0 < ip.beta_min < ip.beta_max and math.isfinite(ip.beta_max)):
        raise ValueError(f"interpolant {spec!r}: a VP path needs 0 < beta_min < beta_max (finite), got beta_min "
                         f"{ip.beta_min:g}, beta_max {ip.beta_max:g}; use 'vp' (the paper's 0.1 → 20) or "
                         "'vp:0.1:20', or set the betas on an Interpolant Converter.")
    if isinstance(ip, Polynomial) and not (0 < ip.n and math.isfinite(ip.n)):
        raise ValueError(f"interpolant {spec!r}: the polynomial exponent n must be a finite number > 0 (n=1 is "
                         "linear), e.g. 'polynomial:2'.")
    return ip


def convert_model(model, interpolant):
    """Clone of a flow model whose model_sampling is the VE view tagged with `interpolant` (InterpolantModelSampling)."""
    check_interpolant(interpolant)
    m = model.clone()
    m.add_object_patch("model_sampling", InterpolantModelSampling(model.get_model_object("model_sampling"), interpolant))
    return m


def grid_sigmas(model, steps, grid, who="FlowSearch Scheduler"):
    """SIGMAS of a clock grid ('paper', 'uniform') in the model's parametrisation, ending at 0."""
    ms = model.get_model_object("model_sampling")
    kind, _ = flow_parametrisation(ms, who)
    s = time_grid(steps, grid)
    sigmas = ms.sigma_from_clock(s) if kind == "ve" else s.float()
    sigmas[-1] = 0.0
    return sigmas


class InterpolantConverter(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchInterpolantConverter", display_name="Interpolant Converter (FlowSearch)",
            category=CATEGORY,
            description="Samples a flow model (FLUX) on another interpolant with the same marginals (paper §4.3). "
                        "The VP path gives the SDE more room to explore. Works with ComfyUI's samplers and "
                        "schedulers, and tells the FlowSearch SDE Sampler which noise schedule to use.",
            inputs=[
                io.Model.Input("model", tooltip="A flow-matching model such as FLUX.1-schnell or FLUX.1-dev."),
                io.Combo.Input("interpolant", options=INTERPOLANT_CHOICES, default="vp",
                               tooltip="vp: variance preserving path (β 0.1→20), the paper's choice. linear: FLUX's own "
                                       "path. cosine: trigonometric path. polynomial: α=(1−s)^n (n=1 is linear)."),
                io.Float.Input("beta_min", default=0.1, min=0.001, max=10.0, step=0.01,
                               tooltip="VP only: β at s=0 (paper 0.1)."),
                io.Float.Input("beta_max", default=20.0, min=0.1, max=100.0, step=0.1,
                               tooltip="VP only: β at s=1 (paper 20)."),
                io.Float.Input("polynomial_n", default=2.0, min=0.1, max=10.0, step=0.1,
                               tooltip="polynomial only: the exponent n."),
            ],
            outputs=[io.Model.Output(display_name="converted model",
                                     tooltip="The model sampled on the chosen interpolant: connect it to FlowSearch, "
                                             "KSampler or SamplerCustomAdvanced's guider.")])

    @classmethod
    def execute(cls, model, interpolant, beta_min, beta_max, polynomial_n) -> io.NodeOutput:
        ms = model.get_model_object("model_sampling")
        kind, _ = flow_parametrisation(ms, "Interpolant Converter")
        if kind == "ve":
            raise ValueError("This model is already converted by an Interpolant Converter; connect the original "
                             "flow model instead of chaining two converters.")
        if beta_max <= beta_min:
            raise ValueError(f"beta_max ({beta_max}) must be larger than beta_min ({beta_min}).")
        spec = {"vp": f"vp:{beta_min}:{beta_max}", "polynomial": f"polynomial:{polynomial_n}"}.get(interpolant, interpolant)
        return io.NodeOutput(convert_model(model, spec))


class FlowSearchScheduler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchScheduler", display_name="FlowSearch Scheduler", category=CATEGORY,
            description="Time grid on the model's interpolant clock: 'paper' is s_i = √(1 − (i/M)²) (small steps "
                        "near noise, App. C); 'uniform' is evenly spaced. No FLUX shift is applied.",
            inputs=[
                io.Model.Input("model", tooltip="A flow model, optionally converted by the Interpolant Converter."),
                io.Int.Input("steps", default=10, min=1, max=1000, tooltip="Number of steps M (paper: 10)."),
                io.Combo.Input("grid", options=list(GRIDS), default="paper",
                               tooltip="paper: adaptive grid of the paper; uniform: evenly spaced clock."),
            ],
            outputs=[io.Sigmas.Output(display_name="time grid",
                                      tooltip="The steps' noise levels (SIGMAS, ending at 0): connect them to "
                                              "SamplerCustomAdvanced's sigmas input.")])

    @classmethod
    def execute(cls, model, steps, grid) -> io.NodeOutput:
        return io.NodeOutput(grid_sigmas(model, steps, grid))


def _sample_flowsearch_sde(model, x, sigmas, extra_args=None, callback=None, disable=None, *, sde, diffusion,
                           diffusion_norm):
    ms = model.inner_model.model_patcher.get_model_object("model_sampling")
    kind, interpolant = flow_parametrisation(ms, "FlowSearch SDE Sampler")

    def step_callback(d):
        comfy.model_management.throw_exception_if_processing_interrupted()
        if callback is not None:
            callback(d)

    return sample_sde_k(model, x, sigmas, extra_args, step_callback, disable, interpolant=interpolant,
                        parametrisation=kind, sde=sde, diffusion=diffusion, diffusion_norm=diffusion_norm)


class FlowSearchSDESampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchSDESampler", display_name="FlowSearch SDE Sampler", category=CATEGORY,
            description="Marginal-preserving SDE for flow models (paper Eq. 12): the deterministic sampler made "
                        "stochastic with diffusion g(s), on the interpolant set by the Interpolant Converter. "
                        "Noise per image comes from the NOISE seed, the image's index and the step.",
            inputs=[
                io.Boolean.Input("sde", default=True, tooltip="Off: the probability-flow ODE (deterministic)."),
                io.Combo.Input("diffusion", options=[d for d in DIFFUSIONS if d != "ode"], default="square",
                               tooltip="Shape of g(s): square = s² (paper), linear = s, constant, sigma = σ(s), "
                                       "sin, exp, tan, clipping."),
                io.Float.Input("diffusion_norm", default=3.0, min=0.0, max=20.0, step=0.1,
                               tooltip="Scale of g(s) (paper: 3, i.e. g = 3s²). Larger = more diversity, less fidelity."),
            ],
            outputs=[io.Sampler.Output(display_name="SDE sampler",
                                       tooltip="The marginal-preserving SDE sampler: connect it to "
                                               "SamplerCustomAdvanced's sampler input.")])

    @classmethod
    def execute(cls, sde, diffusion, diffusion_norm) -> io.NodeOutput:
        fn = functools.partial(_sample_flowsearch_sde, sde=sde, diffusion=diffusion, diffusion_norm=diffusion_norm)
        return io.NodeOutput(comfy.samplers.KSAMPLER(fn))


NODES = [InterpolantConverter, FlowSearchScheduler, FlowSearchSDESampler]
