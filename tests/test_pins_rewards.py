"""Direction pins for the weight-free rewards (issue 11): each setting changes the score the way its name says.

Expected values are computed here from their definitions (PIL's own JPEG size, Rec. 709 luma, HSV saturation)."""
import io
import math

import pytest
import torch

import rewards
from rewards.simple import ColorReward, ImageStatReward, JpegReward, parse_color


def noise_image(seed=0, size=32):
    return torch.rand(1, size, size, 3, generator=torch.Generator().manual_seed(seed))


def pil_jpeg_kb(img, quality):
    from PIL import Image

    arr = (img[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.tell() / 1000.0


@pytest.mark.parametrize("quality", [10, 50, 95])
def test_jpeg_reward_encodes_at_its_quality(quality):
    img = noise_image()
    assert float(JpegReward(quality=quality)(img)[0]) == pytest.approx(-pil_jpeg_kb(img, quality), abs=1e-6)   # float32 kB; one byte = 1e-3
    assert float(JpegReward(True, quality=quality)(img)[0]) == pytest.approx(pil_jpeg_kb(img, quality), abs=1e-6)   # float32 kB; one byte = 1e-3


def test_jpeg_quality_and_sign_directions():
    img = noise_image(1)
    low, high = float(JpegReward(quality=10)(img)[0]), float(JpegReward(quality=95)(img)[0])
    assert low > high                                   # a coarser JPEG is smaller: more compressible
    assert JpegReward().quality == 95 and JpegReward(quality=40.0).quality == 40
    assert JpegReward().name == "jpeg_compressibility" and JpegReward(True).name == "jpeg_incompressibility"
    assert JpegReward().score_range == (-150.0, 0.0) and JpegReward(True).score_range == (0.0, 150.0)
    assert rewards.load_reward("jpeg_incompressibility").incompressible
    assert not rewards.load_reward("jpeg").incompressible


def test_image_statistics_from_their_definitions():
    img = torch.zeros(2, 4, 4, 3)
    img[0, ..., 0] = 1.0                                       # pure red
    img[1] = torch.tensor([0.8, 0.4, 0.2])                     # orange-brown
    lum = torch.tensor([0.2126, 0.2126 * 0.8 + 0.7152 * 0.4 + 0.0722 * 0.2], dtype=torch.float64)
    torch.testing.assert_close(ImageStatReward("brightness", "maximize")(img).double(), lum, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ImageStatReward("brightness", "minimize")(img).double(), -lum, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ImageStatReward("brightness", "target", 0.3)(img).double(), -(lum - 0.3).abs(),
                               rtol=1e-6, atol=1e-6)
    sat = torch.tensor([1.0, (0.8 - 0.2) / 0.8], dtype=torch.float64)
    torch.testing.assert_close(ImageStatReward("saturation", "maximize")(img).double(), sat, rtol=1e-5, atol=1e-5)
    half = torch.zeros(1, 4, 4, 3)
    half[:, :2] = 1.0                                          # half white, half black: luma std = 0.5·(16/15)^½
    c = float(ImageStatReward("contrast", "maximize")(half)[0])
    assert c == pytest.approx(2 * 0.5 * math.sqrt(16 / 15), rel=1e-5)
    assert ImageStatReward("brightness", "target", 0.25).name == "brightness_target_0.25"
    assert ImageStatReward("saturation", "minimize").score_range == (-1.0, 0.0)


def test_colour_reward_distance_and_scale():
    red = torch.zeros(1, 4, 4, 3)
    red[..., 0] = 1.0
    assert float(ColorReward("#ff0000")(red)[0]) == pytest.approx(0.0, abs=1e-5)
    white, black = torch.ones(1, 4, 4, 3), torch.zeros(1, 4, 4, 3)
    assert float(ColorReward("#ffffff")(black)[0]) == pytest.approx(-1.0, rel=1e-5)   # the far corner: −√3/√3
    half = torch.cat([white[:, :2], black[:, 2:]], 1)          # mean colour grey 0.5, per pixel 0 or √3 from white
    assert float(ColorReward("#ffffff")(half)[0]) == pytest.approx(-0.5, rel=1e-5)
    assert float(ColorReward("#ffffff", per_pixel=True)(half)[0]) == pytest.approx(-0.5, rel=1e-5)
    quarter = torch.cat([white[:, :1], black[:, 1:]], 1)
    assert float(ColorReward("#ffffff", per_pixel=True)(quarter)[0]) == pytest.approx(-0.75, rel=1e-5)
    assert float(ColorReward("#ffffff")(quarter)[0]) == pytest.approx(-0.75, rel=1e-5)
    assert ColorReward("#ff8800").name == "color_ff8800"


def test_colour_parsing_forms():
    assert parse_color("#ff8800") == pytest.approx((1.0, 136 / 255, 0.0))
    assert parse_color(" 255, 136,0 ") == pytest.approx((1.0, 136 / 255, 0.0))
    assert parse_color("1,0.5,0") == pytest.approx((1.0, 0.5, 0.0))         # all ≤ 1: already in [0, 1]
    assert parse_color([0, 0, 255]) == pytest.approx((0.0, 0.0, 1.0))
    for bad in ("#ff88", "1,2", "256,0,0", "-1,0,0", "nan,0,0"):
        with pytest.raises(rewards.RewardError, match="input 'color'"):
            parse_color(bad)


def test_luminance_keeps_float64_exact():
    from rewards.simple import luminance
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    want = 0.2126 * x[:, 0] + 0.7152 * x[:, 1] + 0.0722 * x[:, 2]
    torch.testing.assert_close(luminance(x), want, rtol=1e-14, atol=1e-14)


def test_contrast_is_per_image():
    flat, half = torch.full((1, 4, 4, 3), 0.5), torch.zeros(1, 4, 4, 3)
    half[:, :2] = 1.0
    c = ImageStatReward("contrast", "maximize")(torch.cat([flat, half]))
    assert float(c[0]) == pytest.approx(0.0, abs=1e-6) and float(c[1]) > 1.0


def test_score_ranges_and_names_of_every_mode():
    assert ImageStatReward("brightness", "maximize").score_range == (0.0, 1.0)
    assert ImageStatReward("brightness", "minimize").score_range == (-1.0, 0.0)
    assert ImageStatReward("brightness", "target").score_range == (-1.0, 0.0)
    assert ImageStatReward("brightness", "maximize").name == "brightness_maximize"


def test_hi_promotes_half_to_float32_and_keeps_float64():
    from rewards.base import hi
    assert hi(torch.zeros(2, dtype=torch.float16)).dtype == torch.float32
    assert hi(torch.zeros(2, dtype=torch.float64)).dtype == torch.float64


def test_quoted_cuts_long_text_at_the_limit():
    from rewards.base import quoted
    assert quoted("a" * 80) == repr("a" * 80)
    assert quoted("a" * 81) == repr("a" * 77 + "...")
    assert quoted(12) == repr("12")


class Net(rewards.Reward):
    """A reward with a float64 module: scoring runs where and in what dtype the module's weights are."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(3, 1).double()

    def _score(self, x, prompts, **kw):
        return x.mean((1, 2, 3))


def test_prepare_follows_the_modules_device_and_dtype():
    r = Net()
    r(torch.rand(1, 4, 4, 3))
    assert r.dtype == torch.float64 and r.device == torch.device("cpu")


class Soft(rewards.Reward):
    name, differentiable = "soft", True

    def _score(self, x, prompts, **kw):
        return x.mean((1, 2, 3))


class Hard(rewards.Reward):
    """Not differentiable, with a differentiable stand-in (like the counting reward)."""
    name = "hard"

    def __init__(self):
        super().__init__()
        self.soft = Soft()

    def surrogate(self):
        return self.soft

    def _score(self, x, prompts, **kw):
        return x.mean((1, 2, 3)).round()


def test_composite_surrogate_swaps_in_the_parts_stand_ins_and_keeps_normalisation():
    from rewards import CompositeReward
    hard, soft = Hard(), Soft()
    comp = CompositeReward([(hard, 2.0), (soft, 1.0)], normalize="none")
    sub = comp.surrogate()
    assert isinstance(sub, CompositeReward) and sub.normalize == "none"
    assert [(r, w) for r, w in sub.parts] == [(hard.soft, 2.0), (soft, 1.0)]
    assert comp.score_range == (-3.0, 3.0)
    assert CompositeReward([(soft, 2.0)], normalize="range").score_range == (0.0, 1.0)
    assert CompositeReward([(soft, 2.0)]).surrogate() is not None


def test_uint8_images_are_scaled_by_255():
    from rewards.base import as_bchw
    img = torch.tensor([[[[255, 0, 51]]]], dtype=torch.uint8)
    torch.testing.assert_close(as_bchw(img).reshape(3), torch.tensor([1.0, 0.0, 0.2]))


def test_modules_and_composite_to_reach_every_part():
    from rewards import CompositeReward
    r, soft = Net(), Soft()
    assert r.modules() == [r.net] and soft.modules() == []
    comp = CompositeReward([(r, 1.0), (soft, 1.0)])
    assert comp.modules() == [r.net]
    comp.to("cpu", torch.float32)
    assert r.net.weight.dtype == torch.float32 and soft.dtype == torch.float32 and r.device == torch.device("cpu")


def test_logit_clamps_and_inverts_the_sigmoid():
    from rewards.base import logit
    assert logit(0.5) == 0.0 and logit(0.8) == pytest.approx(math.log(4.0), rel=1e-12)
    assert logit(0.0) == pytest.approx(math.log(1e-6 / (1 - 1e-6)), rel=1e-9)
    assert logit(1.0) == pytest.approx(-logit(0.0), rel=1e-9) and logit(2.0) == logit(1.0)
