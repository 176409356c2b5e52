"""The playground world, its counters, codec, caption encoder and the Count Objects Reward (pure, no server)."""
import numpy as np
import pytest
import torch

from playground import codec, counter, world
from rewards.base import RewardError
from rewards.count_objects import CountObjectsReward


def truth(groups):
    t = {ty: 0 for ty in world.TYPES}
    for g in groups:
        t[g.type] += g.count
    return t


def test_counters_are_exact_on_generated_ground_truth():
    """Spec: ≥ 99.5 % exact on generated images; both counters, every type (3000 random images)."""
    rng = np.random.default_rng(123)
    n, ok_r, ok_h = 3000, 0, 0
    for _ in range(n):
        groups = world.sample_groups(rng)
        img, boxes = world.render(groups, rng)
        assert len(boxes) == sum(g.count for g in groups)
        ok_r += counter.count_reward(img) == truth(groups)
        ok_h += counter.count_heldout(img) == truth(groups)
    assert ok_r / n >= 0.995 and ok_h / n >= 0.995, (ok_r / n, ok_h / n)


def test_world_covers_the_task():
    """Two or three different types per caption, counts 1..6 all drawn, ≤ 16 objects, ≥ 2 colours and 2 shapes,
    32 px or larger."""
    rng = np.random.default_rng(0)
    seen_counts, seen_types, sizes = set(), set(), []
    for _ in range(600):
        g = world.sample_groups(rng)
        assert len(g) in (2, 3) and len({x.type for x in g}) == len(g) and sum(x.count for x in g) <= 16
        seen_counts |= {x.count for x in g}
        seen_types |= {x.type for x in g}
        sizes.append(len(g))
    assert seen_counts == set(range(1, 7)) and len(seen_types) == 6
    assert 0.5 < np.mean(np.array(sizes) == 3) < 0.7                     # THREE_GROUP_SHARE = 0.6
    assert all(len(world.sample_groups(rng, 2)) == 2 for _ in range(20))
    assert world.SIZE >= 32 and len(world.COLOURS) >= 2 and len(world.SHAPES) >= 2


def test_held_out_counter_rejects_smudges_that_the_reward_counter_accepts():
    img = np.full((32, 32, 3), 0.1, np.float32)
    img[2:8, 2:8] = world.COLOURS["red"]                      # a real square
    img[12:15, 12:22] = world.COLOURS["red"]                  # a 3×10 smear: a "square" to the loose counter
    img[24:30, 24:30][world.STAMPS["cross"]] = (0.72, 0.32, 0.26)   # off-colour cross (distance ≈ 0.28)
    band = np.array([[abs(i - j) <= 1 for j in range(6)] for i in range(6)])
    img[20:26, 2:8][band] = world.COLOURS["green"]            # a 6×6 diagonal stroke: stamp IoU 0.44 / 0.33
    img[2:3, 20:22] = world.COLOURS["green"]                  # a 2 px speck: below the reward counter's 4 px
    img[24:30, 12:20] = world.COLOURS["blue"]                 # a 6×8 slab: square-like (IoU 0.75), box too wide
    img[1:6, 22:27] = img[6:11, 27:32] = world.COLOURS["blue"]   # two squares touching at a corner
    r, h = counter.count_reward(img), counter.count_heldout(img)
    assert r[("red", "square")] == 2 and r[("red", "cross")] == 1
    assert h[("red", "square")] == 1 and h[("red", "cross")] == 0
    assert r[("green", "cross")] == 1 and r[("green", "square")] == 0       # the stroke, not the speck
    assert h[("green", "cross")] == 0 and h[("green", "square")] == 0       # IoU < 0.6 with both stamps
    assert r[("blue", "square")] == 3                          # 4-connected: the slab and both corner squares
    assert h[("blue", "square")] == 0                          # 8-connected merge and the 8 px box: nothing


def test_shape_classification_direction():
    img = np.full((32, 32, 3), 0.1, np.float32)
    img[2:8, 2:8][world.STAMPS["cross"]] = world.COLOURS["blue"]
    img[2:8, 12:18] = world.COLOURS["blue"]
    img[20:26, 20:26][world.STAMPS["cross"]] = world.COLOURS["blue"]
    for counts in (counter.count_reward(img), counter.count_heldout(img)):
        assert counts[("blue", "cross")] == 2 and counts[("blue", "square")] == 1
        assert sum(counts.values()) == 3


def test_rss_and_exact():
    g = world.parse_caption("three red squares and two blue crosses")
    c = {t: 0 for t in world.TYPES}
    c.update({("red", "square"): 5, ("blue", "cross"): 1, ("green", "cross"): 4})
    assert counter.rss(c, g) == 4 + 1                          # untargeted types do not count (paper's RSS)
    assert not counter.exact(c, g)
    c.update({("red", "square"): 3, ("blue", "cross"): 2})
    assert counter.rss(c, g) == 0 and counter.exact(c, g)


@pytest.mark.parametrize("text, expect", [
    ("three red squares and two blue crosses", [(3, "red", "square"), (2, "blue", "cross")]),
    ("One GREEN cross and 6 red squares.", [(1, "green", "cross"), (6, "red", "square")]),
    ("four blue squares", [(4, "blue", "square")]),
    ("two red squares, one blue cross and 5 green squares", [(2, "red", "square"), (1, "blue", "cross"),
                                                            (5, "green", "square")]),
])
def test_caption_grammar_round_trip(text, expect):
    groups = world.parse_caption(text)
    assert [(g.count, g.colour, g.shape) for g in groups] == expect
    assert world.parse_caption(world.caption(groups)) == groups


@pytest.mark.parametrize("text, fragment", [
    ("seven red squares and two blue crosses", "one..six"),
    ("zero red squares and two blue crosses", "one..six"),
    ("three purple squares and two blue crosses", "unknown colour"),
    ("three red circles and two blue crosses", "unknown shape"),
    ("three red squares and two red squares", "same kind"),
    ("a cat", "<count> <colour> <shape>"),
    ("one red square and one red cross and one blue cross and two green squares", "1 to 3 groups"),
    ("x" * 5000, "at most 200"),
])
def test_caption_errors_name_the_fix(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        world.parse_caption(text)


def test_codec_is_lossless_and_in_flux_layout():
    from playground.comfy_boot import boot
    boot()
    import comfy.latent_formats
    fmt = comfy.latent_formats.Flux()
    assert (codec.FLUX_SCALE, codec.FLUX_SHIFT) == (fmt.scale_factor, fmt.shift_factor)
    rng = np.random.default_rng(1)
    img = torch.from_numpy(world.batch(rng, 4)[1])
    z = codec.to_model_space(img)
    assert z.shape == (4, 16, 16, 16) and z.abs().max() <= 1 and (z[:, 12:] == 0).all()
    back = ((codec.from_model_space(z) + 1) / 2).movedim(1, -1)
    torch.testing.assert_close(back, img, atol=1e-6, rtol=0)
    vae = codec.PixelShuffleCodec(fmt.scale_factor, fmt.shift_factor)
    shown = vae.decode(fmt.process_out(z))                    # what ComfyUI's VAEDecode feeds the image out
    assert shown.shape == (4, 3, 128, 128)
    torch.testing.assert_close(((shown + 1) / 2)[:, :, ::4, ::4].movedim(1, -1), img, atol=1e-5, rtol=0)
    torch.testing.assert_close(fmt.process_in(vae.encode(shown)), z, atol=1e-5, rtol=0)


def test_caption_encoder_binds_counts_to_types():
    a, ya = codec.encode_groups(world.parse_caption("three red squares and two blue crosses"))
    b, yb = codec.encode_groups(world.parse_caption("two red squares and three blue crosses"))
    assert a.shape == (3, codec.TOKEN_DIM) and ya.shape == (codec.POOLED_DIM,) == (33,)
    assert a[0, 2] == 1 and a[1, 1] == 1 and b[0, 1] == 1 and b[1, 2] == 1     # count one-hots per token
    assert (a[:, 6:] == b[:, 6:]).all() and not torch.equal(a, b)
    assert (a[2] == 0).all() and a[:2].sum() == 6                               # two groups: empty third token
    c, yc = codec.encode_groups(world.parse_caption("three red squares, two blue crosses and one green cross"))
    assert c[2, 0] == 1 and c[2, 6 + 1] == 1 and c[2, 9 + 1] == 1 and torch.equal(yc, c.reshape(-1))
    with pytest.raises(ValueError, match="2 or 3 groups"):
        codec.encode_groups(world.parse_caption("three red squares"))


def _display(img):
    return torch.from_numpy(img).repeat_interleave(4, 0).repeat_interleave(4, 1)[None]


def test_count_objects_reward_sign_targets_and_details():
    rng = np.random.default_rng(5)
    groups = world.parse_caption("three red squares and two blue crosses")
    right = world.render(groups, rng)[0]
    wrong = world.render(world.parse_caption("five red squares and one blue cross"), rng)[0]
    r = CountObjectsReward()
    s = r(torch.cat([_display(right), _display(wrong)]), world.caption(groups))
    assert s.tolist() == [0.0, -(4 + 1)]                       # −RSS: exact = 0, higher is better
    override = CountObjectsReward("five red squares and one blue cross")
    assert not override.needs_prompt
    assert override(torch.cat([_display(right), _display(wrong)]), "ignored").tolist() == [-5.0, 0.0]
    d = r.details(_display(wrong), world.caption(groups))[0]
    assert d["counts"] == {"red square": 5, "blue cross": 1} == d["counts_heldout"]
    assert d["rss"] == 5 and not d["exact"] and not d["exact_heldout"]
    assert CountObjectsReward(pixel_scale=1)(torch.from_numpy(right)[None], world.caption(groups)).item() == 0


@pytest.mark.parametrize("targets, fragment", [("three red squares and nine blue crosses", "one..six"),
                                               ("-2 red squares", "one..six"), ("2.6 red squares", "one..six"),
                                               ("lots of things", "<count> <colour> <shape>"), ("twelve red squares", "one..six")])
def test_count_objects_reward_refuses_bad_targets(targets, fragment):
    with pytest.raises(RewardError, match=fragment):
        CountObjectsReward(targets)


def test_count_objects_reward_needs_targets_and_world_sized_images():
    r = CountObjectsReward()
    with pytest.raises(RewardError, match="needs a text prompt"):
        r(torch.zeros(1, 128, 128, 3), "")
    with pytest.raises(RewardError, match="pixel_scale"):
        r(torch.zeros(1, 130, 128, 3), "one red square")
