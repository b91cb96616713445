"""Robust anchors (docs/methods.md 4.4): the blur, AWP fitting, and that Delta never stays on."""

import copy

import pytest
import torch

from hubmodels.inversion.awp import fit_anchor, gaussian_blur
from hubmodels.inversion.finer import FinerNet, INRConfig, coordinate_grid

CONFIG = INRConfig(hidden_layers=2, width=32)


def _net(seed: int = 0) -> FinerNet:
    torch.manual_seed(seed)
    return FinerNet(CONFIG)


def _double_net(seed: int = 0) -> FinerNet:
    """For exact comparisons: Adam's first step g / (|g| + eps) amplifies float32 noise."""
    return _net(seed).double()


def _image(size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _smooth_image(seed: int = 0) -> torch.Tensor:
    """16 px upsampled from 4 px: a photo-like image, with nothing between pixels to invent."""
    return torch.nn.functional.interpolate(_image(4, seed), size=(16, 16), mode="bilinear")


def _high_frequency_energy(image: torch.Tensor) -> torch.Tensor:
    """Energy of the discrete Laplacian: large for pixel-scale detail, zero for flat images."""
    lap = 4 * image[..., 1:-1, 1:-1] - image[..., :-2, 1:-1] - image[..., 2:, 1:-1]
    lap = lap - image[..., 1:-1, :-2] - image[..., 1:-1, 2:]
    return lap.pow(2).mean()


def test_blur_keeps_the_mean_and_removes_detail():
    image = _image(32)
    blurred = gaussian_blur(image, 2.0)
    assert blurred.shape == image.shape
    # Reflect padding is not exactly mean-preserving at the borders; 5e-3 is ample here.
    torch.testing.assert_close(blurred.mean(dim=(2, 3)), image.mean(dim=(2, 3)), atol=5e-3, rtol=0)
    assert _high_frequency_energy(blurred) < 0.01 * _high_frequency_energy(image)
    rows = torch.arange(32).view(-1, 1)
    checker = ((rows + rows.T) % 2).float().expand(1, 3, 32, 32)
    assert gaussian_blur(checker, 2.0).std() < 0.01  # the finest pattern blurs to grey


def test_blur_edge_cases():
    image = _image(8)
    assert gaussian_blur(image, 0.0) is image
    flat = torch.full((2, 1, 5, 4), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 3.0), flat)  # radius cut to the small side
    assert gaussian_blur(torch.rand(1, 1, 1, 6), 1.0).shape == (1, 1, 1, 6)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(image, -1.0)
    with pytest.raises(ValueError, match="shape"):
        gaussian_blur(image[0], 1.0)


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("gamma", [0.0, 5e-3])
def test_fit_anchor_lowers_the_loss(gamma, continuous):
    calls = []
    losses = fit_anchor(
        _net(),
        _smooth_image(),
        steps=60,
        lr=1e-3,
        gamma=gamma,
        blur_sigma=1.0,
        continuous=continuous,
        callback=lambda step, loss: calls.append((step, loss)),
    )
    assert len(losses) == 60 and all(isinstance(loss, float) for loss in losses)
    # Measured, last / first: 1e-3 (lattice) and 0.11 (continuous, a moving target) without
    # AWP; 2e-2 and 0.16 with gamma = 5e-3.
    assert losses[-1] < 0.3 * losses[0]
    assert [step for step, _ in calls] == list(range(1, 61))
    assert [loss for _, loss in calls] == pytest.approx(losses)


def test_fitted_net_renders_the_blurred_image():
    net = _net()
    image = _image()
    fit_anchor(net, image, steps=60, lr=1e-3, gamma=0.0, blur_sigma=1.0, continuous=False)
    with torch.no_grad():
        error = (net.render(16, 16) - gaussian_blur(image, 1.0)).pow(2).mean()
    assert error < 1e-4


def test_a_continuous_fit_holds_between_the_pixels():
    """Fitted at 16 px, rendered at 61 px (the 16 lattice points and three between each pair):
    the shifted-grid fit follows the blurred image between the pixels far better."""
    image = _smooth_image()
    between = {}
    for continuous in (False, True):
        net = _net()
        fit_anchor(net, image, steps=150, lr=1e-3, gamma=0.0, blur_sigma=1.0, continuous=continuous)
        target = torch.nn.functional.interpolate(
            gaussian_blur(image, 1.0), size=(61, 61), mode="bilinear", align_corners=True
        )
        with torch.no_grad():
            between[continuous] = (net.render(61, 61) - target).pow(2).mean().item()
    assert between[True] < 0.5 * between[False], between


def _manual_awp_step(net: FinerNet, image, lr, gamma, sigma) -> None:
    """One AWP step written out from docs/methods.md 4.4, independently of fit_anchor."""
    coords = coordinate_grid(*image.shape[-2:], dtype=image.dtype)
    target = gaussian_blur(image, sigma)[0].permute(1, 2, 0).reshape(-1, 3)
    matrices = [p for p in net.parameters() if p.dim() == 2]
    originals = [p.detach().clone() for p in matrices]

    def loss_fn():
        return ((net(coords) + 1) / 2 - target).pow(2).mean()

    grads = torch.autograd.grad(loss_fn(), matrices)
    with torch.no_grad():
        for p, g in zip(matrices, grads, strict=True):
            p += gamma * p.norm() * g / g.norm()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn().backward()
    with torch.no_grad():
        for p, original in zip(matrices, originals, strict=True):
            p.copy_(original)
    optimizer.step()


def test_one_step_matches_the_written_out_awp_step():
    image, lr, gamma, sigma = _image(8).double(), 1e-2, 0.2, 1.0
    fitted, manual, plain = _double_net(), _double_net(), _double_net()
    fit_anchor(fitted, image, steps=1, lr=lr, gamma=gamma, blur_sigma=sigma, continuous=False)
    _manual_awp_step(manual, image, lr, gamma, sigma)
    fit_anchor(plain, image, steps=1, lr=lr, gamma=0.0, blur_sigma=sigma, continuous=False)
    for a, b in zip(fitted.parameters(), manual.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    # The gradient really was taken at phi + Delta: the step differs from plain fitting.
    pairs = zip(fitted.parameters(), plain.parameters(), strict=True)
    assert any(not torch.allclose(a, c) for a, c in pairs)


def test_perturbation_is_not_left_in_the_weights():
    """A large gamma and a tiny lr: each weight may move by at most lr (Adam's first step)."""
    net = _double_net()
    before = copy.deepcopy(net)
    image, lr = _image(8).double(), 1e-6
    losses = fit_anchor(net, image, steps=1, lr=lr, gamma=0.5, blur_sigma=1.0)
    for p, q in zip(net.parameters(), before.parameters(), strict=True):
        assert (p - q).abs().max() <= lr * 1.001  # Delta_l is ~1e-2 per weight here
    # The returned loss was taken at phi + Delta, an ascent step away: above the loss at phi.
    with torch.no_grad():
        at_phi = (before.render(8, 8) - gaussian_blur(image, 1.0)).pow(2).mean()
    assert losses[0] > at_phi.item()


def test_zero_gradient_layers_are_not_perturbed():
    """With a zero output layer every hidden gradient is 0: no Delta there, and no NaN."""
    net = _net()
    with torch.no_grad():
        net.layers[-1].weight.zero_()
    before = copy.deepcopy(net)
    fit_anchor(net, _image(8), steps=1, lr=1e-3, gamma=0.1, blur_sigma=1.0)
    assert all(torch.isfinite(p).all() for p in net.parameters())
    for p, q in zip(net.layers[:-1].parameters(), before.layers[:-1].parameters(), strict=True):
        assert torch.equal(p, q)  # zero gradient at phi + Delta too: Adam leaves them alone


def test_fit_anchor_takes_the_image_to_the_nets_dtype():
    net = _net()
    losses = fit_anchor(net, _image(8).double(), steps=2, lr=1e-3, gamma=5e-3, blur_sigma=0.0)
    assert len(losses) == 2 and next(net.parameters()).dtype == torch.float32


@pytest.mark.parametrize(
    ("image", "kwargs", "message"),
    [
        (_image(8)[0], {}, "shape"),
        (torch.rand(2, 3, 8, 8), {}, "shape"),
        (torch.rand(1, 1, 8, 8), {}, "channels"),
        (_image(8) * 2, {}, r"\[0, 1\]"),
        (_image(8) - 0.01, {}, r"\[0, 1\]"),
        (torch.full((1, 3, 8, 8), float("nan")), {}, "finite"),
        (_image(8), {"steps": 0}, "steps"),
        (_image(8), {"lr": float("nan")}, "lr"),
        (_image(8), {"gamma": -1e-3}, "gamma"),
        (_image(8), {"blur_sigma": float("inf")}, "blur_sigma"),
    ],
)
def test_fit_anchor_rejects_bad_input(image, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_anchor(_net(), image, **kwargs)
