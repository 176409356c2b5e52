"""Comfy Registry metadata: the icon pyproject.toml points at exists, the dependency floors are the tested versions
and agree with requirements.txt, and the publish workflow is valid YAML using the registry's action."""
import os
import re

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
yaml = pytest.importorskip("yaml")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the versions the test suite runs against (scripts/setup.sh, the transformers 4.x/5.x runs)
TESTED = {"comfyui": ">=0.3.75", "transformers": ">=4.57"}


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def test_icon_exists_and_fits_the_registry():
    from PIL import Image
    icon = _pyproject()["tool"]["comfy"]["Icon"]
    rel = icon.split("/main/", 1)[1]
    path = os.path.join(ROOT, rel)
    assert os.path.isfile(path), f"pyproject.toml Icon points at {rel}, which is missing: run scripts/make_icon.py"
    assert os.path.getsize(path) < 100_000
    with Image.open(path) as im:
        assert im.size == (400, 400) and im.format == "PNG"


def test_floors_are_the_tested_versions():
    pp = _pyproject()
    assert pp["tool"]["comfy"]["requires-comfyui"] == TESTED["comfyui"]
    deps = {re.split(r"[<>=!~ ]", d, 1)[0]: d for d in pp["project"]["dependencies"]}
    assert deps["transformers"] == "transformers" + TESTED["transformers"]
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        reqs = {re.split(r"[<>=!~ ]", line.strip(), 1)[0]: line.strip() for line in f
                if line.strip() and not line.startswith("#")}
    assert reqs == deps, "requirements.txt and pyproject.toml [project] dependencies disagree"


def test_publish_workflow():
    with open(os.path.join(ROOT, ".github", "workflows", "publish.yml")) as f:
        wf = yaml.safe_load(f)
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on["push"]["tags"] == ["v*"] and "workflow_dispatch" in on
    steps = wf["jobs"]["publish-node"]["steps"]
    publish = [s for s in steps if s.get("uses", "").startswith("Comfy-Org/publish-node-action@")]
    assert len(publish) == 1
    assert publish[0]["with"]["personal_access_token"] == "${{ secrets.REGISTRY_ACCESS_TOKEN }}"
