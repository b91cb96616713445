"""Sampling from the shipped robust presets: a quick, small version of the sampling ablation
(issue: sampling, experiment 4), graded by the independently trained standard preset."""

import pytest

from hubmodels import RobustClassifier
from hubmodels.metrics import judge_report
from hubmodels.sampling.sampler import SamplerSettings

JUDGE = "fmnist-smallcnn-standard"


@pytest.fixture(scope="module")
def judge():
    return RobustClassifier.from_pretrained(JUDGE)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fmnist-smallcnn-der", "fmnist-smallcnn-weat"])
def test_pca_start_samples_convince_a_judge_and_noise_start_samples_do_not(name, judge):
    model = RobustClassifier.from_pretrained(name)
    accuracy = {}
    for init in ("pca", "uniform"):
        out = model.sample(None, 5, seed=0, init=init, steps=30)
        accuracy[init] = judge_report(judge, out.images, out.labels)["judge_accuracy"]
    assert accuracy["pca"] > accuracy["uniform"] + 0.4, accuracy


# ------------------------------------------------------------------ generation, not retrieval
PRESETS = ["fmnist-smallcnn-der", "fmnist-smallcnn-weat"]


@pytest.fixture(scope="module")
def fashion_mnist():
    """The full training set (N, 784) and 2,000 test images, as the prior saw them."""
    import torch

    from hubmodels.training.data import load_dataset

    splits = load_dataset("fashion-mnist", augment=False, val_size=0)

    def flat(ds, n=None):
        n = len(ds) if n is None else n
        return torch.stack([ds[i][0] for i in range(n)]).flatten(1), ds.labels[:n]

    return flat(splits.train), flat(splits.test, 2000)


def _nearest_train_distance(points, train):
    from hubmodels.metrics import nearest_neighbours

    return nearest_neighbours(points, train[0])[0]


@pytest.mark.parametrize("name", PRESETS)
def test_no_stored_prior_tensor_is_a_training_image(name, fashion_mnist):
    train, test = fashion_mnist
    prior = RobustClassifier.from_pretrained(name).prior
    for buffer_name, tensor in prior.state_dict().items():
        rows = tensor.float().reshape(-1, tensor.shape[-1])
        if rows.shape[-1] != train[0].shape[1]:
            continue  # stds, weights, energies: not images
        if "basis" in buffer_name:
            continue  # unit-norm directions, not images
        used = rows[rows.abs().sum(1) > 0]
        distance = _nearest_train_distance(used, train)
        # Real test images come as close as ~0.8 to a training image; a stored copy would be 0.
        assert distance.min() > 1.0, (buffer_name, float(distance.min()))


@pytest.mark.parametrize("name", PRESETS)
def test_default_starts_are_never_near_a_training_image(name, fashion_mnist):
    import torch

    train, _ = fashion_mnist
    model = RobustClassifier.from_pretrained(name)
    labels = torch.arange(10).repeat_interleave(60)
    settings = SamplerSettings()  # the defaults sample() uses
    starts = model.prior.sample(labels, settings.init, settings.scale, torch.Generator())
    assert _nearest_train_distance(starts, train).min() > 1.0


@pytest.mark.slow
def test_default_samples_are_new_and_recognisable(fashion_mnist):
    """The done-when bar at a test's size: copy ratio >= 0.8, distinct neighbours >= 60 %."""
    import torch

    from hubmodels.metrics import copy_report

    train, test = fashion_mnist
    out = RobustClassifier.from_pretrained("fmnist-smallcnn-der").sample(None, 20, seed=3)
    report = copy_report(out.tensors, train[0], test[0], torch.tensor(out.labels), test[1])
    assert report["copy_ratio"] >= 0.8 and report["distinct_nn"] >= 0.6, report
    with torch.no_grad():
        recognised = RobustClassifier.from_pretrained(JUDGE)(out.tensors).argmax(1)
    assert (recognised == torch.tensor(out.labels)).double().mean() >= 0.85


def test_adaptive_stop_samples_more_than_one_step_on_the_der_preset():
    model = RobustClassifier.from_pretrained("fmnist-smallcnn-der")
    out = model.sample(None, 10, seed=0, guidance=True, adaptive_stop=True)
    mean_steps = sum(out.steps) / len(out.steps)
    assert 1.0 < mean_steps < SamplerSettings().steps, mean_steps
    assert max(out.steps) > 1
