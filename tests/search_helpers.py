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


def stable(run, method, opts, batches=(1, 3)):
    """The guarantees every method shares, asserted: bit-identical for each max_batch in `batches` and for a rerun
    with the same seed, different with another seed. `run(method, max_batch=…, seed=…, **opts)` runs one search;
    returns the max_batch=None result."""
    r = run(method, max_batch=None, **opts)
    assert all(same(r, run(method, max_batch=mb, **opts)) for mb in batches), "results depend on max_batch"
    assert same(r, run(method, **opts)), "not deterministic for a fixed seed"
    assert not torch.equal(r.candidates, run(method, seed=4, **opts).candidates), "seed is ignored"
    return r
