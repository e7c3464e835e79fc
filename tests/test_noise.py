import math

import pytest
import torch

from sedd.noise import GeometricNoise, LogLinearNoise, get_noise


def test_geometric_matches_reference(reference):
    t = reference["noise.t"]
    sigma, dsigma = GeometricNoise(1e-4, 20.0)(t)
    torch.testing.assert_close(sigma, reference["noise.geometric.total"], rtol=1e-5, atol=0)
    torch.testing.assert_close(dsigma, reference["noise.geometric.rate"], rtol=1e-5, atol=0)


def test_loglinear_matches_reference(reference):
    t = reference["noise.t"]
    sigma, dsigma = LogLinearNoise(1e-3)(t)
    torch.testing.assert_close(sigma, reference["noise.loglinear.total"], rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(dsigma, reference["noise.loglinear.rate"], rtol=1e-5, atol=0)


@pytest.mark.parametrize("noise", [GeometricNoise(1e-4, 20.0), LogLinearNoise(1e-3)])
def test_rate_is_derivative_of_total(noise):
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    numeric = (noise.total_noise(t + h) - noise.total_noise(t - h)) / (2 * h)
    torch.testing.assert_close(noise.rate_noise(t), numeric, rtol=1e-6, atol=0)


def test_endpoints():
    geometric = GeometricNoise(1e-4, 20.0)
    loglinear = LogLinearNoise(1e-3)
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(geometric.total_noise(ends), torch.tensor([1e-4, 20.0], dtype=torch.float64))
    torch.testing.assert_close(
        loglinear.total_noise(ends), torch.tensor([0.0, -math.log(1e-3)], dtype=torch.float64)
    )


def test_get_noise_ignores_other_schedules_keys():
    noise = get_noise("loglinear", eps=1e-2, sigma_min=1e-4, sigma_max=20.0)
    assert isinstance(noise, LogLinearNoise)
    assert noise.eps == 1e-2


def test_get_noise_unknown_name():
    with pytest.raises(ValueError, match="unknown noise schedule 'cosine'.*geometric"):
        get_noise("cosine")


def test_invalid_parameters_rejected():
    with pytest.raises(ValueError, match="sigma_min=20"):
        GeometricNoise(20.0, 1e-4)
    with pytest.raises(ValueError, match="eps=0"):
        LogLinearNoise(0.0)
