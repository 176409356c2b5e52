"""sampling.option_specs: one table of accepted option values, checked before the search allocates anything.

Pins: every option a method or search() takes has exactly one spec; each range's ends are where the table says
(inclusive/exclusive), bools are not numbers and text is not a number; messages name the method, the option, what
it accepts and what it got; a bad value costs zero model calls; SoP's round count is bounded by the budget."""
import importlib
import inspect
import math
import re
import time
from pathlib import Path

import pytest

import options_doc

from sampling.option_specs import CALL_SPECS, COMMON_SPECS, SPECS, Spec
from sampling.search import COMMON_OPTIONS, METHODS, method_options, search
from sampling.search_methods import _sop_rounds

README = Path(__file__).resolve().parents[1] / "README.md"


class Counting:
    """denoise that counts its rows (a search rejected up front must not call it)."""

    def __init__(self):
        self.rows = 0

    def __call__(self, x, t):
        self.rows += x.shape[0]
        return 0.5 * x


def reward(x0):
    return -x0.flatten(1).pow(2).mean(1)


def test_every_method_option_has_one_spec_and_every_spec_an_option():
    assert set(SPECS) == set(METHODS)
    for m in METHODS:
        assert set(SPECS[m]) == set(method_options(m)), m
    assert set(COMMON_SPECS) == set(COMMON_OPTIONS)
    call = set(inspect.signature(search).parameters)
    assert set(CALL_SPECS) <= call and not set(CALL_SPECS) & set(COMMON_SPECS)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_defaults_are_accepted_by_their_own_specs(method):
    for name, default in method_options(method).items():
        assert SPECS[method][name].valid(default), (method, name, default)
    for name, default in COMMON_OPTIONS.items():
        assert COMMON_SPECS[name].valid(default), name


def _numeric():
    for m, specs in SPECS.items():
        for name, spec in specs.items():
            if spec.kind in ("int", "float"):
                yield m, name, spec
    for name, spec in COMMON_SPECS.items():
        if spec.kind in ("int", "float"):
            yield "bon", name, spec


@pytest.mark.parametrize("method, name, spec", list(_numeric()), ids=lambda v: v if isinstance(v, str) else "")
def test_range_ends(method, name, spec):
    """Each end is accepted unless open, and a step beyond it never is; NaN, bools and text never are."""
    lo, hi = spec.low, spec.high
    if math.isfinite(lo):
        step = 1 if spec.kind == "int" else max(abs(lo), 1) * 1e-6
        assert spec.valid(lo) is (not spec.open_low)
        assert not spec.valid(lo - step)
    else:
        assert spec.valid(lo) is (not spec.open_low)
    if math.isfinite(hi):
        step = 1 if spec.kind == "int" else max(abs(hi), 1) * 1e-6
        assert spec.valid(hi) is (not spec.open_high)
        assert not spec.valid(hi + step)
    else:
        assert spec.valid(hi) is (not spec.open_high)
    inside = (lo + hi) / 2 if math.isfinite(lo) and math.isfinite(hi) else (lo + 1 if math.isfinite(lo) else
                                                                           hi - 1 if math.isfinite(hi) else 0.5)
    inside = int(inside) if spec.kind == "int" else inside
    assert spec.valid(inside)
    assert not spec.valid(math.nan)
    assert not spec.valid(True) and not spec.valid(str(inside)) and not spec.valid([inside])


def test_kinds():
    i, f = Spec("int", 1, 10), Spec("float", 0, 1)
    assert i.valid(3) and not i.valid(3.0) and not i.valid(10 ** 400)
    assert f.valid(1) and f.valid(0.5) and not f.valid(math.nan) and not f.valid(10 ** 400)
    c = Spec("choice", choices=("a", "b"))
    assert c.valid("a") and not c.valid("A") and not c.valid(None)
    fr = Spec("fractions")
    assert fr.valid([0.25, 0.5]) and fr.valid((0.1, 0.9))
    assert not fr.valid([0.5, 0.25]) and not fr.valid([0, 0.5]) and not fr.valid([0.5, 1]) and not fr.valid([0.5])
    assert not fr.valid(["0.1", "0.2"])
    assert Spec("int", 1, 10, special=(None,)).valid(None) and not i.valid(None)
    assert Spec("bool").valid(False) and not Spec("bool").valid(0)
    assert Spec("int", 1, 10, special=("auto",)).valid("auto")


@pytest.mark.parametrize("method, opts, fragment", [
    ("smc", {"beta": "0.1"}, r"smc: option 'beta' must be a number in \(0, inf\].*got '0\.1' \(text\); write the "
                             r"number without quotes"),
    ("smc", {"beta": 0}, r"smc: option 'beta'.*got 0$"),
    ("svdd", {"beta": 1e300}, r"svdd: option 'beta' must be a number in \[0, 1e\+06\]"),
    ("bon", {"diffusion_norm": 1e6}, r"bon: option 'diffusion_norm' must be a number in \[0, 10\]"),
    ("bon", {"diffusion_norm": -1.0}, r"option 'diffusion_norm'.*got -1\.0"),
    ("noise_search", {"radius": math.inf}, r"noise_search: option 'radius' must be a number in \(0, 100\].*got inf"),
    ("noise_search", {"radius": "big"}, r"option 'radius'.*got 'big' \(text\)"),
    ("svdd", {"n": 2.0}, r"svdd: option 'n' must be an integer in \[1, 100000\].*got 2\.0; write it as 2"),
    ("bon", {"n": True}, r"bon: option 'n'.*or null.*got True"),
    ("smc", {"potential": "sum"}, r"smc: option 'potential' must be one of 'diff', 'max', 'add'.*got 'sum'"),
    ("psp", {"prune_at": [0.5, 0.25]}, r"psp: option 'prune_at' must be two increasing fractions"),
    ("rbf", {"init_noises": 0}, r"rbf: option 'init_noises' must be an integer in \[1, 100000\], or 'auto'.*got 0$"),
    ("bon", {"sde": "false"}, r"bon: option 'sde' must be true or false"),
    ("bon", {"finish_steps": -1}, r"option 'finish_steps' must be an integer in \[0, 1000\]"),
    ("bon", {"guidance_scale": math.nan}, r"option 'guidance_scale'"),
    ("bon", {"diffusion": "cubic"}, r"option 'diffusion' must be one of"),
])
def test_a_bad_value_is_refused_before_any_model_call(method, opts, fragment):
    den = Counting()
    with pytest.raises(ValueError, match=fragment):
        search(den, reward, (4, 8, 8), method=method, nfe_budget=40, **opts)
    assert den.rows == 0


def test_search_still_runs_on_good_values_at_the_range_ends():
    den = Counting()
    res = search(den, reward, (4, 8, 8), method="smc", nfe_budget=40, steps=4, beta=math.inf, ess_threshold=0.0,
                 diffusion_norm=10.0, finish_steps=0)
    assert res.nfe == den.rows == 40


def test_sop_round_count_is_bounded_by_the_budget_not_built_first():
    """Δb − Δf = 9e-9 would need 13 million rounds: refused after at most what the budget affords."""
    assert len(_sop_rounds(0.12, 0.78, 0.81)) == 4
    assert len(_sop_rounds(0.12, 0.78, 0.81, max_rounds=4)) == 4
    with pytest.raises(ValueError, match="need more than 3 re-noising rounds"):
        _sop_rounds(0.12, 0.78, 0.81, max_rounds=3)
    den = Counting()
    t = time.perf_counter()
    with pytest.raises(ValueError, match=r"sop: .*delta_f=1e-09, delta_b=1e-08 need more than 9999 re-noising"):
        search(den, reward, (4, 8, 8), method="sop", nfe_budget=100_000, delta_f=1e-9, delta_b=1e-8)
    assert den.rows == 0 and time.perf_counter() - t < 5     # 13 M rounds took 5.7 s and 1.6 GB
    # the exact budget of the paper's 4 rounds, n = 2, k = 5: n·(1 + 4k) = 42 runs; 41 is refused
    assert search(Counting(), reward, (4, 8, 8), method="sop", nfe_budget=42).nfe == 42
    with pytest.raises(ValueError, match="sop"):
        search(Counting(), reward, (4, 8, 8), method="sop", nfe_budget=41)


def test_readme_options_table_is_the_generated_one():
    text = README.read_text()
    m = re.search(r"<!-- options-table:start -->\n(.*?)\n<!-- options-table:end -->", text, re.S)
    assert m, "README lacks the generated options table (python scripts/options_doc.py --write)"
    assert m.group(1) == options_doc.table(), "README's options table is stale: python scripts/options_doc.py --write"


def test_check_runs_in_split_before_the_method_sees_its_options(monkeypatch):
    """The method function is never entered with an invalid option (the check is not left to the method)."""
    called = []
    monkeypatch.setitem(importlib.import_module("sampling.search").METHODS, "bon", lambda run, n=None: called.append(n))
    with pytest.raises(ValueError, match="option 'n'"):
        search(Counting(), reward, (4, 8, 8), method="bon", nfe_budget=40, n=-3)
    assert called == []


def test_sop_rounds_order_and_the_snap_to_zero():
    """Δf < Δb strictly (equal steps would never reach 0); a residual clock below 1e-9 (float error of f − Δb) is 0,
    so 0.1 + 0.2 − 0.3 = 5.6e-17 ends after one round instead of paying a second."""
    with pytest.raises(ValueError, match="delta_f < delta_b"):
        _sop_rounds(0.12, 0.5, 0.5)
    assert _sop_rounds(0.1, 0.2, 0.3) == [(0.1, pytest.approx(0.3), 0.0)]
    with pytest.raises(ValueError, match="option 'delta_f'"):
        search(Counting(), reward, (4, 8, 8), method="sop", nfe_budget=60, delta_f=0.0)


def test_accepts_texts_of_every_kind():
    assert Spec("object").accepts() == "set by the caller"
    assert Spec("int", 1, 10 ** 6).accepts() == "an integer in [1, 1000000]"      # integers never in e-notation
    assert Spec("float", 0, 1e6, open_low=True).accepts() == "a number in (0, 1e+06]"
    with pytest.raises(ValueError, match=r"got '4' \(text\); write the number without quotes"):
        Spec("int", 1, 10).check("n", "4", "bon")
    with pytest.raises(ValueError, match=r"got '0.5' \(text\); write the number without quotes"):
        Spec("float", 0, 1).check("t0", "0.5", "sop")


def test_fractions_must_strictly_increase():
    assert not Spec("fractions").valid([0.3, 0.3]) and Spec("fractions").valid([0.3, 0.31])
