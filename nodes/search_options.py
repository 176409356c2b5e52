"""Search presets, method names and the node's advanced 'options' JSON: parsing and the ComfyUI-side keys."""
import json

PRESETS = {  # artist-facing preset -> (method, paper defaults that differ from the method's own)
    "SMC (adaptive β)": ("smc", {"target_ess": 0.2}),
    "RBF (paper)": ("rbf", {}),
    "SVDD": ("svdd", {}),
    "SMC": ("smc", {}),
    "SoP": ("sop", {}),
    "CoDe": ("code", {}),
    "Best-of-N": ("bon", {}),
    "Noise search": ("noise_search", {}),
    "PSP (seed pruning)": ("psp", {}),
    "SMC (funnel)": ("smc", {"particle_schedule": "funnel"}),
    "SMC (tempered)": ("smc", {"temperature_schedule": "increasing"}),
    "RBF (verifier threshold)": ("rbf_threshold", {}),
    "RBF (adaptive)": ("rbf_adaptive", {}),
}
DEFAULT_PRESET = "SMC (adaptive β)"   # README "Choosing the default": best or tied on both benchmarks (issue 12)
METHODS = [method for method, opts in PRESETS.values() if not opts]   # each method id, as its plain preset runs it
# options a node widget (or ComfyUI itself) sets: in the options JSON they would clash with it
WIDGET_KEYS = {
    "steps": "the node's steps widget (FlowSearch Sampler: the SIGMAS of your scheduler)",
    "seed": "the node's seed widget (FlowSearch Sampler: SamplerCustomAdvanced's noise seed)",
    "nfe_budget": "the node's nfe_budget widget", "max_batch": "the node's max_batch widget",
    "finish_steps": "the node's finish_steps widget", "guidance_scale": "the node's guidance_scale widget",
    "prompt": "the node's prompt widget", "interpolant": "the interpolant widget or an Interpolant Converter node",
    "grid": "the grid widget (FlowSearch Sampler: the SIGMAS of your scheduler)",
    "method": "the preset widget", "preset": "the preset widget",
}
HOST_KEYS = ("parametrisation", "device", "dtype", "callback")   # ComfyUI derives these from the model


def resolve_preset(name):
    """(method, preset options) for a preset label or a method id (any case; old workflows stored ids)."""
    if name in PRESETS:
        return PRESETS[name]
    key = str(name).strip().lower().replace("beta", "β")
    labels = {label.lower(): value for label, value in PRESETS.items()}
    plain = {method: (method, opts) for method, opts in PRESETS.values() if not opts}   # a method id: its own defaults
    if key in labels or key in plain:
        return labels.get(key) or plain[key]
    raise ValueError(f"unknown preset or method {name!r}; use one of {', '.join(PRESETS)} "
                     f"(or a method id: {', '.join(METHODS)})")
# options the ComfyUI side handles itself (popped from the node's options JSON before the search sees the rest)
#   reward_resolution: "auto" (the reward's own input size, full size for size-sensitive rewards), "full" (= 0, as
#                      older reports wrote it) or N px (the reward's copy's longer side ≤ N); nodes/decoder.py
#   reward_decoder:    "vae" (the search's VAE) or "taesd" (score through ComfyUI's tiny TAESD decoder from
#                      models/vae_approx, when its files are there; under auto at the reward's size, else at the
#                      full latent, whichever the ranking check keeps first)
GLUE_OPTIONS = {"reward_resolution": "auto", "reward_decoder": "vae"}
REWARD_DECODERS = ("vae", "taesd")


def parse_options(text):
    """The node's advanced 'options' field: a JSON object of method options ('' = none)."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        opts = json.loads(text)
    except ValueError as e:
        raise ValueError(f"options must be a JSON object such as {{\"n\": 4}}; could not parse it: {e}") from None
    if not isinstance(opts, dict):
        raise ValueError('options must be a JSON object such as {"n": 4}')
    check_keys(opts, "the options JSON")
    return opts


def check_keys(opts, where):
    """Refuse keys that a widget or ComfyUI sets, naming where to set them instead."""
    for key in opts:
        if key in WIDGET_KEYS:
            raise ValueError(f"{where} sets '{key}', but {WIDGET_KEYS[key]} sets it: remove '{key}' from "
                             f"{where} and use that instead")
        if key in HOST_KEYS:
            raise ValueError(f"{where} sets '{key}', which ComfyUI derives from the connected model: remove "
                             f"'{key}' from {where}")


def split_options(options):
    """(search options, glue options): the keys of GLUE_OPTIONS are handled here, the rest go to the search."""
    options = dict(options or {})
    glue = {k: options.pop(k, v) for k, v in GLUE_OPTIONS.items()}
    r = glue["reward_resolution"]
    if r not in ("auto", "full") and (isinstance(r, bool) or not isinstance(r, int) or r < 0):
        raise ValueError(f'reward_resolution must be "auto" (the reward\'s own input size, the default), "full" '
                         f"(or 0) or an integer number of pixels such as 224, got {r!r}")
    if isinstance(r, int) and 0 < r < 8:
        raise ValueError(f'reward_resolution={r} is below one latent pixel (8 px); use "auto", "full" or e.g. 224')
    if glue["reward_decoder"] not in REWARD_DECODERS:
        raise ValueError(f"reward_decoder must be one of {', '.join(map(repr, REWARD_DECODERS))} ('taesd' scores "
                         f"through ComfyUI's tiny TAESD decoder), got {glue['reward_decoder']!r}")
    return options, glue
