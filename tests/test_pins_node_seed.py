"""Direction pins for the FlowSearch node's seed (issue 11), in-process ComfyUI on the tiny FLUX: the seed widget
reaches the search, and latent i of a batch is searched with seed + i (the glue's seed lines; their hand mutants
run with `scripts/mutate.sh --glue`, docs/mutation.md)."""
import json

import pytest
import torch


# ---- the FlowSearch node: the seed widget reaches every latent, latent i gets seed + i -----------------------------
@pytest.fixture(scope="module")
def node(comfy_inproc):
    import importlib
    sn = comfy_inproc.node_module("search_nodes")
    rw = importlib.import_module("comfyui_flowsearch.rewards")
    cond = comfy_inproc.tiny_cond()
    model_, vae = comfy_inproc.tiny_flux(), comfy_inproc.vae()

    def run(seed, batch=1, preset="Best-of-N"):
        out = sn.FlowSearch.execute(model_, cond, {"samples": torch.zeros(batch, 16, 8, 8)}, vae, rw.JpegReward(),
                                    seed, preset, 4, "vp", 8, "", 0, 0, 0.0, "")
        return out.result[1]["samples"], json.loads(out.result[3])
    return run


def test_node_searches_latent_i_of_a_batch_with_seed_plus_i(node):
    lat, rep = node(seed=5, batch=2)
    assert [s["options"]["seed"] for s in rep["searches"]] == [5, 6]
    single, rep1 = node(seed=6)
    assert rep1["searches"][0]["options"]["seed"] == 6
    torch.testing.assert_close(lat[1:], single, rtol=1e-4, atol=1e-5)   # batching noise only
    assert float((lat[0] - lat[1]).abs().max()) > 1e-2


def test_node_uses_its_seed_widget(node):
    a, rep_a = node(seed=0)
    b, rep_b = node(seed=1)
    assert rep_a["searches"][0]["options"]["seed"] == 0 and rep_b["searches"][0]["options"]["seed"] == 1
    assert float((a - b).abs().max()) > 1e-2
