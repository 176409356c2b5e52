"""web/flowsearch.js's text logic under Node.js (skipped where `node` is missing; tests/test_ui_browser.py checks
the extension in the real frontend after a run): which candidate is marked chosen, in which order the lines
come, and that the server's one-line score list is replaced, not repeated."""
import json
import os
import shutil
import subprocess

import pytest

import host

NODE = shutil.which("node")
JS = os.path.join(host.ROOT, "web", "flowsearch.js")
pytestmark = pytest.mark.skipif(NODE is None, reason="node (Node.js) is not installed")

HARNESS = r"""
import fs from 'fs';
const src = fs.readFileSync(process.env.FLOWSEARCH_JS, 'utf8')
  .replace('import { app } from "../../scripts/app.js";', 'const app = {registerExtension() {}};')
  .replace('import { api } from "../../scripts/api.js";', 'const api = {};');
const mod = await import('data:text/javascript,' + encodeURIComponent(src));
const messages = JSON.parse(fs.readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(messages.map(m => mod.summaryText(m))));
"""


def summary_texts(messages):
    out = subprocess.run([NODE, "--input-type=module", "-e", HARNESS], input=json.dumps(messages), text=True,
                         capture_output=True, timeout=60, env={**os.environ, "FLOWSEARCH_JS": JS})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_flowsearch_text_lists_every_candidate_and_marks_the_chosen_one():
    report = {"searches": [{"candidate_rewards": [-2.0, 0.5, None, 0.25], "chosen": 1}]}
    text = "rbf · NFE 100/100 · best reward 0.5 · 3.0 s\ncounts line\nsearch 0: chosen #1 of [-2, 0.5, —, 0.25]"
    (out,) = summary_texts([{"text": [text], "flowsearch_report": [json.dumps(report)]}])
    assert out.splitlines() == ["rbf · NFE 100/100 · best reward 0.5 · 3.0 s", "candidates:", "  #0  -2.000",
                                "  #1  0.5000  ← chosen", "  #2  —", "  #3  0.2500", "counts line"]


def test_several_searches_are_labelled_and_score_images_text_is_shown_as_sent():
    report = {"searches": [{"candidate_rewards": [1.0, 2.0], "chosen": 1},
                           {"candidate_rewards": [3.0, 0.0], "chosen": 0}]}
    fs, score, empty = summary_texts([{"text": ["x · NFE 8/8"], "flowsearch_report": [json.dumps(report)]},
                                      {"text": ["count_objects\n#0: -1.0000\n#1: 0.0000  <- best"]},
                                      {"images": []}])
    lines = fs.splitlines()
    assert lines[1] == "candidates of search 0:" and lines[4] == "candidates of search 1:"
    assert [ln for ln in lines if ln.endswith("← chosen")] == ["  #1  2.000  ← chosen", "  #0  3.000  ← chosen"]
    assert score == "count_objects\n#0: -1.0000\n#1: 0.0000  <- best"
    assert empty == ""
