"""The accepted values of every search option: one table used by `search()`'s validator, its error messages, the
FlowSearch Options node's widget ranges and the README's options table (issue 11 item 6).

Defaults are not repeated here: they are the keyword defaults of each method (`search.method_options`) and
`search.COMMON_OPTIONS`. A `Spec` says what a value may be; `check_options` runs before anything is allocated, so
a bad value costs nothing and its message names the option, what it accepts and what it got.
"""
import math
from dataclasses import dataclass

from .sde import DIFFUSIONS
from .search_methods import PARTICLE_SCHEDULES, POTENTIALS, RESAMPLING, TEMPERATURE_SCHEDULES
from .search_rbf_variants import TAU_MODES

__all__ = ["Spec", "SPECS", "COMMON_SPECS", "CALL_SPECS", "check_options", "options_table"]


def _num(x):
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Spec:
    """What one option accepts: kind 'int' | 'float' | 'choice' | 'fractions' | 'bool' | 'object'.

    Numbers lie in [low, high] (open at an end when open_low / open_high); `special` lists extra accepted values
    (None = fill the budget, 'auto'); `doc` is the one-line meaning shown in the README and the node."""

    kind: str
    low: float = None
    high: float = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple = ()
    special: tuple = ()
    doc: str = ""

    def accepts(self):
        """Human description of the accepted values, e.g. 'an integer in [1, 100000], or null'."""
        if self.kind == "choice":
            text = "one of " + ", ".join(f"'{c}'" for c in self.choices)
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind == "object":
            text = "set by the caller"
        elif self.kind == "fractions":
            text = "two increasing fractions in (0, 1), e.g. [0.25, 0.5]"
        else:
            lo, hi = "(" if self.open_low else "[", ")" if self.open_high else "]"
            what = "an integer" if self.kind == "int" else "a number"
            text = f"{what} in {lo}{_num(self.low)}, {_num(self.high)}{hi}"
        extra = ["null" if s is None else f"'{s}'" for s in self.special]
        return text + (f", or {' or '.join(extra)}" if extra else "")

    def _in_range(self, v):
        lo_ok = v > self.low if self.open_low else v >= self.low
        hi_ok = v < self.high if self.open_high else v <= self.high
        return lo_ok and hi_ok

    def valid(self, v):
        """True when v is an accepted value (bools are never numbers; numbers are never strings)."""
        if any(v is s or (isinstance(s, str) and v == s) for s in self.special):
            return True
        if self.kind == "object":
            return True
        if self.kind == "bool":
            return isinstance(v, bool)
        if self.kind == "choice":
            return isinstance(v, str) and v in self.choices
        if self.kind == "fractions":
            return (isinstance(v, (list, tuple)) and len(v) == 2 and all(self._number(f) for f in v)
                    and 0 < v[0] < v[1] < 1)
        if self.kind == "int":
            return isinstance(v, int) and not isinstance(v, bool) and self._in_range(v)
        return self._number(v) and self._in_range(float(v))

    @staticmethod
    def _number(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        try:
            return not math.isnan(float(v))
        except OverflowError:   # an integer too large for a float
            return False

    def check(self, name, value, who):
        """Raise ValueError naming `who`'s option `name`, what it accepts and the value given, unless valid."""
        if self.valid(value):
            return
        got = repr(value) if not isinstance(value, str) else f"'{value}' (text)"
        hint = ""
        if isinstance(value, str) and self.kind in ("int", "float"):
            hint = "; write the number without quotes"
        elif self.kind == "int" and isinstance(value, float) and math.isfinite(value) and value.is_integer():
            hint = f"; write it as {int(value)}"
        raise ValueError(f"{who}: option '{name}' must be {self.accepts()} ({self.doc}); got {got}{hint}")


_SIZE = 100_000    # no population or draw count beyond this fits any budget the nodes accept
FILL = (None,)     # None = derived from the budget

_N = "particles / chains / seeds"
_BETA = "reward temperature, 0 = argmax"

# the RBF family's shared options (one meaning each, so one FlowSearch Options widget serves all three)
_RBF = {
    "n": Spec("int", 1, _SIZE, doc="chains"),
    "init_noises": Spec("int", 1, _SIZE, special=("auto", "code", None),
                        doc="initial best-of-K0 pick; 'auto' = budget/20, 'code' = 25, null = Alg. 2 (none)"),
    "last_level": Spec("choice", choices=("hold", "stop"), doc="code's rule, or Alg. 2 literally"),
}
_MIN_DRAWS = Spec("int", 1, _SIZE, doc="draws before a level may be left (1 = Alg. 2)")

SPECS = {
    "bon": {"n": Spec("int", 1, _SIZE, special=FILL, doc="independent trajectories; null = fill the budget")},
    "dps": {"n": Spec("int", 1, _SIZE, doc="guided trajectories")},
    "noise_search": {
        "k": Spec("int", 1, _SIZE, special=FILL, doc="trajectories per round; null = min(10, budget/steps)"),
        "radius": Spec("float", 0, 100, open_low=True, doc="perturbation size λ of (x + λz)/√(1 + λ²)"),
        "mode": Spec("choice", choices=("zero_order", "random"), doc="perturb the best noise, or fresh noises"),
    },
    "sop": {
        "n": Spec("int", 1, _SIZE, doc="paths kept per round"),
        "k": Spec("int", 1, _SIZE, doc="re-noised proposals per path"),
        "t0": Spec("float", 0, 1, open_low=True, open_high=True, doc="clock where the rounds start"),
        "delta_f": Spec("float", 0, 1, open_low=True, open_high=True, doc="forward re-noise step Δf (< Δb)"),
        "delta_b": Spec("float", 0, 1, open_low=True, open_high=True, doc="backward ODE step Δb (> Δf)"),
        "ode_steps": Spec("int", 1, _SIZE, special=FILL, doc="Euler steps per segment; null = fill the budget"),
        "selection": Spec("choice", choices=("global", "per_parent"), doc="top n of all, or best per parent"),
    },
    "smc": {
        "n": Spec("int", 1, _SIZE, special=FILL, doc="particles; null = fill the budget"),
        "beta": Spec("float", 0, math.inf, open_low=True, doc="temperature of exp(r/β); inf ignores the reward"),
        "ess_threshold": Spec("float", 0, 1, doc="resample when ESS < threshold·n"),
        "potential": Spec("choice", choices=POTENTIALS, doc="FK potential of the reward"),
        "particle_schedule": Spec("choice", choices=PARTICLE_SCHEDULES, doc="constant n, a shrinking funnel or a growing ramp"),
        "final_particles": Spec("int", 1, _SIZE, special=FILL, doc="funnel's / ramp's last count; null = n/4 / 3n"),
        "temperature_schedule": Spec("choice", choices=TEMPERATURE_SCHEDULES, doc="how β ramps over the steps"),
        "resampling": Spec("choice", choices=RESAMPLING, doc="multinomial, or low-variance systematic"),
        "target_ess": Spec("float", 0, 1, open_low=True, open_high=True, special=FILL,
                           doc="adaptive β per step so that ESS = target·n; null = fixed beta"),
    },
    "svdd": {
        "n": Spec("int", 1, _SIZE, doc="chains"),
        "k": Spec("int", 1, _SIZE, special=FILL, doc="proposals per chain and step; null = fill the budget"),
        "beta": Spec("float", 0, 1e6, doc=_BETA),
    },
    "code": {
        "n": Spec("int", 1, _SIZE, doc="chains"),
        "k": Spec("int", 1, _SIZE, special=FILL, doc="proposals per chain and block; null = fill the budget"),
        "block": Spec("int", 1, 1000, doc="steps L a proposal runs before selection"),
        "beta": Spec("float", 0, 1e6, doc=_BETA),
    },
    "rbf": {**_RBF, "min_draws": _MIN_DRAWS},
    "rbf_threshold": {
        **_RBF,
        "tau": Spec("float", -math.inf, math.inf, open_low=True, open_high=True,
                    doc="reward a level's best must reach to leave early (quantile mode: q in [0, 1])"),
        "tau_mode": Spec("choice", choices=TAU_MODES, doc="tau is a reward value, or a quantile of the draws"),
        "min_draws": _MIN_DRAWS,
    },
    "rbf_adaptive": {**_RBF, "kappa": Spec("float", 0, 1e6, doc="gain over r* needed, in sds of the level's draws")},
    "psp": {
        "n": Spec("int", 1, _SIZE, special=FILL, doc="seeds after the first prune (2n at the start)"),
        "prune_at": Spec("fractions", doc="fractions of the steps where 2n → n → n/2"),
    },
}

COMMON_SPECS = {
    "finish_steps": Spec("int", 0, 1000, doc="deterministic steps to s = 0 after the search, in the budget"),
    "guidance_scale": Spec("float", 0, 1e6,
                           doc="gradient guidance strength, 0 = off (it scales with the reward's units)"),
    "diffusion": Spec("choice", choices=tuple(DIFFUSIONS), doc="shape of the SDE's g(s)"),
    "diffusion_norm": Spec("float", 0, 10, doc="scale of g(s); 0 = ODE; 3 = the paper's g = 3s²"),
    "parametrisation": Spec("choice", choices=("linear", "ve"), doc="what denoise(x, t) expects"),
    "device": Spec("object", doc="torch device of the particles"),
    "dtype": Spec("object", doc="torch dtype of the returned tensors"),
}

# keyword arguments of search() itself that a caller (the nodes) may leave in an options dict
CALL_SPECS = {
    "sde": Spec("bool", doc="stochastic proposals (false = deterministic ODE: only noise choices differ)"),
}


def check_options(method, own, common, call=()):
    """Validate `own` (the method's options), `common` and `call` options against the tables; raise ValueError."""
    specs = SPECS.get(method, {})   # a method registered without a table (a test's) validates its own options
    for name, value in own.items():
        if name in specs:
            specs[name].check(name, value, method)
    for name, value in common.items():
        COMMON_SPECS[name].check(name, value, method)
    for name, value in dict(call).items():
        CALL_SPECS[name].check(name, value, method)


def options_table(defaults):
    """Markdown rows 'method | option | default | accepts | meaning' (defaults: {method: {option: default}},
    with the key 'every method' for the common ones) for the README."""
    rows = ["| method | option | default | accepts | meaning |", "|---|---|---|---|---|"]
    tables = [(m, SPECS[m]) for m in SPECS] + [("every method", {**COMMON_SPECS, **CALL_SPECS})]
    for method, specs in tables:
        for name, spec in specs.items():
            if spec.kind == "object":
                continue
            d = defaults[method].get(name)
            shown = "null" if d is None else str(d).lower() if isinstance(d, bool) else \
                str(list(d)) if isinstance(d, tuple) else str(d)
            rows.append(f"| {method} | `{name}` | `{shown}` | {spec.accepts()} | {spec.doc} |")
    return "\n".join(rows)
