"""Bad-input matrix, reward side (issue 11): each row drives one bad input through the real ComfyUI server (fixture
``comfy``) and asserts that the error text names the input and the fix, that the server stays alive, and that the
next normal prompt produces an image. Rows pin the checks' direction: without the check, the row's prompt either
succeeds (no error) or fails with a raw error that names neither.

Row shape: (id, graph builder -> API prompt, regex naming the input, regex naming the fix). Beside the matrix: the
outside-path texts say nothing about existence, a too-long FlowSearch prompt is refused, and Cancel stops a slow
reward between minibatches (Score Images and FlowSearch; tests/comfy_test_nodes FlowSearchTestSlowReward)."""
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import tiny_rewards  # noqa: E402

host = pytest.importorskip("host")

LONG_PROMPT = "two red cats on a table " * 120  # ~600 words: over every tiny VQAScore model's 512/256-token limit


@pytest.fixture(scope="module")
def server(comfy):
    tiny_rewards.build_all(tiny_rewards.BASE_REWARDS)
    return comfy


# ------------------------------------------------------------------------------------------------ graph pieces
def _images(n=1, color=0x336699):
    return {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": n, "color": color}}


def _score(reward="r", prompt="two red cats", images="img"):
    return {"class_type": "FlowSearchScoreImages",
            "inputs": {"images": [images, 0], "reward": [reward, 0], "prompt": prompt}}


def _scored(reward_node, prompt="two red cats"):
    return {"img": _images(), "r": reward_node, "s": _score(prompt=prompt)}


def _clip(model="tiny-clip", metric="clip_score", dtype="auto"):
    return {"class_type": "FlowSearchRewardLoaderCLIP",
            "inputs": {"model": model, "metric": metric, "dtype": dtype, "batch_size": 8}}


def _vqa(model="tiny-clip-flant5", question="", backend="auto"):
    return {"class_type": "FlowSearchRewardLoaderVQAScore",
            "inputs": {"model": model, "backend": backend, "question": question, "answer": "", "dtype": "auto",
                       "batch_size": 4}}


def _counting(detector="tiny-grounding-dino", sam="none", class_names="cats, dogs", counts="2, 1", mode="hard",
              box_threshold=0.2):
    return {"class_type": "FlowSearchRewardLoaderCounting",
            "inputs": {"detector": detector, "sam": sam, "class_names": class_names, "counts": counts,
                       "box_threshold": box_threshold, "text_threshold": 0.2, "mode": mode, "dtype": "auto",
                       "batch_size": 4}}


def _jpeg(mode="compressibility"):
    return {"class_type": "FlowSearchRewardJPEG", "inputs": {"mode": mode, "quality": 95}}


def _colour(color):
    return {"class_type": "FlowSearchRewardColor", "inputs": {"color": color, "per_pixel": False}}


def _count_objects(targets):
    return {"class_type": "FlowSearchCountObjectsReward", "inputs": {"targets": targets}}


# every input regex must match the node's own text only, never the host's "prompt failed in node ..." prefix
TOO_LONG = r"the prompt is too long"
MANY_CLASSES = ", ".join(f"{w}{i}" for i, w in enumerate(["cats", "dogs", "birds"] * 40))

ROWS = [
    # 1. prompts over the text model's limit: refused with the limit, never run (memory grows with length²)
    ("vqa-clip-t5-long-prompt", lambda: _scored(_vqa("tiny-clip-flant5"), LONG_PROMPT), TOO_LONG, r"shorten"),
    ("vqa-clip-t5-120k-chars", lambda: _scored(_vqa("tiny-clip-flant5"), "x" * 120_000), TOO_LONG + r" \(120000 char",
     r"shorten"),
    ("vqa-blip2-long-prompt", lambda: _scored(_vqa("tiny-blip2-flant5"), LONG_PROMPT), TOO_LONG, r"shorten"),
    ("vqa-instructblip-long-prompt", lambda: _scored(_vqa("tiny-instructblip-flant5"), LONG_PROMPT), TOO_LONG,
     r"shorten"),
    ("vqa-qwen-long-prompt", lambda: _scored(_vqa("tiny-qwen2.5-vl"), LONG_PROMPT), TOO_LONG, r"shorten"),
    ("vqa-llava-long-prompt", lambda: _scored(_vqa("tiny-llava"), LONG_PROMPT), TOO_LONG, r"at most 256 tokens"),
    ("count-objects-long-prompt", lambda: _scored(_count_objects(""), "three red squares " * 20),
     r"\(the prompt\): the caption is 360 characters", r"at most 200"),
    ("count-objects-superscript-count", lambda: _scored(_count_objects("² red squares")),
     r"input 'targets'.*'² red squares'", r"count one\.\.six"),
    # 2. folder names outside the registered rewards folders: refused before any file-system access
    ("loader-absolute-path", lambda: _scored(_clip(str(tiny_rewards.BASE_REWARDS / "tiny-clip"))), r"input 'model'",
     r"Choose one of the folders listed under models/rewards"),
    ("loader-dotdot", lambda: _scored(_clip("../../..")), r"input 'model'", r"'\.\.' are not accepted"),
    ("loader-nested-dotdot", lambda: _scored(_clip("tiny-clip/../../rewards/tiny-clip")), r"input 'model'",
     r"'\.\.' are not accepted"),
    ("counting-sam-absolute-path", lambda: _scored(_counting(sam=str(tiny_rewards.BASE_REWARDS / "tiny-sam")), ""),
     r"input 'sam'", r"Choose one of the folders"),
    ("counting-detector-dotdot", lambda: _scored(_counting(detector="../rewards/tiny-grounding-dino"), ""),
     r"input 'detector'", r"'\.\.' are not accepted"),
    # 7. load-time checks (the loader node fails, not the search)
    ("counting-sam-not-sam", lambda: _scored(_counting(sam="tiny-clip"), ""),
     r"LoaderCounting\).*input 'sam'.*'clip' model", r"SamModel folder.*or 'none'"),
    ("counting-too-many-classes", lambda: _scored(_counting(class_names=MANY_CLASSES,
                                                            counts=", ".join(["1"] * 120)), ""),
     r"LoaderCounting\).*input 'class_names'.*120 class names", r"count fewer kinds of object"),
    ("vqa-question-extra-field", lambda: _scored(_vqa(question="Does it show {} {oops}?")),
     r"LoaderVQAScore\).*input 'question'.*\{oops\}", r"exactly one \{\}"),
    ("vqa-question-positional-field", lambda: _scored(_vqa(question="{} {0}")),
     r"LoaderVQAScore\).*input 'question'.*\{0\}", r"exactly one \{\}"),
    ("vqa-question-no-field", lambda: _scored(_vqa(question="Is this good?")), r"input 'question'",
     r"exactly one \{\}"),
    # 8. raw Python errors before: colour parsing
    ("colour-bad-hex", lambda: _scored(_colour("#zzzzzz"), ""), r"input 'color'.*#zzzzzz", r"#rrggbb.*r,g,b"),
    ("colour-nan", lambda: _scored(_colour("nan,0,0"), ""), r"input 'color'", r"#rrggbb.*r,g,b"),
    ("colour-out-of-range", lambda: _scored(_colour("300,0,0"), ""), r"input 'color'", r"0 and 255"),
    # 9. nonsense accepted silently before
    ("counting-negative-count", lambda: _scored(_counting(counts="-2, 1"), ""), r"input 'counts'.*'-2'",
     r"whole number from 0 to 99"),
    ("counting-huge-count", lambda: _scored(_counting(counts="1e9, 1"), ""), r"input 'counts'.*'1e9'",
     r"whole number from 0 to 99"),
    ("counting-fractional-count", lambda: _scored(_counting(counts="2.6, 1"), ""), r"input 'counts'.*'2\.6'",
     r"whole number"),
    ("jpeg-bogus-mode", lambda: _scored(_jpeg("bogus"), ""), r"input 'mode' is 'bogus'",
     r"compressibility, incompressibility"),
    ("counting-bogus-mode", lambda: _scored(_counting(mode="bogus"), ""), r"input 'mode' is 'bogus'", r"hard, soft"),
    ("vqa-bogus-backend", lambda: _scored(_vqa(backend="bogus")), r"input 'backend' is 'bogus'",
     r"auto, clip_t5, blip2, instructblip, vlm"),
    ("clip-bogus-metric", lambda: _scored(_clip(metric="bogus")), r"input 'metric' is 'bogus'",
     r"clip_score, pickscore, hpsv2"),
    ("clip-bogus-dtype", lambda: _scored(_clip(dtype="bogus")), r"input 'dtype' is 'bogus'", r"auto, fp32, bf16, fp16"),
    ("counting-nan-threshold", lambda: _scored(_counting(box_threshold=float("nan")), ""),
     r"input 'box_threshold'", r"finite number"),
]


def _fresh():
    """A value no earlier prompt used (ComfyUI caches node outputs by their inputs)."""
    return time.time_ns() // 1000 % 0xFFFFFF


def normal_prompt(color):
    """A plain prompt that must still work after each bad one: an image, scored by a weight-free reward."""
    return {"img": _images(1, color), "r": _jpeg(), "s": _score(prompt=""),
            "view": {"class_type": "PreviewImage", "inputs": {"images": ["img", 0]}}}


@pytest.mark.parametrize("build, input_re, fix_re", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_names_input_and_fix_and_server_carries_on(server, build, input_re, fix_re):
    with pytest.raises(host.ComfyError) as e:
        server.run(build(), timeout=300)
    msg = str(e.value)
    assert re.search(input_re, msg, re.S), msg
    assert re.search(fix_re, msg, re.S), msg
    for raw in ("Traceback", "KeyError", "IndexError", "invalid literal", "NoneType"):
        assert raw not in msg, msg
    assert server.alive()
    entry = server.run(normal_prompt(_fresh()), timeout=120)
    assert host.output_images(entry), "the next normal prompt produced no image"


def test_outside_path_errors_say_nothing_about_existence(server, tmp_path):
    """An existing and a missing directory outside models/rewards get the same text (nothing is looked up)."""
    texts = []
    for path in (str(tmp_path), str(tmp_path / "no-such-dir"), "../" + tmp_path.name, "../no-such-dir"):
        with pytest.raises(host.ComfyError) as e:
            server.run(_scored(_clip(path)), timeout=120)
        texts.append(str(e.value).replace(path, "<name>"))
    assert texts[0] == texts[1] and texts[2] == texts[3], texts
    assert "not found" not in texts[0] and "not found" not in texts[2]


def _cancel_after(server, prompt, wait_s):
    """Queue `prompt`, press Cancel `wait_s` after it starts running; (history entry, seconds from queue to done)."""
    pid = server.queue(prompt)
    t0 = time.time()
    while not server.request("/queue")["queue_running"] and time.time() - t0 < 30:
        time.sleep(0.02)
    time.sleep(wait_s)
    server.interrupt()
    entry = server.wait(pid, timeout=120)
    return entry, time.time() - t0


SLOW_S, SLOW_N = 0.25, 24  # the slow test reward sleeps SLOW_S per image: scoring SLOW_N images takes >= 6 s


def _slow_reward():
    return {"class_type": "FlowSearchTestSlowReward", "inputs": {"seconds": SLOW_S, "batch_size": 1}}


def test_cancel_stops_scoring_between_minibatches(server):
    """A slow test reward (minibatches of one image) into Score Images: Cancel after the scoring started stops it
    within about one minibatch, long before the SLOW_N * SLOW_S seconds its sleeps alone would take."""
    floor = SLOW_N * SLOW_S
    g = {"img": _images(SLOW_N, _fresh()), "r": _slow_reward(), "s": _score(prompt="")}
    entry, cancelled = _cancel_after(server, g, 0.6)
    print(f"Cancel during scoring: {cancelled:.2f} s from queue to interrupted; scoring alone takes >= {floor:.1f} s")
    assert "execution_interrupted" in [m[0] for m in entry["status"]["messages"]]
    assert cancelled < 0.5 * floor, (cancelled, floor)
    assert host.output_images(server.run(normal_prompt(_fresh()), timeout=120))


def _playground_search(reward_nodes, reward="r", prompt="", preset="Best-of-N", steps=2, nfe=24, seed=0):
    """Playground model -> FlowSearch (`preset`, `nfe` NFE) -> PreviewImage, scored by `reward`."""
    caption = "two red squares and one blue cross"
    g = {"1": {"class_type": "FlowSearchPlaygroundLoader", "inputs": {"weights": "playground_flux.safetensors"}},
         "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": caption}},
         "3": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}},
         "5": {"class_type": "FlowSearch", "inputs": {
             "model": ["1", 0], "positive": ["2", 0], "latent": ["3", 0], "vae": ["1", 2], "reward": [reward, 0],
             "seed": seed, "preset": preset, "steps": steps, "interpolant": "vp", "nfe_budget": nfe,
             "prompt": prompt, "max_batch": 0, "finish_steps": 0, "guidance_scale": 0.0, "options": ""}},
         "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}}}
    g.update(reward_nodes)
    return g


def test_flowsearch_long_prompt_refused_naming_the_prompt(server):
    """The FlowSearch 'prompt' goes to VQAScore: too long is refused (the search stops), the server carries on."""
    g = _playground_search({"r": _vqa("tiny-clip-flant5")}, prompt=LONG_PROMPT, nfe=8)
    with pytest.raises(host.ComfyError, match=r"FlowSearch\).*the prompt is too long.*shorten the prompt"):
        server.run(g, timeout=300)
    assert server.alive()
    assert host.output_images(server.run(normal_prompt(_fresh()), timeout=120))


def test_cancel_stops_flowsearch_inside_a_reward_call(server):
    """The slow reward behind Reward Combine (which wires Cancel into its parts) in a Best-of-N search that scores
    SLOW_N candidates in one reward call: Cancel during the scoring returns long before the sleeps alone would end."""
    floor = SLOW_N * SLOW_S
    comb = {"class_type": "FlowSearchRewardCombine", "inputs": {"reward_1": ["slow", 0], "weight_1": 1.0,
                                                                "normalize": "none"}}
    server.run(_playground_search({"r": _jpeg()}, nfe=4), timeout=300)  # warm: the playground loader is cached
    g = _playground_search({"slow": _slow_reward(), "r": comb}, nfe=2 * SLOW_N, seed=_fresh())
    entry, cancelled = _cancel_after(server, g, 1.5)
    print(f"Cancel during FlowSearch scoring: {cancelled:.2f} s from queue to interrupted; scoring alone takes "
          f">= {floor:.1f} s")
    assert "execution_interrupted" in [m[0] for m in entry["status"]["messages"]]
    assert cancelled < 0.6 * floor, (cancelled, floor)
    assert host.output_images(server.run(normal_prompt(_fresh()), timeout=120))
