"""Bad-input matrix, search options (issue 11 items 4, 6, 8, 9): each row drives one bad option through the real
ComfyUI server (fixture ``comfy``) and asserts that the error text names the input and the fix, that the server
stays alive, and that the next normal prompt produces an image. Without the check each row either succeeds with
nonsense (a black or NaN image) or fails with a raw error (`TypeError: got multiple values`, `KeyError`) or holds
the server (13 million SoP rounds).

Row shape: (id, API prompt builder, regex naming the input, regex naming the fix)."""
import re
import time

import pytest

import host
from playground_graphs import sampler_inputs, sampler_nodes

HEAD = {
    "1": {"class_type": "FlowSearchPlaygroundLoader", "inputs": {"weights": "playground_flux.safetensors"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "two red squares and one blue cross"}},
    "3": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "4": {"class_type": "FlowSearchRewardJPEG", "inputs": {"mode": "compressibility", "quality": 95}},
}
OPTS_DEFAULTS = {"n": 0, "k": 0, "beta": -1.0, "rbf_init_noises": -1, "rbf_min_draws": 0, "rbf_last_level": "default",
                 "rbf_threshold_tau": 0.0, "rbf_threshold_tau_mode": "default", "rbf_adaptive_kappa": -1.0,
                 "smc_particle_schedule": "default", "smc_final_particles": 0, "smc_temperature_schedule": "default",
                 "smc_potential": "default", "smc_ess_threshold": -1.0, "smc_target_ess": -1.0,
                 "smc_resampling": "default", "sop_t0": -1.0, "sop_delta_f": -1.0,
                 "sop_delta_b": -1.0, "sop_selection": "default", "psp_prune_first": -1.0, "psp_prune_second": -1.0,
                 "noise_search_radius": -1.0, "noise_search_mode": "default", "code_block": 0, "diffusion": "default",
                 "diffusion_norm": -1.0, "sde": "default", "reward_resolution": "default", "reward_decoder": "default"}


def _options_node(object_info, **changed):
    """A FlowSearch Options node with every widget at its default except `changed`."""
    names = object_info["FlowSearchOptions"]["input"]["required"]
    inputs = {k: v[1].get("default") for k, v in names.items()}
    return {"class_type": "FlowSearchOptions", "inputs": {**inputs, **changed}}


def flowsearch(options="", preset="RBF (paper)", budget=12, search_options=None, **extra):
    node = {"model": ["1", 0], "positive": ["2", 0], "latent": ["3", 0], "vae": ["1", 2], "reward": ["4", 0],
            "seed": 0, "preset": preset, "steps": 4, "interpolant": "vp", "nfe_budget": budget, "prompt": "",
            "max_batch": 0, "finish_steps": 0, "guidance_scale": 0.0, "options": options, "grid": "uniform", **extra}
    g = {**HEAD, "5": {"class_type": "FlowSearch", "inputs": node},
         "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}}}
    if search_options is not None:
        g["7"] = search_options
        node["search_options"] = ["7", 0]
    return g


def sampler(options="", method="rbf"):
    return {**HEAD, **sampler_nodes(sampler_inputs("4", method=method, options=options), grid="uniform")}


ROWS = [
    # item 4: an options string that would build 13 M SoP rounds is refused by arithmetic, at once
    ("sop-tiny-deltas", lambda oi: flowsearch('{"delta_f": 1e-9, "delta_b": 1e-8}', "SoP", budget=500),
     r"delta_f=1e-09, delta_b=1e-08", r"raise delta_b − delta_f"),
    ("sop-delta-out-of-range", lambda oi: flowsearch('{"delta_b": 1.5}', "SoP"),
     r"sop: option 'delta_b' must be a number in \(0, 1\)", r"got 1\.5"),
    # item 6: widget-owned and host-owned keys in the JSON
    ("json-steps", lambda oi: flowsearch('{"steps": 4}'), r"options JSON sets 'steps'", r"steps widget"),
    ("json-seed", lambda oi: flowsearch('{"seed": 1}'), r"options JSON sets 'seed'", r"seed widget"),
    ("json-finish-steps", lambda oi: flowsearch('{"finish_steps": 2}'), r"'finish_steps'", r"finish_steps widget"),
    ("json-guidance", lambda oi: flowsearch('{"guidance_scale": 1}'), r"'guidance_scale'", r"guidance_scale widget"),
    ("json-parametrisation", lambda oi: flowsearch('{"parametrisation": "ve"}'), r"'parametrisation'",
     r"derives from the connected model: remove"),
    ("json-device", lambda oi: flowsearch('{"device": "cuda"}'), r"'device'", r"remove 'device'"),
    ("json-dtype", lambda oi: flowsearch('{"dtype": "float16"}'), r"'dtype'", r"remove 'dtype'"),
    ("sampler-json-seed", lambda oi: sampler('{"seed": 3}'), r"'seed'", r"SamplerCustomAdvanced's noise seed"),
    ("json-not-object", lambda oi: flowsearch('[1, 2]'), r"options must be a JSON object", r'\{"n": 4\}'),
    ("json-unknown-key", lambda oi: flowsearch('{"temperature": 2}'), r"unknown option\(s\) temperature",
     r"its options are n, init_noises"),
    # item 8: raw errors before
    ("beta-text", lambda oi: flowsearch('{"beta": "hot"}', "SMC"), r"smc: option 'beta'.*got 'hot'",
     r"number in \(0, inf\]"),
    ("beta-huge", lambda oi: flowsearch('{"beta": 1e999}', "SVDD"), r"svdd: option 'beta'", r"\[0, 1e\+06\]"),
    ("radius-text", lambda oi: flowsearch('{"radius": "far"}', "Noise search"), r"option 'radius'",
     r"write the number without quotes"),
    ("unknown-preset", lambda oi: flowsearch(preset="RBF++"), r"unknown preset or method 'RBF\+\+'",
     r"use one of SMC \(adaptive β\), RBF \(paper\)"),
    ("sampler-unknown-method", lambda oi: sampler(method="rbf2"), r"unknown preset or method 'rbf2'",
     r"use one of SMC \(adaptive β\), RBF \(paper\)"),
    # item 9: nonsense accepted silently before
    ("diffusion-norm-huge", lambda oi: flowsearch('{"diffusion_norm": 1e6}'), r"option 'diffusion_norm'",
     r"\[0, 10\]"),
    ("diffusion-norm-negative", lambda oi: flowsearch('{"diffusion_norm": -1}'), r"option 'diffusion_norm'",
     r"got -1"),
    ("radius-infinity", lambda oi: flowsearch('{"radius": Infinity}', "Noise search"), r"option 'radius'",
     r"\(0, 100\].*got inf"),
    ("sde-text", lambda oi: flowsearch('{"sde": "no"}'), r"option 'sde'", r"true or false"),
    # the typed node: a value its widget range allows but the method does not
    ("options-node-smc-beta-0", lambda oi: flowsearch(preset="SMC", search_options=_options_node(oi, beta=0.0)),
     r"smc: option 'beta'", r"\(0, inf\]"),
    ("options-node-sop-deltas", lambda oi: flowsearch(preset="SoP", search_options=_options_node(
        oi, sop_delta_f=0.9, sop_delta_b=0.5)), r"delta_f < delta_b", r"the paper uses"),
]


def normal_prompt(seed):
    return flowsearch(budget=8, seed=seed)


@pytest.mark.parametrize("build, input_re, fix_re", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_option_names_input_and_fix_and_server_carries_on(comfy, build, input_re, fix_re):
    t0 = time.time()
    with pytest.raises(host.ComfyError) as e:
        comfy.run(build(comfy.object_info()), timeout=120)
    msg = str(e.value)
    assert re.search(input_re, msg, re.S), msg
    assert re.search(fix_re, msg, re.S), msg
    for raw in ("Traceback", "KeyError", "TypeError", "got multiple values", "NoneType"):
        assert raw not in msg, msg
    assert time.time() - t0 < 60, "a refused option must not run the search first"
    assert comfy.alive()
    assert host.output_images(comfy.run(normal_prompt(int(time.time()) % 1000), timeout=120))


def test_every_default_of_the_options_node_is_known_here(comfy):
    """The matrix's view of the node is the server's (a renamed widget fails here, not silently)."""
    assert set(comfy.object_info()["FlowSearchOptions"]["input"]["required"]) == set(OPTS_DEFAULTS)
    assert _options_node(comfy.object_info())["inputs"] == OPTS_DEFAULTS


def test_options_node_values_reach_the_search(comfy):
    g = flowsearch(preset="SMC", budget=12, search_options=_options_node(comfy.object_info(), n=2,
                                                                          smc_ess_threshold=0.0))
    import json
    rep = json.loads(comfy.run(g, timeout=120)["outputs"]["5"]["flowsearch_report"][0])
    o = rep["searches"][0]["options"]
    assert o["n"] == 2 and o["ess_threshold"] == 0.0 and rep["nfe"] == 8
