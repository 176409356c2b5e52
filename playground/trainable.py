"""Out-of-place twins of ComfyUI's FLUX blocks, so the *stock* `comfy.ldm.flux.model.Flux` can be trained.

ComfyUI's DoubleStreamBlock / SingleStreamBlock update their residual streams in place (`img += …`), which
autograd rejects, and their RMSNorm scales start as `torch.empty`. Instead of a subclass we keep the stock module
and state-dict layout and route each block through FLUX's own block-replacement hook
(`transformer_options["patches_replace"]["dit"]`), with these functions computing the same block out of place
from the block's own submodules (parity with the stock forward: tests/test_playground_train.py)."""
import torch
from comfy.ldm.flux.math import attention


def _heads(attn_module, x):
    """q, k, v [B, heads, L, D] of a FLUX SelfAttention's qkv projection, with its QK-norm applied."""
    q, k, v = attn_module.qkv(x).view(x.shape[0], x.shape[1], 3, attn_module.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k = attn_module.norm(q, k, v)
    return q, k, v


def double_block(block, img, txt, vec, pe, attn_mask=None, transformer_options=None):
    """DoubleStreamBlock.forward without in-place updates (FLUX's joint txt ‖ img attention)."""
    im1, im2 = block.img_mod(vec)
    tm1, tm2 = block.txt_mod(vec)
    iq, ik, iv = _heads(block.img_attn, torch.addcmul(im1.shift, block.img_norm1(img), 1 + im1.scale))
    tq, tk, tv = _heads(block.txt_attn, torch.addcmul(tm1.shift, block.txt_norm1(txt), 1 + tm1.scale))
    a = attention(torch.cat((tq, iq), 2), torch.cat((tk, ik), 2), torch.cat((tv, iv), 2), pe=pe, mask=attn_mask,
                  transformer_options=transformer_options or {})
    txt_a, img_a = a[:, :txt.shape[1]], a[:, txt.shape[1]:]
    img = img + im1.gate * block.img_attn.proj(img_a)
    img = img + im2.gate * block.img_mlp(torch.addcmul(im2.shift, block.img_norm2(img), 1 + im2.scale))
    txt = txt + tm1.gate * block.txt_attn.proj(txt_a)
    txt = txt + tm2.gate * block.txt_mlp(torch.addcmul(tm2.shift, block.txt_norm2(txt), 1 + tm2.scale))
    return img, txt


def single_block(block, x, vec, pe, attn_mask=None, transformer_options=None):
    """SingleStreamBlock.forward without the in-place residual update."""
    mod, _ = block.modulation(vec)
    h = block.linear1(torch.addcmul(mod.shift, block.pre_norm(x), 1 + mod.scale))
    qkv, mlp = torch.split(h, [3 * block.hidden_size, block.mlp_hidden_dim_first], dim=-1)
    q, k, v = qkv.view(qkv.shape[0], qkv.shape[1], 3, block.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k = block.norm(q, k, v)
    a = attention(q, k, v, pe=pe, mask=attn_mask, transformer_options=transformer_options or {})
    return x + mod.gate * block.linear2(torch.cat((a, block.mlp_act(mlp)), 2))


def out_of_place_options(flux):
    """transformer_options that make a stock Flux module run every block through the functions above."""
    dit = {}
    for i, b in enumerate(flux.double_blocks):
        dit[("double_block", i)] = lambda args, _orig, b=b: dict(zip(("img", "txt"), double_block(
            b, args["img"], args["txt"], args["vec"], args["pe"], args.get("attn_mask"),
            args.get("transformer_options"))))
    for i, b in enumerate(flux.single_blocks):
        dit[("single_block", i)] = lambda args, _orig, b=b: {"img": single_block(
            b, args["img"], args["vec"], args["pe"], args.get("attn_mask"), args.get("transformer_options"))}
    return {"patches_replace": {"dit": dit}}


def init_weights(flux, seed):
    """Deterministic initialisation: PyTorch defaults re-drawn from `seed`, RMSNorm scales = 1 (ComfyUI leaves
    them uninitialised), and zero output/gate projections (adaLN-zero) so every block starts as the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in flux.named_parameters():
            if name.endswith(".scale"):
                p.fill_(1.0)
            elif p.ndim >= 2:
                bound = (1.0 / p.shape[1]) ** 0.5
                p.copy_(torch.rand(p.shape, generator=g) * 2 * bound - bound)
            else:
                p.zero_()
        for m in [*[b.img_mod for b in flux.double_blocks], *[b.txt_mod for b in flux.double_blocks],
                  *[b.modulation for b in flux.single_blocks]]:
            m.lin.weight.zero_()
            m.lin.bias.zero_()
        flux.final_layer.linear.weight.zero_()
        flux.final_layer.linear.bias.zero_()
        flux.final_layer.adaLN_modulation[-1].weight.zero_()
        flux.final_layer.adaLN_modulation[-1].bias.zero_()
    return flux
