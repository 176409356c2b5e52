"""Helpers shared by the pure-torch search tests: bit-identity of two results, and a scripted reward."""
import torch


def same(a, b):
    """Bit-identical results: candidates, rewards, choice, nfe, sample and lineages."""
    return (torch.equal(a.candidates, b.candidates) and torch.equal(a.candidate_rewards, b.candidate_rewards)
            and torch.equal(a.sample, b.sample) and a.nfe == b.nfe and a.chosen == b.chosen and a.seeds == b.seeds)


class Script:
    """reward(x0) → the next len(x0) values of `values` (a flat list in call order); logs the batch sizes."""

    def __init__(self, values):
        self.values, self.i, self.calls = [float(v) for v in values], 0, []

    def __call__(self, x0):
        n = x0.shape[0]
        out = self.values[self.i:self.i + n]
        assert len(out) == n, "script exhausted: the search scored more particles than expected"
        self.i += n
        self.calls.append(n)
        return torch.tensor(out, dtype=torch.float64)
