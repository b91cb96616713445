"""Priors and the SGLD sampler (docs/methods.md 2.7, 3.5) on tiny models and synthetic data."""

import math

import pytest
import torch

from conftest import tiny_classifier
from hubmodels import RobustClassifier
from hubmodels.sampling import PriorShape
from hubmodels.sampling.priors import kmeans

SHAPE = PriorShape(components=6, clusters=3, local_components=2, min_cluster_size=20)


def _data(n_per_class=200, seed=0):
    """Three classes of 8x8 images: distinct means, variance along two known directions."""
    g = torch.Generator().manual_seed(seed)
    images, labels = [], []
    directions = torch.linalg.qr(torch.randn(64, 2, generator=g))[0].T  # orthonormal (2, 64)
    for y, level in enumerate((0.3, 0.5, 0.7)):
        coeff = torch.randn(n_per_class, 2, generator=g) * torch.tensor([0.08, 0.03])
        x = level + coeff @ directions + 0.002 * torch.randn(n_per_class, 64, generator=g)
        images.append(x), labels.append(torch.full((n_per_class,), y))
    return torch.cat(images).view(-1, 1, 8, 8).clamp(0, 1), torch.cat(labels)


@pytest.fixture(scope="module")
def fitted():
    """A tiny classifier trained for a moment on the synthetic classes, with its prior."""
    model = tiny_classifier().train()
    x, y = _data()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    model.fit_prior(x, y, SHAPE)
    return model, x, y


def test_pca_prior_reproduces_class_means_and_the_variance_it_claims(fitted):
    model, x, y = fitted
    prior = model.prior
    for c in range(3):
        members = x[y == c].flatten(1)
        assert torch.allclose(prior.class_mean[c], members.mean(0), atol=1e-5)
        # The two real directions carry std 0.08 and 0.03; the rest is the 0.002 noise.
        assert prior.class_std[c, :2].tolist() == pytest.approx([0.08, 0.03], rel=0.15)
        assert prior.class_std[c, 2:].max() < 0.01
    # Draw many samples at scale 1: their spread along each stored component is that std.
    labels = torch.zeros(4000, dtype=torch.long)
    draws = prior.sample(labels, "pca", 1.0, torch.Generator().manual_seed(1))
    basis = prior.class_basis[0, :2].float()
    projected = (draws - prior.class_mean[0]) @ basis.T
    assert projected.std(0).tolist() == pytest.approx(prior.class_std[0, :2].tolist(), rel=0.06)
    # scale is in units of component std, whatever the class size.
    half = prior.sample(labels, "pca", 0.5, torch.Generator().manual_seed(1))
    spread = ((half - prior.class_mean[0]) @ basis.T).std(0)
    assert spread.tolist() == pytest.approx((0.5 * prior.class_std[0, :2]).tolist(), rel=0.06)


def test_reference_energies_are_the_mean_and_std_of_each_class_joint_energy(fitted):
    model, x, y = fitted
    with torch.no_grad():
        energies = -model(x)[torch.arange(len(y)), y]
    for c in range(3):
        assert model.prior.reference_energy[c].item() == pytest.approx(
            energies[y == c].mean().item(), abs=1e-4
        )
        assert model.prior.reference_energy_std[c].item() == pytest.approx(
            energies[y == c].std().item(), rel=1e-4
        )


@pytest.mark.parametrize("init", ["pca", "gaussian", "local_pca", "uniform"])
def test_every_init_gives_images_in_the_unit_box_of_the_right_shape(fitted, init):
    model, _, _ = fitted
    out = model.sample(classes=[0, "c"], n_per_class=5, seed=0, init=init, steps=3, scale=3.0)
    assert out.tensors.shape == (10, 1, 8, 8)
    assert out.tensors.min() >= 0 and out.tensors.max() <= 1
    assert out.labels == [0] * 5 + [2] * 5
    assert [im.size for im in out.images] == [(8, 8)] * 10 and out.images[0].mode == "L"


def test_local_pca_starts_at_cluster_means_that_are_no_training_image(fitted):
    model, x, y = fitted
    prior = model.prior
    start = prior.sample(
        torch.ones(200, dtype=torch.long), "local_pca", 0.0, torch.Generator().manual_seed(0)
    )
    used = prior.local_weight[1] > 0
    means = prior.local_mean[1][used].float()
    assert torch.cdist(start, means).min(1).values.max() < 5e-3  # scale 0: a cluster mean
    members = x[y == 1].flatten(1)
    # Each mean averages >= 20 images: it is far from every one of them, and shares sum to 1.
    assert torch.cdist(means, members).min(1).values.min() > 0.01
    assert prior.local_weight[1].sum().item() == pytest.approx(1.0, abs=1e-6)
    assert (prior.local_weight[1][used] * 200 >= 20).all()


def test_local_pca_picks_clusters_by_their_share_of_the_class(fitted):
    model, _, _ = fitted
    prior = model.prior
    labels = torch.zeros(6000, dtype=torch.long)
    start = prior.sample(labels, "local_pca", 0.0, torch.Generator().manual_seed(2))
    means = prior.local_mean[0].float()
    picked = torch.cdist(start, means).argmin(1)
    share = torch.bincount(picked, minlength=len(means)).double() / len(labels)
    assert share.tolist() == pytest.approx(prior.local_weight[0].tolist(), abs=0.03)


def test_kmeans_keeps_every_cluster_at_least_min_size():
    g = torch.Generator().manual_seed(0)
    # One big blob and five lone outliers: the outliers may not form clusters of their own.
    points = torch.cat([torch.randn(200, 4, generator=g), 50 + torch.randn(5, 4, generator=g)])
    labels = kmeans(points, clusters=8, min_size=20, generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(labels)
    assert counts.min() >= 20 and counts.sum() == 205
    assert len(counts) <= 205 // 20
    assert labels.max() + 1 == len(counts)  # numbered 0..C-1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(min_cluster_size=1), "at least 2"),
        (dict(clusters=0), "positive integer"),
        (dict(cluster_space="pixels"), "cluster_space"),
        (dict(retained_variance=0.0), "retained_variance"),
    ],
)
def test_prior_shapes_that_could_store_a_training_image_or_make_no_sense_are_refused(
    kwargs, message
):
    with pytest.raises(ValueError, match=message):
        PriorShape(**kwargs)


def test_a_class_smaller_than_one_cluster_is_a_clear_error(tiny_model):
    x, y = _data(n_per_class=10)
    with pytest.raises(ValueError, match="min_cluster_size = 20"):
        tiny_model.fit_prior(x, y, SHAPE)


def test_plain_descent_lowers_the_joint_energy(fitted):
    model, _, _ = fitted
    before = model.sample(classes=[1], n_per_class=16, seed=3, steps=1, step_size=1e-6)
    after = model.sample(
        classes=[1], n_per_class=16, seed=3, steps=25, step_size=0.002, momentum=0.5
    )
    assert torch.tensor(after.energies).mean() < torch.tensor(before.energies).mean() - 0.1


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_classifier_weight_descends_the_joint_energy_plus_gamma_times_cross_entropy(fitted, gamma):
    """One noiseless step is x - eta/2 grad[(1 + gamma) E(x, y) - gamma E(x)]: -log p(y|x) is
    E(x, y) - E(x), so the target is p(x | y) p(y | x)^gamma."""
    from hubmodels.energy import joint_energy, marginal_energy

    model, _, _ = fitted
    common = dict(classes=[0, 2], n_per_class=3, seed=4, steps=1, momentum=0, noise_std=0)
    start = model.sample(step_size=1e-12, **common)
    x = start.tensors.clone().requires_grad_(True)
    logits = model(x)
    labels = torch.tensor(start.labels)
    objective = (1 + gamma) * joint_energy(logits, labels) - gamma * marginal_energy(logits)
    (grad,) = torch.autograd.grad(objective.sum(), x)
    eta = 0.01
    stepped = model.sample(step_size=eta, classifier_weight=gamma, **common)
    expected = (start.tensors - eta / 2 * grad).clamp(0, 1)
    assert not torch.allclose(stepped.tensors, start.tensors, atol=1e-4)
    assert torch.allclose(stepped.tensors, expected, atol=1e-6)


def test_same_seed_same_images_other_seed_other_images(fitted):
    model, _, _ = fitted
    a = model.sample(classes=[0, 1], n_per_class=3, seed=7, steps=4)
    b = model.sample(classes=[0, 1], n_per_class=3, seed=7, steps=4)
    c = model.sample(classes=[0, 1], n_per_class=3, seed=8, steps=4)
    assert torch.equal(a.tensors, b.tensors) and not torch.equal(a.tensors, c.tensors)


@pytest.mark.parametrize("guidance", [False, True])
def test_adaptive_stopping_stops_each_sample_when_its_criterion_is_met_and_not_before(
    fitted, guidance
):
    model, _, _ = fitted
    ref = model.prior.reference_energy
    allowed = 0.3 * model.prior.reference_energy_std
    common = dict(
        classes=[0, 1, 2],
        n_per_class=4,
        seed=5,
        step_size=0.002,
        momentum=0.5,
        guidance=guidance,
        tolerance=0.3,
    )
    stopped = model.sample(steps=40, adaptive_stop=True, **common)
    labels = torch.tensor(stopped.labels)

    def criterion(energies):
        e = torch.tensor(energies)
        gap = e - ref[labels]
        return gap.abs() <= allowed[labels] if guidance else gap <= allowed[labels]

    # Frozen samples are exactly where the un-stopped trajectory was after that many steps.
    assert any(s < 40 for s in stopped.steps), "some samples must stop early in this setup"
    for i, taken in enumerate(stopped.steps):
        if taken < 40:
            assert criterion(stopped.energies)[i], "stopped before reaching its criterion"
        if taken >= 1:
            earlier = model.sample(steps=taken, **common) if taken > 1 else None
            if earlier is not None:
                # after `taken` updates the free run is where the stopped sample froze
                assert torch.allclose(earlier.tensors[i], stopped.tensors[i], atol=1e-6)
            previous = model.sample(steps=max(taken - 1, 1), **common)
            if taken > 1:
                assert not criterion(previous.energies)[i], "it could have stopped earlier"


def test_prior_survives_save_and_load(fitted, tmp_path):
    model, _, _ = fitted
    model.save_pretrained(tmp_path)
    loaded = RobustClassifier.from_pretrained(tmp_path)
    assert loaded.config["prior"] == SHAPE.to_dict()
    for name, tensor in model.prior.state_dict().items():
        assert torch.equal(tensor, loaded.prior.state_dict()[name]), name
    a = model.sample(classes=[2], n_per_class=4, seed=1, steps=3, init="local_pca")
    b = loaded.sample(classes=[2], n_per_class=4, seed=1, steps=3, init="local_pca")
    assert torch.equal(a.tensors, b.tensors)


def test_rejection_keeps_only_samples_the_model_assigns_to_their_class(fitted):
    model, _, _ = fitted
    out = model.sample(
        classes=[0, 1, 2], n_per_class=6, seed=0, steps=2, reject=True, init="uniform"
    )
    with torch.no_grad():
        predicted = model(out.tensors).argmax(1).tolist()
    assert predicted == out.labels and all(out.accepted)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(classes=["Sneaker"]), "unknown class 'Sneaker'"),
        (dict(classes=[3]), "out of range"),
        (dict(n_per_class=0), "positive integer"),
        (dict(n_per_class=100_000), "at most 10000"),
        (dict(step_size=math.nan), "step_size must be a finite"),
        (dict(step_size=0.0), "step_size must be positive"),
        (dict(steps=0), "steps must be a positive integer"),
        (dict(classifier_weight=-1.0), "classifier_weight must be a finite"),
        (dict(init="noise"), "unknown init"),
    ],
)
def test_bad_requests_are_clear_errors(fitted, kwargs, message):
    model, _, _ = fitted
    with pytest.raises(ValueError, match=message):
        model.sample(**{"classes": [0], "n_per_class": 1, **kwargs})


def test_a_checkpoint_without_prior_says_how_to_get_one(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    with pytest.raises(
        ValueError, match="no prior: fit one first with `python -m hubmodels fit-prior"
    ):
        RobustClassifier.from_pretrained(tmp_path).sample(classes=[0])


def test_a_checkpoint_with_the_retired_anchor_prior_loads_without_it(fitted, tmp_path):
    """The old local prior stored training images: it is never loaded, the classifier is."""
    import json

    from safetensors.torch import load_file, save_file

    model, _, _ = fitted
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["prior"] = {
        "components": 6,
        "anchors": 3,
        "local_components": 2,
        "neighbours": 10,
        "retained_variance": 0.95,
        "neighbour_space": "pixel",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["prior.local_anchor"] = torch.rand(3, 3, 64)
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.warns(UserWarning, match="retired anchor-centred local PCA"):
        loaded = RobustClassifier.from_pretrained(tmp_path)
    assert loaded.prior is None and loaded.config["prior"] is None
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model(x))
    with pytest.raises(ValueError, match="no prior: fit one first"):
        loaded.sample(classes=[0])
