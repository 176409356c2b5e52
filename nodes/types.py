"""Custom wire types shared by the FlowSearch node files (one definition each: ComfyUI matches wires by name)."""
from comfy_api.latest import io

#: a reward scorer (``rewards.Reward``): ``reward(images [B,H,W,3], prompt) -> float32 [B]``
REWARD = io.Custom("REWARD")
#: advanced search settings from the FlowSearch Options node: ``{section: {option: value}}`` (nodes/options_node.py)
FLOWSEARCH_OPTIONS = io.Custom("FLOWSEARCH_OPTIONS")

__all__ = ["REWARD", "FLOWSEARCH_OPTIONS"]
