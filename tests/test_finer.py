"""The FINER INR (docs/methods.md 4.2): layer formula, detached scale, init, grid, render."""

import json
import math

import pytest
import torch

from hubmodels.inversion.finer import FinerLayer, FinerNet, INRConfig, coordinate_grid

TINY = INRConfig(hidden_layers=2, width=16)


def _net(seed: int = 0, **overrides) -> FinerNet:
    torch.manual_seed(seed)
    return FinerNet(INRConfig(**{**TINY.to_dict(), **overrides}))


@pytest.mark.parametrize("activation", ["finer", "siren"])
def test_layer_matches_its_formula(activation):
    torch.manual_seed(0)
    layer = FinerLayer(4, 8, omega=3.0, activation=activation).double()
    x = torch.randn(10, 4, dtype=torch.float64)
    z = x @ layer.linear.weight.T + layer.linear.bias
    alpha = z.abs() + 1 if activation == "finer" else torch.ones_like(z)
    torch.testing.assert_close(layer(x), torch.sin(3.0 * alpha * z))


def test_no_gradient_flows_through_alpha():
    """d/dz sin(w a z) with a = |z| + 1 held fixed is w a cos(w a z), not w (2|z| + 1) cos(...)."""
    torch.manual_seed(0)
    omega = 2.0
    layer = FinerLayer(3, 5, omega=omega).double()
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(layer(x).sum(), x)
    with torch.no_grad():
        w = layer.linear.weight
        z = x @ w.T + layer.linear.bias
        alpha = z.abs() + 1
        detached = omega * alpha * torch.cos(omega * alpha * z)
        through_alpha = omega * (2 * z.abs() + 1) * torch.cos(omega * alpha * z)
    torch.testing.assert_close(grad, detached @ w)
    assert not torch.allclose(grad, through_alpha @ w)


def test_fused_sine_gives_the_plain_formulas_weight_gradients():
    """The fused FINER sine against autograd on the textbook expression, alpha detached."""
    torch.manual_seed(0)
    layer = FinerLayer(3, 6, omega=5.0).double()
    x = torch.randn(9, 3, dtype=torch.float64)
    upstream = torch.randn(9, 6, dtype=torch.float64)
    fused = torch.autograd.grad((layer(x) * upstream).sum(), list(layer.parameters()))
    z = layer.linear(x)
    plain = torch.sin(5.0 * (z.detach().abs() + 1) * z)
    expected = torch.autograd.grad((plain * upstream).sum(), list(layer.parameters()))
    for got, want in zip(fused, expected, strict=True):
        torch.testing.assert_close(got, want)
    with torch.no_grad():  # the in-place forward leaves its input alone
        z = layer.linear(x)
        before = z.clone()
        torch.testing.assert_close(layer(x), plain.detach())
        torch.testing.assert_close(z, before)


def test_init_bounds_and_first_bias_spread():
    k, omega, width = 2.5, 30.0, 64
    net = _net(width=width, omega=omega, first_bias_scale=k)
    first = net.layers[0].linear
    assert first.weight.abs().max() <= 1 / 2  # fan_in = 2 coordinates
    assert first.bias.abs().max() <= k
    assert first.bias.abs().max() > k / 2  # actually spread, not the nn.Linear default
    hidden_bound = math.sqrt(6 / width) / omega
    for layer in list(net.layers[1:-1]):
        assert layer.linear.weight.abs().max() <= hidden_bound
        assert layer.linear.bias.abs().max() <= hidden_bound
    out = net.layers[-1]
    assert isinstance(out, torch.nn.Linear)
    assert out.weight.abs().max() <= hidden_bound
    assert out.weight.abs().max() > hidden_bound / 2  # uses the bound, not something smaller


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_output_scale_multiplies_only_the_output_layers_bound(scale):
    width, omega = 64, 20.0
    net = _net(width=width, omega=omega, output_scale=scale)
    bound = scale * math.sqrt(6 / width) / omega
    out = net.layers[-1]
    assert bound / 2 < out.weight.abs().max() <= bound
    assert out.bias.abs().max() <= bound
    for layer in net.layers[1:-1]:  # hidden layers keep SIREN's bound
        assert layer.linear.weight.abs().max() <= math.sqrt(6 / width) / omega


def test_a_config_saved_before_output_scale_existed_loads_with_sirens_bound():
    old = {k: v for k, v in INRConfig().to_dict().items() if k != "output_scale"}
    assert INRConfig.from_dict(old).output_scale == 1.0


def test_siren_first_bias_ignores_the_finer_scale():
    net = _net(width=64, activation="siren", first_bias_scale=5.0)
    assert net.layers[0].linear.bias.abs().max() <= 1 / 2  # the first layer's weight bound


@pytest.mark.parametrize("hidden_layers", [1, 3])
def test_layers_hold_every_layer_in_depth_order(hidden_layers):
    net = _net(hidden_layers=hidden_layers)
    assert len(net.layers) == hidden_layers + 2
    assert all(isinstance(layer, FinerLayer) for layer in net.layers[:-1])
    assert net.layers[0].is_first and not any(layer.is_first for layer in net.layers[1:-1])
    assert net.layers[-1].out_features == TINY.out_channels
    assert net.config.hidden_layers == hidden_layers


@pytest.mark.parametrize("size", [(7, 13), (1, 1), (16, 16)])
def test_render_shape_range_and_pixel_order(size):
    height, width = size
    net = _net(out_channels=2)
    image = net.render(height, width)
    assert image.shape == (1, 2, height, width)
    assert image.min() >= 0 and image.max() <= 1
    raw = net(coordinate_grid(height, width))
    r, c = height - 1, width // 2  # pixel (r, c) is grid row r * width + c
    expected = ((raw[r * width + c] + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(image[0, :, r, c], expected)


def test_a_shifted_render_samples_between_the_grid_points():
    net = _net().double()
    height, width = 5, 9
    shift = torch.tensor([0.5, -0.25], dtype=torch.float64)
    image = net.render(height, width, shift)
    spacing = torch.tensor([2 / (height - 1), 2 / (width - 1)], dtype=torch.float64)
    raw = net(coordinate_grid(height, width, dtype=torch.float64) + shift * spacing)
    expected = ((raw + 1) / 2).clamp(0, 1).view(height, width, -1).permute(2, 0, 1)
    torch.testing.assert_close(image[0], expected)
    torch.testing.assert_close(net.render(height, width, torch.zeros(2)), net.render(5, 9))
    assert not torch.allclose(image, net.render(height, width))
    with pytest.raises(ValueError, match="shift"):
        net.render(height, width, torch.zeros(3))


def test_render_caches_the_grid_outside_state_dict():
    net = _net()
    net.render(5, 6)
    grid = net.coordinates(5, 6)
    net.render(5, 6)
    assert net.coordinates(5, 6) is grid
    assert all("grid" not in key for key in net.state_dict())
    assert set(net.state_dict()) == {name for name, _ in net.named_parameters()}
    net.double()  # a new dtype gets its own grid
    assert net.coordinates(5, 6).dtype == torch.float64
    assert net.render(5, 6).dtype == torch.float64


def test_render_backpropagates_to_every_layer():
    net = _net()
    net.render(8, 8).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_coordinate_grid_corners_and_order():
    grid = coordinate_grid(3, 4)
    assert grid.shape == (12, 2)
    torch.testing.assert_close(grid[0], torch.tensor([-1.0, -1.0]))  # top-left, (row, col)
    torch.testing.assert_close(grid[3], torch.tensor([-1.0, 1.0]))  # top-right
    torch.testing.assert_close(grid[4], torch.tensor([0.0, -1.0]))  # second row starts
    torch.testing.assert_close(grid[-1], torch.tensor([1.0, 1.0]))  # bottom-right
    image = grid.view(3, 4, 2)
    assert (image[..., 0].diff(dim=0) > 0).all() and (image[..., 1].diff(dim=1) > 0).all()
    torch.testing.assert_close(coordinate_grid(1, 1), torch.zeros(1, 2))
    assert coordinate_grid(2, 2, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match="height"):
        coordinate_grid(0, 4)


def test_config_round_trips_through_json():
    config = INRConfig(hidden_layers=5, width=32, omega=20, first_bias_scale=0.0)
    restored = INRConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert isinstance(restored.omega, float)
    assert INRConfig.from_dict({}) == INRConfig()


def test_config_rejects_unknown_keys_by_name():
    with pytest.raises(ValueError, match="depth"):
        INRConfig.from_dict({"width": 32, "depth": 3})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hidden_layers": 0}, "hidden_layers"),
        ({"width": 1.5}, "width"),
        ({"out_channels": True}, "out_channels"),
        ({"omega": 0.0}, "omega"),
        ({"omega": float("inf")}, "omega"),
        ({"first_bias_scale": -1.0}, "first_bias_scale"),
        ({"output_scale": 0.0}, "output_scale"),
        ({"output_scale": float("nan")}, "output_scale"),
        ({"activation": "relu"}, "activation"),
    ],
)
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        INRConfig(**overrides)


def test_layer_and_net_reject_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        FinerLayer(2, 4, activation="gauss")
    with pytest.raises(ValueError, match="INRConfig"):
        FinerNet({"width": 16})
    with pytest.raises(ValueError, match="coords"):
        _net()(torch.zeros(4, 3))


@pytest.mark.parametrize("values", [{"width": 10**6}, {"hidden_layers": 10**4}, {"width": 0}])
def test_an_untrusted_inr_config_cannot_ask_for_a_huge_net(values):
    with pytest.raises(ValueError, match="must be a whole number in"):
        INRConfig.from_dict({**TINY.to_dict(), **values})
