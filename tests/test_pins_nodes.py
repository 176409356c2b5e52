"""Direction pins for the seed and option plumbing (issue 11): the k-diffusion sampler's per-image noise and the
options JSON parser (pure torch; the FlowSearch node's own seed is pinned in tests/test_pins_node_seed.py).

`nodes/search_options.py` is loaded from its file under the name `nodes.search_options`, without registering a
`nodes` package (ComfyUI has a top-level `nodes` module of its own); the mutation run (docs/mutation.md) mutates
that file under that name."""
import importlib.util
import json
import os

import pytest
import torch

from sampling.ksampler import sample_sde_k

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _search_options():
    spec = importlib.util.spec_from_file_location("nodes.search_options",
                                                  os.path.join(ROOT, "nodes", "search_options.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


OPTS = _search_options()


# ---- options JSON ------------------------------------------------------------------------------------------------
def test_options_json_object_is_parsed():
    assert OPTS.parse_options('  {"n": 4, "beta": 0.5} ') == {"n": 4, "beta": 0.5}
    assert OPTS.parse_options("") == {} and OPTS.parse_options(None) == {} and OPTS.parse_options("   ") == {}


@pytest.mark.parametrize("text", ["[1, 2]", "3", '"n"', "null", "true"])
def test_options_json_that_is_not_an_object_is_refused(text):
    with pytest.raises(ValueError, match="options must be a JSON object"):
        OPTS.parse_options(text)


def test_options_json_syntax_error_names_the_field():
    with pytest.raises(ValueError, match=r'options must be a JSON object such as \{"n": 4\}; could not parse'):
        OPTS.parse_options("{n: 4")


# ---- k-diffusion SDE sampler: one noise stream per image -----------------------------------------------------------
def model(x, sigma, **extra):
    """A scripted denoiser: x0̂ = x/2 (ComfyUI passes extra_args such as the seed as keywords)."""
    return 0.5 * x


SIGMAS = torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0])


def test_ksampler_gives_each_image_of_a_batch_its_own_noise():
    x = torch.ones(2, 4)
    out = sample_sde_k(model, x, SIGMAS, {"seed": 3})
    assert float((out[0] - out[1]).abs().max()) > 1e-3
    # image 0 of the batch is the single-image run: the noise is keyed by (seed, image index, step)
    torch.testing.assert_close(out[:1], sample_sde_k(model, x[:1], SIGMAS, {"seed": 3}), rtol=0, atol=0)


def test_ksampler_seed_comes_from_extra_args_unless_given():
    x = torch.ones(1, 4)
    a = sample_sde_k(model, x, SIGMAS, {"seed": 7})
    torch.testing.assert_close(a, sample_sde_k(model, x, SIGMAS, {}, seed=7), rtol=0, atol=0)
    assert float((a - sample_sde_k(model, x, SIGMAS, {"seed": 8})).abs().max()) > 1e-3
    assert float((a - sample_sde_k(model, x, SIGMAS, {"seed": 7}, sde=False)).abs().max()) > 1e-3


# ---- presets, widget keys and the glue options -------------------------------------------------------------------
def test_presets_resolve_by_label_or_method_id_in_any_case():
    assert OPTS.resolve_preset("RBF (paper)") == ("rbf", {})
    assert OPTS.resolve_preset("  smc (FUNNEL) ") == ("smc", {"particle_schedule": "funnel"})
    assert OPTS.resolve_preset("svdd") == ("svdd", {}) and OPTS.resolve_preset("Noise_Search") == ("noise_search", {})
    assert OPTS.resolve_preset("smc") == ("smc", {})          # the id gives the plain method, not a variant of it
    with pytest.raises(ValueError, match="unknown preset or method 'rbff'"):
        OPTS.resolve_preset("rbff")


@pytest.mark.parametrize("key", ["seed", "steps", "nfe_budget", "interpolant", "preset"])
def test_options_json_refuses_widget_keys_naming_the_widget(key):
    with pytest.raises(ValueError, match=f"the options JSON sets '{key}', but .*widget"):
        OPTS.parse_options(json.dumps({key: 1}))


@pytest.mark.parametrize("key", ["parametrisation", "device", "dtype", "callback"])
def test_options_json_refuses_host_keys(key):
    with pytest.raises(ValueError, match=f"sets '{key}', which ComfyUI derives from the connected model"):
        OPTS.parse_options(json.dumps({key: 1}))


def test_split_options_pops_the_glue_keys_with_their_defaults():
    search, glue = OPTS.split_options({"n": 3, "reward_resolution": 224, "reward_decoder": "taesd"})
    assert search == {"n": 3} and glue == {"reward_resolution": 224, "reward_decoder": "taesd"}
    assert OPTS.split_options(None) == ({}, dict(OPTS.GLUE_OPTIONS))
    assert OPTS.split_options({"reward_resolution": "full"})[1]["reward_resolution"] == "full"
    assert OPTS.split_options({"reward_resolution": 0})[1]["reward_resolution"] == 0
    assert OPTS.split_options({"reward_resolution": 8})[1]["reward_resolution"] == 8


@pytest.mark.parametrize("value,match", [(-1, "reward_resolution must be"), (True, "reward_resolution must be"),
                                         ("big", "reward_resolution must be"), (2.0, "reward_resolution must be"),
                                         (7, "below one latent pixel")])
def test_split_options_refuses_bad_reward_resolution(value, match):
    with pytest.raises(ValueError, match=match):
        OPTS.split_options({"reward_resolution": value})


def test_split_options_refuses_unknown_decoders():
    with pytest.raises(ValueError, match="reward_decoder must be one of 'vae', 'taesd'"):
        OPTS.split_options({"reward_decoder": "tiny"})


def test_clock_from_sigmas_per_parametrisation():
    from sampling import get_interpolant
    from sampling.ksampler import clock_from_sigmas
    sig = [1.0, 0.6, 0.2, 0.0]
    torch.testing.assert_close(clock_from_sigmas(sig, "linear", "linear"), torch.tensor(sig, dtype=torch.float64))
    vp = get_interpolant("vp")
    t = torch.tensor([0.6, 0.2], dtype=torch.float64)
    torch.testing.assert_close(clock_from_sigmas([0.6, 0.2], "vp", "linear"), vp.s_from_linear(t))
    ve = torch.tensor([3.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(clock_from_sigmas(ve, "vp", "ve"), vp.s_from_sigma_ve(ve))
    assert float(clock_from_sigmas([1.0 + 1e-7], "linear", "linear")[0]) == 1.0       # clamped to the clock
    with pytest.raises(ValueError, match="unknown parametrisation 'eps'"):
        clock_from_sigmas(sig, "vp", "eps")


def test_presets_resolve_with_beta_spelled_out():
    """'SMC (adaptive beta)' (what an API user can type) is the 'SMC (adaptive β)' preset; an id is its plain preset."""
    assert OPTS.resolve_preset("smc (adaptive beta)") == OPTS.PRESETS["SMC (adaptive β)"]
    assert OPTS.resolve_preset("SMC (ADAPTIVE Β)") == OPTS.PRESETS["SMC (adaptive β)"]
    assert OPTS.resolve_preset("rbf_adaptive") == ("rbf_adaptive", {})


@pytest.mark.parametrize("r", [1, 7])
def test_reward_resolution_below_one_latent_pixel_is_refused(r):
    with pytest.raises(ValueError, match=f"reward_resolution={r} is below one latent pixel"):
        OPTS.split_options({"reward_resolution": r})
    assert OPTS.split_options({"reward_resolution": 8})[1]["reward_resolution"] == 8
