"""Closed-form checks of every interpolant and the SNR time map (method spec §2.4, §3)."""
import pytest
import torch

from sampling import get_interpolant, time_grid

NAMES = ["linear", "vp", "cosine", "polynomial:2", "polynomial:0.5", "vp:0.5:10"]
S = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)


@pytest.mark.parametrize("name", NAMES)
def test_derivatives_match_finite_differences(name):
    ip, h = get_interpolant(name), 1e-6
    fd_a = (ip.alpha(S + h) - ip.alpha(S - h)) / (2 * h)
    fd_s = (ip.sigma(S + h) - ip.sigma(S - h)) / (2 * h)
    torch.testing.assert_close(ip.d_alpha(S), fd_a, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ip.d_sigma(S), fd_s, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_boundary_values_and_monotonicity(name):
    ip = get_interpolant(name)
    assert float(ip.sigma(0.0)) == pytest.approx(0.0, abs=1e-12)
    assert float(ip.alpha(0.0)) == pytest.approx(1.0, abs=1e-12)
    snr = ip.snr(S)
    assert torch.all(snr[1:] < snr[:-1]), "SNR must fall as s grows toward noise"


@pytest.mark.parametrize("name", NAMES)
def test_time_map_reproduces_snr(name):
    ip, lin = get_interpolant(name), get_interpolant("linear")
    t, c = ip.to_linear(S)
    torch.testing.assert_close(lin.snr(t), ip.snr(S), rtol=1e-10, atol=0)
    torch.testing.assert_close(c, ip.alpha(S) + ip.sigma(S))          # c = σ̄ / σ_lin(t_s)
    torch.testing.assert_close(ip.sigma(S) / c, t)
    torch.testing.assert_close(ip.s_from_linear(t), S, rtol=0, atol=1e-10)  # inverse map
    torch.testing.assert_close(ip.s_from_sigma_ve(ip.sigma_ve(S)), S, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_dt_ds_is_derivative_of_time_map(name):
    ip, h = get_interpolant(name), 1e-6
    fd = (ip.to_linear(S + h)[0] - ip.to_linear(S - h)[0]) / (2 * h)
    torch.testing.assert_close(ip.dt_ds(S), fd, rtol=1e-6, atol=1e-8)


def test_polynomial_one_is_linear():
    p, lin = get_interpolant("polynomial:1"), get_interpolant("linear")
    for f in ("alpha", "sigma", "d_alpha", "d_sigma"):
        torch.testing.assert_close(getattr(p, f)(S), getattr(lin, f)(S))


# method_spec.md §2.4: the VP (β 0.1→20) quantities on the paper grid, M = 10 (reference values, 5 decimals)
SPEC_TABLE = [  # s, ᾱ, σ̄, t_lin, c
    (1.00000, 0.00657, 0.99998, 0.99347, 1.00655), (0.99499, 0.00691, 0.99998, 0.99314, 1.00688),
    (0.97980, 0.00803, 0.99997, 0.99204, 1.00799), (0.95394, 0.01031, 0.99995, 0.98980, 1.01025),
    (0.91652, 0.01463, 0.99989, 0.98558, 1.01452), (0.86603, 0.02295, 0.99974, 0.97756, 1.02268),
    (0.80000, 0.03980, 0.99921, 0.96170, 1.03900), (0.71414, 0.07631, 0.99708, 0.92891, 1.07339),
    (0.60000, 0.16186, 0.98681, 0.85909, 1.14868), (0.43589, 0.38021, 0.92490, 0.70868, 1.30511),
]


def test_vp_paper_grid_matches_spec_table():
    ip = get_interpolant("vp")
    s = time_grid(10, "paper")
    ref = torch.tensor(SPEC_TABLE, dtype=torch.float64)
    torch.testing.assert_close(s[:-1], ref[:, 0], rtol=0, atol=1e-4)
    t, c = ip.to_linear(s[:-1])
    got = torch.stack([ip.alpha(s[:-1]), ip.sigma(s[:-1]), t, c], 1)
    torch.testing.assert_close(got, ref[:, 1:], rtol=0, atol=1e-4)
    assert float(s[-1]) == 0.0


def test_grids_and_bad_names():
    u = time_grid(4, "uniform")
    torch.testing.assert_close(u, torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown grid"):
        time_grid(4, "karras")
    with pytest.raises(ValueError, match="steps"):
        time_grid(0)
    with pytest.raises(ValueError, match="unknown interpolant"):
        get_interpolant("ve")
