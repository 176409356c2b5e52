"""Gradient guidance inside ComfyUI: autograd-ready weights and the straight-through clean estimate."""
import torch


def autograd_ready(module):
    """ComfyUI runs nodes in torch.inference_mode(), so weights loaded there cannot take part in a backward
    pass. Replace such parameters and buffers by ordinary copies, once, in place."""
    if module is None:
        return
    with torch.inference_mode(False):
        for m in module.modules():
            for name, p in list(m.named_parameters(recurse=False)):
                if p.is_inference():
                    setattr(m, name, torch.nn.Parameter(p.clone(), requires_grad=False))
            for name, b in list(m.named_buffers(recurse=False)):
                if b is not None and b.is_inference():
                    m.register_buffer(name, b.clone(), persistent=name not in m._non_persistent_buffers_set)


def straight_through(x0, x_in, gain):
    """x0̂ with ∂x0̂/∂x_in = gain·I: the gradient of a reward through the clean estimate without backpropagating
    through the diffusion model (x0̂ = x_t − t·v with v held fixed; gain = ∂x_t/∂x_in)."""
    return x0.detach() + gain * (x_in - x_in.detach())
