"""Reward nodes (loaders per family, Reward Combine, Score Images). Filled in by the rewards work (issue 4)."""
NODES = []
