"""FlowSearch Options node: widgets at their sentinels send nothing; a changed widget reaches its method only; the node
wins over the JSON options; widget ranges are the option table's; presets and method ids resolve alike; the report
says when an Interpolant Converter overrides the interpolant widget."""
import json
import math

import pytest
import torch


@pytest.fixture(scope="module")
def mods(comfy_inproc):
    import importlib
    on = comfy_inproc.node_module("options_node")
    return {"on": on, "sn": comfy_inproc.node_module("search_nodes"), "so": comfy_inproc.node_module("search_options"),
            "sp": importlib.import_module("comfyui_flowsearch.sampling.option_specs"),
            "rw": importlib.import_module("comfyui_flowsearch.rewards"), "inproc": comfy_inproc,
            "model": comfy_inproc.tiny_flux(), "vae": comfy_inproc.vae(), "cond": comfy_inproc.tiny_cond()}


def _defaults(on):
    """Every widget at its declared default (what a fresh node sends)."""
    schema = on.FlowSearchOptions.define_schema()
    return {i.id: i.default for i in schema.inputs}


def test_a_fresh_node_sends_nothing(mods):
    on = mods["on"]
    assert on.build_options(_defaults(on)) == {}
    for method in ("rbf", "smc", "psp"):
        assert on.options_for(method, on.build_options(_defaults(on))) == ({}, [])


def test_changed_widgets_reach_their_method_only(mods):
    on = mods["on"]
    v = {**_defaults(on), "n": 3, "beta": 0.5, "rbf_min_draws": 4, "smc_particle_schedule": "funnel",
         "diffusion_norm": 2.0, "reward_resolution": "224", "sde": "ODE (deterministic)", "rbf_init_noises": 0}
    opts = on.build_options(v)
    assert set(opts) == {"n", "beta", "rbf_min_draws", "smc_particle_schedule", "diffusion_norm", "reward_resolution",
                         "sde", "rbf_init_noises"}                        # only what left its sentinel
    flat, ignored = on.options_for("rbf", opts)
    assert flat == {"n": 3, "min_draws": 4, "init_noises": None, "diffusion_norm": 2.0,
                    "reward_resolution": 224, "sde": False}
    assert ignored == ["beta", "smc_particle_schedule"]           # rbf has no beta; the smc knob is not rbf's
    flat, ignored = on.options_for("smc", opts)
    assert flat["beta"] == 0.5 and flat["n"] == 3 and flat["particle_schedule"] == "funnel"
    assert "min_draws" not in flat and ignored == ["rbf_init_noises", "rbf_min_draws"]
    flat, ignored = on.options_for("rbf_adaptive", opts)                   # the RBF family shares the rbf_* knobs
    assert flat["n"] == 3 and flat["init_noises"] is None and "min_draws" not in flat
    assert ignored == ["beta", "rbf_min_draws", "smc_particle_schedule"]   # rbf_adaptive has no min_draws
    flat, _ = on.options_for("rbf_threshold", opts)
    assert flat["min_draws"] == 4 and "tau" not in flat


def test_threshold_tau_has_the_method_default_as_its_sentinel(mods):
    """Any τ is meaningful (−1 = within one count of −RSS), so only a τ other than the method's default is sent."""
    on = mods["on"]
    d = _defaults(on)
    assert d["rbf_threshold_tau"] == 0.0 and on.build_options(d) == {}
    opts = on.build_options({**d, "rbf_threshold_tau": -1.0, "rbf_threshold_tau_mode": "absolute"})
    assert on.options_for("rbf_threshold", opts) == ({"tau": -1.0, "tau_mode": "absolute"}, [])
    assert on.options_for("rbf", opts)[1] == ["rbf_threshold_tau", "rbf_threshold_tau_mode"]


def test_psp_fractions_fill_from_the_default(mods):
    on = mods["on"]
    opts = on.build_options({**_defaults(on), "psp_prune_second": 0.75})
    assert on.options_for("psp", opts)[0] == {"prune_at": [0.25, 0.75]}


def test_widget_ranges_come_from_the_option_table(mods):
    on, sp = mods["on"], mods["sp"]
    inputs = {i.id: i for i in on.FlowSearchOptions.define_schema().inputs}
    assert set(inputs) == {w for w, _, _ in on.FIELDS}
    for widget, section, option in on.FIELDS:
        i = inputs[widget]
        if isinstance(section, tuple) or section == on.SHARED:
            methods = on._methods(section, option)
            assert methods, widget                                        # every knob reaches some method
            specs = [sp.SPECS[m][option] for m in methods]
            same = {(x.kind, x.low, x.high, x.choices) for x in specs} if section != on.SHARED else \
                {x.kind for x in specs}
            assert len(same) == 1, widget                                 # one widget, one meaning
            spec = specs[0]
        elif section == on.COMMON:
            spec = sp.COMMON_SPECS[option]
        else:
            continue
        if widget in on.NO_SENTINEL:
            assert i.min == -on.FLOAT_MAX and i.max == on.FLOAT_MAX
            continue
        if spec.kind == "choice":
            assert i.options == ["default", *spec.choices], widget
        elif spec.kind == "int":
            assert i.max == spec.high, widget
        elif spec.kind == "float":
            assert i.max == min(spec.high, on.FLOAT_MAX), widget
        if spec.kind != "fractions":
            assert spec.doc.split(";")[0][1:] in i.tooltip, widget


def test_shared_knob_names_one_meaning():
    """n, k and beta mean the same kind of value in every method that has them (one widget serves them all)."""
    from sampling.option_specs import SPECS
    for option in ("n", "k", "beta"):
        kinds = {SPECS[m][option].kind for m in SPECS if option in SPECS[m]}
        assert len(kinds) == 1, (option, kinds)


def _run(mods, preset="RBF (paper)", options="", search_options=None, model=None, interpolant="vp"):
    out = mods["sn"].FlowSearch.execute(model or mods["model"], mods["cond"], {"samples": torch.zeros(1, 16, 8, 8)},
                                        mods["vae"], mods["rw"].JpegReward(), 0, preset, 4, interpolant, 24, "", 0, 0,
                                        0.0, options, search_options=search_options)
    return json.loads(out.result[3]), out.ui


def test_node_wins_over_json_and_json_over_preset(mods):
    on = mods["on"]
    node = on.build_options({**_defaults(on), "n": 3})
    rep, _ = _run(mods, "SMC (funnel)", options='{"n": 5, "final_particles": 2}', search_options=node)
    o = rep["searches"][0]["options"]
    assert o["n"] == 3 and o["final_particles"] == 2 and o["particle_schedule"] == "funnel"
    rep, _ = _run(mods, "SMC (funnel)", options='{"particle_schedule": "constant"}')
    assert rep["searches"][0]["options"]["particle_schedule"] == "constant"      # JSON over the preset


def test_ignored_widgets_are_named_in_the_report(mods):
    on = mods["on"]
    rep, ui = _run(mods, "Best-of-N", search_options=on.build_options({**_defaults(on), "rbf_min_draws": 3}))
    assert any("rbf_min_draws" in n and "bon" in n for n in rep["notes"])
    assert "rbf_min_draws" in ui["text"][0]


@pytest.mark.parametrize("name, method", [("RBF (paper)", "rbf"), ("rbf", "rbf"), ("SMC", "smc"), ("smc", "smc"),
                                          ("psp", "psp"), ("PSP (seed pruning)", "psp"), ("best-of-n", "bon")])
def test_presets_and_method_ids_resolve_alike(mods, name, method):
    assert mods["so"].resolve_preset(name)[0] == method


def test_method_id_maps_to_the_plain_preset(mods):
    assert mods["so"].resolve_preset("smc") == ("smc", {})


def test_unknown_preset_names_the_choices(mods):
    with pytest.raises(ValueError, match=r"unknown preset or method 'RBF\+\+'; use one of SMC \(adaptive β\), "
                                         r"RBF \(paper\), SVDD"):
        mods["so"].resolve_preset("RBF++")


@pytest.mark.parametrize("key, fragment", [("steps", "steps widget"), ("seed", "seed widget"),
                                           ("nfe_budget", "nfe_budget widget"), ("interpolant", "Interpolant Conv"),
                                           ("parametrisation", "derives from the connected model"),
                                           ("dtype", "derives"), ("device", "derives")])
def test_widget_keys_in_the_json_name_the_widget(mods, key, fragment):
    with pytest.raises(ValueError, match=rf"the options JSON sets '{key}'.*{fragment}.*remove '{key}'"):
        mods["so"].parse_options(json.dumps({key: 1}))


def test_converter_upstream_is_said_and_a_clash_warned(mods):
    sm = mods["inproc"].node_module("sampling_nodes")
    conv = sm.convert_model(mods["model"], "cosine")
    rep, ui = _run(mods, model=conv, interpolant="vp")
    assert rep["interpolant"].startswith("cosine")
    note = " ".join(rep["notes"])
    assert "Interpolant Converter" in note and "'vp'" in note and "Warning: they disagree" in note
    assert "Interpolant Converter" in ui["text"][0]
    rep, _ = _run(mods, model=conv, interpolant="cosine")
    assert "disagree" not in " ".join(rep["notes"])
    rep, _ = _run(mods)
    assert "notes" not in rep                                              # nothing to say without a converter


def test_floats_at_the_sentinel_are_not_sent(mods):
    on = mods["on"]
    v = {**_defaults(on), "sop_t0": -1.0, "beta": -1.0, "noise_search_radius": 0.25}
    assert on.build_options(v) == {"noise_search_radius": 0.25}
    assert math.isclose(on.options_for("noise_search", on.build_options(v))[0]["radius"], 0.25)
