"""FlowSearch Playground: a procedural counting world, a tiny FLUX trained on it, and its verifiers.

Nothing in `sampling/` imports this package; the ComfyUI nodes for it live in `nodes/playground_nodes.py`.
    world.py      the caption grammar and the exact image generator
    counter.py    the reward counter (weight-free, colour- and shape-aware) and the stricter held-out counter
    codec.py      the lossless pixel (un)shuffle "VAE" in FLUX's latent layout and the caption encoder
    trainable.py  out-of-place twins of ComfyUI's FLUX blocks, so the stock class can be trained
    train.py      `python -m playground.train`: rectified-flow training, loss curve, manifest
    weights/      the shipped fp16 safetensors and their manifest
"""
