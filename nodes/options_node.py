"""FlowSearch Options (V3 node): the search's advanced knobs as typed widgets, one FLOWSEARCH_OPTIONS output.

Widget ranges, accepted choices and tooltips come from `sampling.option_specs` (the table the search validates
against). Every widget starts at a sentinel (0 / −1 / "default") that means "leave the method's default", so only
the knobs an artist changes are sent. Shared knobs (n, k, beta) apply to every method that has them; the
rbf_* knobs to the RBF family (rbf, rbf_threshold, rbf_adaptive) where the method has the option, the smc_* /
sop_* / psp_* / noise_search_* / code_* knobs only to their method. The output is {widget: value}; `options_for`
maps it to one method's options; the FlowSearch nodes merge that over their JSON `options` (the node wins)."""
from comfy_api.latest import io

from ..sampling.option_specs import CALL_SPECS, COMMON_SPECS, SPECS
from ..sampling.search import method_options
from .sampling_nodes import CATEGORY
from .search_options import REWARD_DECODERS
from .types import FLOWSEARCH_OPTIONS

DEFAULT = "default"
SHARED, COMMON, CALL, GLUE = "shared", "common", "call", "glue"
RBF_FAMILY = ("rbf", "rbf_threshold", "rbf_adaptive")
# (widget, section, option): section is SHARED / COMMON / CALL / GLUE or the methods a knob belongs to
FIELDS = [
    ("n", SHARED, "n"), ("k", SHARED, "k"), ("beta", SHARED, "beta"),
    ("rbf_init_noises", RBF_FAMILY, "init_noises"), ("rbf_min_draws", RBF_FAMILY, "min_draws"),
    ("rbf_last_level", RBF_FAMILY, "last_level"),
    ("rbf_threshold_tau", ("rbf_threshold",), "tau"), ("rbf_threshold_tau_mode", ("rbf_threshold",), "tau_mode"),
    ("rbf_adaptive_kappa", ("rbf_adaptive",), "kappa"),
    ("smc_particle_schedule", ("smc",), "particle_schedule"), ("smc_final_particles", ("smc",), "final_particles"),
    ("smc_temperature_schedule", ("smc",), "temperature_schedule"), ("smc_potential", ("smc",), "potential"),
    ("smc_ess_threshold", ("smc",), "ess_threshold"), ("smc_target_ess", ("smc",), "target_ess"),
    ("smc_resampling", ("smc",), "resampling"),
    ("sop_t0", ("sop",), "t0"), ("sop_delta_f", ("sop",), "delta_f"), ("sop_delta_b", ("sop",), "delta_b"),
    ("sop_selection", ("sop",), "selection"),
    ("psp_prune_first", ("psp",), "prune_at"), ("psp_prune_second", ("psp",), "prune_at"),
    ("noise_search_radius", ("noise_search",), "radius"), ("noise_search_mode", ("noise_search",), "mode"),
    ("code_block", ("code",), "block"),
    ("diffusion", COMMON, "diffusion"), ("diffusion_norm", COMMON, "diffusion_norm"), ("sde", CALL, "sde"),
    ("reward_resolution", GLUE, "reward_resolution"), ("reward_decoder", GLUE, "reward_decoder"),
]
FIELD = {w: (section, option) for w, section, option in FIELDS}
REWARD_RESOLUTIONS = [DEFAULT, "auto", "full", "224", "256", "336", "384", "448", "512"]
SDE_CHOICES = {DEFAULT: None, "SDE (stochastic)": True, "ODE (deterministic)": False}
FLOAT_MAX = 1e6   # widget ceiling for specs open to ±inf (JSON options still accept larger values)
NO_SENTINEL = {"rbf_threshold_tau": ("rbf_threshold", "tau")}   # any value is meaningful: its default is the method's


def _methods(section, option):
    """The methods a field applies to (those of its section that take the option)."""
    pool = SPECS if section == SHARED else section
    return sorted(m for m in pool if option in SPECS[m])


def _spec(section, option):
    if section == COMMON:
        return COMMON_SPECS[option], None
    if section == CALL:
        return CALL_SPECS[option], None
    methods = _methods(section, option)
    return SPECS[methods[0]][option], methods


def _tip(spec, methods, default_text):
    where = f" Applies to: {', '.join(methods)}." if methods else ""
    return f"{spec.doc[0].upper()}{spec.doc[1:]}. Accepts {spec.accepts()}. {default_text}.{where}"


def _widget(widget, section, option):
    """The V3 input for one field, with the spec's range and the sentinel that keeps the method's default."""
    if widget == "reward_decoder":
        return io.Combo.Input(widget, options=[DEFAULT, *REWARD_DECODERS], default=DEFAULT,
                              tooltip="What decodes the candidates for the reward: vae = the search's VAE; taesd = "
                                      "ComfyUI's tiny TAESD decoder (models/vae_approx/taef1_*; much cheaper). Under "
                                      "auto it tries TAESD at the reward's size, then at the full latent, and keeps "
                                      "the first that ranks the first 8 candidates as the VAE does (see "
                                      "docs/performance.md). The output images always use the VAE.")
    if section == GLUE:
        return io.Combo.Input(widget, options=REWARD_RESOLUTIONS, default=DEFAULT,
                              tooltip="Size at which candidates are decoded for the reward: auto = the reward's own "
                                      "input size (the default; full size for size-sensitive rewards), full = full "
                                      "size, or a size in pixels. The output images stay full size.")
    if section == CALL:
        return io.Combo.Input(widget, options=list(SDE_CHOICES), default=DEFAULT,
                              tooltip="SDE: stochastic proposals (the paper). ODE: deterministic paths, so only the "
                                      "start noises differ (use with Best-of-N / noise search). default = SDE.")
    spec, methods = _spec(section, option)
    if widget.startswith("psp_prune"):
        i = 0 if widget.endswith("first") else 1
        return io.Float.Input(widget, default=-1.0, min=-1.0, max=1.0, step=0.05,
                              tooltip=f"PSP: fraction of the steps at which the seeds are pruned "
                                      f"{'2n → n' if i == 0 else 'n → n/2'} (paper: {(0.25, 0.5)[i]}); must lie in "
                                      f"(0, 1) and first < second. -1 = the default. Applies to: psp.")
    if spec.kind == "choice":
        return io.Combo.Input(widget, options=[DEFAULT, *spec.choices], default=DEFAULT,
                              tooltip=_tip(spec, methods, "default = the method's default"))
    if widget in NO_SENTINEL:
        default = method_options(NO_SENTINEL[widget][0])[NO_SENTINEL[widget][1]]
        return io.Float.Input(widget, default=default, min=-FLOAT_MAX, max=FLOAT_MAX, step=0.01,
                              tooltip=_tip(spec, methods, f"{default} = the method's default"))
    if widget == "rbf_init_noises":
        return io.Int.Input(widget, default=-1, min=-1, max=int(spec.high),
                            tooltip=_tip(spec, methods, "-1 = the default ('auto'), 0 = none (Alg. 2), else K0 "
                                                        "(25 = the official code's fixed count)"))
    if spec.kind == "int":
        return io.Int.Input(widget, default=0, min=0, max=int(spec.high),
                            tooltip=_tip(spec, methods, "0 = the method's default"))
    return io.Float.Input(widget, default=-1.0, min=-1.0, max=min(float(spec.high), FLOAT_MAX), step=0.01,
                          tooltip=_tip(spec, methods, "-1 = the method's default"))


def _value(widget, section, value):
    """The option value a widget sets, or None when it is at its sentinel (leave the default)."""
    if section == GLUE:
        return None if value == DEFAULT else value if not value.isdigit() else int(value)
    if section == CALL:
        return SDE_CHOICES[value]
    if isinstance(value, str):
        return None if value == DEFAULT else value
    if widget in NO_SENTINEL:
        return None if value == method_options(NO_SENTINEL[widget][0])[NO_SENTINEL[widget][1]] else value
    if widget == "rbf_init_noises":
        return None if value == -1 else ("none" if value == 0 else value)
    if isinstance(value, int) and not widget.startswith("psp_prune"):
        return None if value == 0 else value
    return None if value == -1 else value


def build_options(values):
    """{widget: value} of the widgets that left their sentinel (the FLOWSEARCH_OPTIONS value)."""
    out = {}
    for widget, section, _ in FIELDS:
        v = _value(widget, section, values[widget])
        if v is not None:
            out[widget] = v
    return out


def _applies(method, section, option):
    return section in (COMMON, CALL, GLUE) or method in _methods(section, option)


def options_for(method, node_opts):
    """(flat options for `method`, widgets that do not apply to it) from a FLOWSEARCH_OPTIONS value."""
    flat, ignored = {}, []
    for widget, v in (node_opts or {}).items():
        section, option = FIELD[widget]
        if not _applies(method, section, option):
            ignored.append(widget)
        elif widget.startswith("psp_prune"):
            prune = flat.setdefault("prune_at", list(method_options("psp")["prune_at"]))
            prune[0 if widget.endswith("first") else 1] = v
        else:
            flat[option] = None if v == "none" else v
    return flat, sorted(ignored)


class FlowSearchOptions(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="FlowSearchOptions", display_name="FlowSearch Options", category=f"{CATEGORY}/search",
            description="Advanced search settings as widgets: connect to the 'search options' input of FlowSearch or "
                        "FlowSearch Sampler. Leave a widget at its default (0, -1 or 'default') to keep the method's "
                        "own value; these win over the same keys in the JSON 'options' field.",
            inputs=[_widget(*f) for f in FIELDS],
            outputs=[FLOWSEARCH_OPTIONS.Output(display_name="search options",
                                               tooltip="The settings that left their default: connect to FlowSearch "
                                                       "or FlowSearch Sampler ('search options').")])

    @classmethod
    def execute(cls, **values) -> io.NodeOutput:
        return io.NodeOutput(build_options(values))


NODES = [FlowSearchOptions]
