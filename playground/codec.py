"""The playground's latent space and caption encoder (pure torch).

Latent: FLUX's layout, 16 channels at half resolution. `pixel_unshuffle(2·img − 1, 2)` gives 12 channels; 4 zero
channels complete the 16. That is the *model-space* latent (values in [−1, 1]). ComfyUI's Flux latent format
maps a VAE's raw latent r to model space by (r − shift)·scale (0.1159, 0.3611), so the codec's raw latent is
model/scale + shift: the stock VAEDecode / sampler / latent-format path then sees exactly the space the model was
trained in. The code is lossless: decode(encode(img)) == img up to float rounding.

Pictures are shown at DISPLAY = 4× (nearest-neighbour, so 128×128 for the 32×32 world): the codec then looks to
ComfyUI like any 8× VAE (16×16 latent ↔ 128×128 image), so the stock EmptySD3LatentImage at 128×128 makes the
right latent, and thumbnails are big enough to count by eye. Encoding area-averages the 4×4 blocks back.

Captions: each group becomes one context token, a one-hot count (6) ‖ colour (3) ‖ shape (2); a two-group caption
gets an all-zero third token; the pooled vector `y` is the three tokens side by side."""
import torch
import torch.nn.functional as F

from . import world

LATENT_CHANNELS = 16
DOWNSCALE = 2                                    # pixel (un)shuffle factor of the latent
DISPLAY = 4                                      # nearest-neighbour display scale of decoded pictures
VAE_RATIO = DOWNSCALE * DISPLAY                  # what ComfyUI sees: 8, like FLUX's own VAE
FLUX_SCALE, FLUX_SHIFT = 0.3611, 0.1159          # comfy.latent_formats.Flux (asserted in the tests)
TOKEN_DIM = world.MAX_COUNT + len(world.COLOURS) + len(world.SHAPES)
N_TOKENS = max(world.GROUPS)
POOLED_DIM = N_TOKENS * TOKEN_DIM
_COLOUR_INDEX = {c: i for i, c in enumerate(world.COLOURS)}
_SHAPE_INDEX = {s: i for i, s in enumerate(world.SHAPES)}


def to_model_space(img):
    """IMAGE-layout pixels [B, H, W, 3] in [0, 1] → model-space latent [B, 16, H/2, W/2]."""
    x = pixel_unshuffle_pm1(img.movedim(-1, 1) * 2 - 1)
    return torch.cat([x, x.new_zeros(x.shape[0], LATENT_CHANNELS - x.shape[1], *x.shape[2:])], 1)


def pixel_unshuffle_pm1(x):
    if x.shape[-1] % DOWNSCALE or x.shape[-2] % DOWNSCALE:
        raise ValueError(f"the playground codec needs even image sides, got {tuple(x.shape[-2:])}")
    return F.pixel_unshuffle(x, DOWNSCALE)


def from_model_space(z):
    """Model-space latent [B, 16, h, w] → pixels [B, 3, 2h, 2w] in [−1, 1] (not clamped)."""
    return F.pixel_shuffle(z[:, :3 * DOWNSCALE ** 2], DOWNSCALE)


class PixelShuffleCodec(torch.nn.Module):
    """The lossless "VAE" ComfyUI's VAE object wraps: raw latents in, display pixels in [−1, 1] out, and back."""

    def __init__(self, scale=FLUX_SCALE, shift=FLUX_SHIFT, display=DISPLAY):
        super().__init__()
        self.scale, self.shift, self.display = float(scale), float(shift), int(display)
        self.register_buffer("codec_version", torch.ones(1), persistent=False)  # gives the model manager a size

    def encode(self, pixels, *_, **__):
        """display pixels [B, 3, H, W] in [−1, 1] → raw latent [B, 16, H/8, W/8]."""
        x = pixel_unshuffle_pm1(F.avg_pool2d(pixels, self.display) if self.display > 1 else pixels)
        z = torch.cat([x, x.new_zeros(x.shape[0], LATENT_CHANNELS - x.shape[1], *x.shape[2:])], 1)
        return z / self.scale + self.shift

    def decode(self, raw, *_, **__):
        """raw latent [B, 16, h, w] → display pixels [B, 3, 8h, 8w] in [−1, 1]."""
        x = from_model_space((raw - self.shift) * self.scale)
        return F.interpolate(x, scale_factor=self.display, mode="nearest") if self.display > 1 else x


def encode_groups(groups):
    """Caption groups → (context [N_TOKENS, TOKEN_DIM], pooled [POOLED_DIM]) float32."""
    if len(groups) not in world.GROUPS:
        raise ValueError(f"the playground model was trained on captions with 2 or 3 groups, e.g. 'three red squares "
                         f"and two blue crosses'; got {len(groups)}")
    ctx = torch.zeros(N_TOKENS, TOKEN_DIM)
    for i, g in enumerate(groups):
        ctx[i, g.count - 1] = 1
        ctx[i, world.MAX_COUNT + _COLOUR_INDEX[g.colour]] = 1
        ctx[i, world.MAX_COUNT + len(world.COLOURS) + _SHAPE_INDEX[g.shape]] = 1
    return ctx, ctx.reshape(-1)


def encode_batch(groups_list):
    """A list of caption-group lists → (context [B, N_TOKENS, TOKEN_DIM], pooled [B, POOLED_DIM])."""
    pairs = [encode_groups(g) for g in groups_list]
    return torch.stack([c for c, _ in pairs]), torch.stack([y for _, y in pairs])
