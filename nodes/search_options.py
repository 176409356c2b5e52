"""Search presets, method names and the node's advanced 'options' JSON: parsing and the ComfyUI-side keys."""
import json

PRESETS = {  # artist-facing preset -> (method, paper defaults that differ from the method's own)
    "RBF (paper)": ("rbf", {}),
    "SVDD": ("svdd", {}),
    "SMC": ("smc", {}),
    "SoP": ("sop", {}),
    "CoDe": ("code", {}),
    "Best-of-N": ("bon", {}),
    "Noise search": ("noise_search", {}),
}
METHODS = ["rbf", "svdd", "smc", "sop", "code", "bon", "noise_search"]
# options the ComfyUI side handles itself (popped from the node's options JSON before the search sees the rest)
GLUE_OPTIONS = {"reward_resolution": 0}


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
    return opts


def split_options(options):
    """(search options, glue options): the keys of GLUE_OPTIONS are handled here, the rest go to the search."""
    options = dict(options or {})
    glue = {k: options.pop(k, v) for k, v in GLUE_OPTIONS.items()}
    r = glue["reward_resolution"]
    if isinstance(r, bool) or not isinstance(r, int) or r < 0:
        raise ValueError(f"reward_resolution must be an integer number of pixels ≥ 0 (0 = decode at full size), "
                         f"got {r!r}")
    if 0 < r < 8:
        raise ValueError(f"reward_resolution={r} is below one latent pixel (8 px); use 0 (full size) or e.g. 224")
    return options, glue
