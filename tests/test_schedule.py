"""The layer-wise Gaussian learning-rate sweep (docs/methods.md 4.3)."""

import math

import pytest
import torch

from hubmodels.inversion.finer import FinerNet, INRConfig
from hubmodels.inversion.schedule import LayerSweep, gaussian_layer_rates, layer_param_groups


def _argmax(values):
    return max(range(len(values)), key=values.__getitem__)


@pytest.mark.parametrize("start_layer", [0, 2])
def test_peak_moves_from_start_layer_to_the_last(start_layer):
    layers, steps = 6, 9
    rates = [gaussian_layer_rates(t, steps, layers, 1e-3, start_layer=start_layer) for t in (0, 8)]
    assert _argmax(rates[0]) == start_layer
    assert _argmax(rates[1]) == layers - 1
    assert rates[0][start_layer] == pytest.approx(1e-3) and rates[1][-1] == pytest.approx(1e-3)
    # Half way the centre is start + (L - 1 - start) / 2: its two neighbours tie when it is
    # half-integer, and it is the peak when it is an integer.
    middle = gaussian_layer_rates(4, steps, layers, 1e-3, start_layer=start_layer)
    centre = start_layer + (layers - 1 - start_layer) / 2
    if centre.is_integer():
        assert _argmax(middle) == int(centre)
    else:
        assert middle[math.floor(centre)] == pytest.approx(middle[math.ceil(centre)])
        assert _argmax(middle) in (math.floor(centre), math.ceil(centre))


def test_peak_is_monotone_in_time():
    peaks = [_argmax(gaussian_layer_rates(t, 50, 5, 1.0)) for t in range(50)]
    assert peaks == sorted(peaks) and peaks[0] == 0 and peaks[-1] == 4


@pytest.mark.parametrize("width", [0.5, 1.0, 2.0])
def test_gaussian_shape(width):
    lr_max, layers, steps, step = 2e-4, 7, 13, 4  # c = 6 * 4 / 12 = 2
    rates = gaussian_layer_rates(step, steps, layers, lr_max, width=width, output_floor=0.0)
    assert rates[3] / rates[2] == pytest.approx(math.exp(-1 / (2 * width**2)))
    assert rates[1] == pytest.approx(rates[3])
    for layer, rate in enumerate(rates):
        assert rate == pytest.approx(lr_max * math.exp(-((layer - 2) ** 2) / (2 * width**2)))


def test_output_floor():
    rates = gaussian_layer_rates(0, 10, 6, 1e-3, output_floor=0.1)
    assert rates[-1] == pytest.approx(1e-4)  # exp(-25 / 2) * lr_max would be ~4e-9
    assert gaussian_layer_rates(0, 10, 6, 1e-3, output_floor=0.0)[-1] < 1e-8
    assert gaussian_layer_rates(9, 10, 6, 1e-3, output_floor=0.1)[-1] == pytest.approx(1e-3)


def test_layers_below_start_are_frozen():
    for step in range(5):
        rates = gaussian_layer_rates(step, 5, 6, 1e-3, start_layer=3)
        assert rates[:3] == [0.0, 0.0, 0.0] and all(rate > 0 for rate in rates[3:])


def test_single_step_and_single_layer():
    assert _argmax(gaussian_layer_rates(0, 1, 4, 1.0, start_layer=1)) == 1
    assert gaussian_layer_rates(0, 1, 1, 1e-3) == [pytest.approx(1e-3)]


def test_layer_sweep_drives_adam():
    torch.manual_seed(0)
    net = FinerNet(INRConfig(hidden_layers=2, width=8))
    groups = layer_param_groups(net)
    assert [group["layer"] for group in groups] == [0, 1, 2, 3]
    assert sum(len(group["params"]) for group in groups) == len(list(net.parameters()))
    optimizer = torch.optim.Adam(groups, lr=1.0)
    sweep = LayerSweep(optimizer, total_steps=10, lr_max=1e-2, start_layer=1)
    assert sweep.num_layers == 4
    rates = sweep.apply(3)
    assert rates == gaussian_layer_rates(3, 10, 4, 1e-2, start_layer=1)
    assert [group["lr"] for group in optimizer.param_groups] == rates
    # A frozen layer (lr 0) does not move under Adam; the others do.
    before = [p.detach().clone() for p in net.parameters()]
    net.render(4, 4).mean().backward()
    optimizer.step()
    after = list(net.parameters())
    assert torch.equal(after[0], before[0]) and torch.equal(after[1], before[1])
    assert not torch.equal(after[2], before[2])


def test_layer_sweep_rejects_groups_out_of_order():
    net = FinerNet(INRConfig(hidden_layers=1, width=8))
    optimizer = torch.optim.Adam(layer_param_groups(net)[::-1], lr=1e-3)
    with pytest.raises(ValueError, match="depth order"):
        LayerSweep(optimizer, total_steps=10, lr_max=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step": -1}, "step"),
        ({"step": 10}, "step"),
        ({"total_steps": 0}, "total_steps"),
        ({"num_layers": 0}, "num_layers"),
        ({"lr_max": 0.0}, "lr_max"),
        ({"lr_max": float("nan")}, "lr_max"),
        ({"width": 0.0}, "width"),
        ({"start_layer": 5}, "start_layer"),
        ({"start_layer": -1}, "start_layer"),
        ({"output_floor": 1.5}, "output_floor"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    arguments = {"step": 0, "total_steps": 10, "num_layers": 5, "lr_max": 1e-3, **kwargs}
    with pytest.raises(ValueError, match=message):
        gaussian_layer_rates(**arguments)


def test_layer_sweep_validates_up_front():
    net = FinerNet(INRConfig(hidden_layers=1, width=8))
    optimizer = torch.optim.Adam(layer_param_groups(net), lr=1e-3)
    with pytest.raises(ValueError, match="start_layer"):
        LayerSweep(optimizer, total_steps=10, lr_max=1e-3, start_layer=3)
    with pytest.raises(ValueError, match="step"):
        LayerSweep(optimizer, total_steps=10, lr_max=1e-3).apply(10)
