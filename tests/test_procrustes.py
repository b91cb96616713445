"""Per-prompt orthogonal Procrustes and the blending target (docs/methods.md 4.5, 4.6)."""

import pytest
import torch
import torch.nn.functional as F

from hubmodels.inversion.procrustes import (
    blend_target,
    blending_weights,
    cosine_distance,
    procrustes_rotation,
    procrustes_target,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """These are tiny QR/SVD calls: extra LAPACK threads only add synchronisation, which on a
    busy 2-core machine costs a thousandfold (0.25 s for a 64 x 64 QR). Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _orthogonal(d, g):
    return torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64)).Q


def _pairs(k, d, noise=0.02, seed=0):
    """Unit rows s_i and t_i = normalise(Q s_i + noise) for a known random orthogonal Q."""
    g = torch.Generator().manual_seed(seed)
    rotation = _orthogonal(d, g)
    source = F.normalize(torch.randn(k, d, generator=g, dtype=torch.float64), dim=1)
    target = F.normalize(
        source @ rotation.T + noise * torch.randn(k, d, generator=g, dtype=torch.float64), dim=1
    )
    return source.float(), target.float(), rotation, g


def _objective(rotation, source, target):
    r, s, t = rotation.double(), source.double(), target.double()
    return float(((s @ r.T - t) ** 2).sum())


@pytest.mark.parametrize("k, d", [(32, 8), (16, 64), (1, 16), (40, 40)])
def test_rotation_is_orthogonal_and_optimal(k, d):
    source, target, _, g = _pairs(k, d)
    rotation = procrustes_rotation(source, target)
    assert rotation.shape == (d, d) and rotation.dtype == torch.float32
    eye = torch.eye(d)
    torch.testing.assert_close(rotation.T @ rotation, eye, atol=1e-5, rtol=0)
    # The full d x d SVD solution of 4.5 (R = U V^T of M = B A^T) reaches the minimum too:
    # the span-restricted solver must match its objective.
    u, _, vh = torch.linalg.svd(target.double().T @ source.double())
    best = _objective(rotation, source, target)
    assert best == pytest.approx(_objective(u @ vh, source, target), abs=1e-5)
    assert best < _objective(eye, source, target)
    for _ in range(20):
        assert best < _objective(_orthogonal(d, g), source, target)


def test_rotation_recovers_the_true_map():
    # k >= d: the pairs fix R everywhere, so it is Q itself up to the noise.
    source, target, rotation, _ = _pairs(64, 8, noise=0.01)
    assert (procrustes_rotation(source, target).double() - rotation).abs().max() < 0.05
    # k < d: only the span of the s_i is fixed; there R s_i = Q s_i.
    source, target, rotation, _ = _pairs(12, 48, noise=0.0)
    mapped = source.double() @ procrustes_rotation(source, target).double().T
    torch.testing.assert_close(mapped, source.double() @ rotation.T, atol=1e-5, rtol=0)


def test_single_pair_is_the_minimal_rotation():
    g = torch.Generator().manual_seed(3)
    s, t = F.normalize(torch.randn(2, 10, generator=g), dim=1)
    rotation = procrustes_rotation(s[None], t[None])
    torch.testing.assert_close(rotation @ s, t, atol=1e-5, rtol=0)
    # Identity on every direction orthogonal to both s and t (not an arbitrary completion).
    plane = torch.linalg.qr(torch.stack([s, t], dim=1)).Q
    other = torch.randn(10, generator=g)
    other = other - plane @ (plane.T @ other)
    torch.testing.assert_close(rotation @ other, other, atol=1e-5, rtol=0)
    assert torch.linalg.det(rotation.double()) == pytest.approx(1.0, abs=1e-6)


def test_returns_input_dtype():
    source, target, _, _ = _pairs(8, 6)
    assert procrustes_rotation(source.double(), target.double()).dtype == torch.float64
    assert procrustes_target(source[0].half(), source, target).dtype == torch.float16


def test_target_moves_queries_towards_held_out_partners():
    source, target, rotation, g = _pairs(48, 16, noise=0.05)
    queries = F.normalize(torch.randn(10, 16, generator=g), dim=1)
    truth = F.normalize(queries.double() @ rotation.T, dim=1).float()
    mapped = procrustes_target(queries, source, target)
    assert mapped.shape == queries.shape
    torch.testing.assert_close(mapped.norm(dim=1), torch.ones(10), atol=1e-5, rtol=0)
    gained = F.cosine_similarity(mapped, truth, dim=1)
    assert (gained > F.cosine_similarity(queries, truth, dim=1)).all()
    assert (gained > 0.98).all()
    # One (d,) query gives one (d,) answer, the same as its row of the batch.
    torch.testing.assert_close(procrustes_target(queries[0], source, target), mapped[0])


def test_target_in_the_span_with_few_neighbours():
    # k < d, queries built from the neighbours (as retrieval gives): still mapped correctly.
    source, target, rotation, g = _pairs(16, 64, noise=0.0)
    queries = F.normalize(torch.rand(5, 16, generator=g) @ source, dim=1)
    truth = F.normalize(queries.double() @ rotation.T, dim=1).float()
    mapped = procrustes_target(queries, source, target)
    assert (F.cosine_similarity(mapped, truth, dim=1) > 0.999).all()
    assert (F.cosine_similarity(queries, truth, dim=1) < 0.9).all()


def test_centred_variant_handles_a_shift():
    # A modality gap: targets are a rotation plus a constant offset. Centring solves it
    # exactly; the plain rotation cannot represent the offset.
    g = torch.Generator().manual_seed(5)
    d = 12
    rotation = _orthogonal(d, g)
    offset = 0.6 * F.normalize(torch.randn(d, generator=g, dtype=torch.float64), dim=0)
    source = F.normalize(torch.randn(60, d, generator=g, dtype=torch.float64), dim=1)
    target = source @ rotation.T + offset
    queries = F.normalize(torch.randn(8, d, generator=g, dtype=torch.float64), dim=1)
    truth = F.normalize(queries @ rotation.T + offset, dim=1)
    centred = procrustes_target(queries, source, target, centre=True)
    plain = procrustes_target(queries, source, target)
    cos_centred = F.cosine_similarity(centred, truth, dim=1)
    assert (cos_centred > 1 - 1e-9).all()
    assert cos_centred.mean() > F.cosine_similarity(plain, truth, dim=1).mean()
    rot = procrustes_rotation(source, target, centre=True)
    torch.testing.assert_close(rot, rotation, atol=1e-9, rtol=0)


def test_blending_weights():
    g = torch.Generator().manual_seed(1)
    query = F.normalize(torch.randn(16, generator=g), dim=0)
    neighbours = F.normalize(torch.randn(6, 16, generator=g), dim=1)
    neighbours[3] = F.normalize(query + 0.1 * neighbours[3], dim=0)  # the most similar one
    weights = {t: blending_weights(query, neighbours, t) for t in (1.0, 0.1, 0.05, 0.01)}
    for w in weights.values():
        assert w.shape == (6,)
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)
        assert int(w.argmax()) == 3
    peaks = [float(weights[t].max()) for t in (1.0, 0.1, 0.05, 0.01)]
    assert peaks == sorted(peaks) and peaks[-1] > 0.99 and peaks[0] < 0.5
    target = blend_target(query, neighbours, 0.01)
    assert float(target.norm()) == pytest.approx(1.0, abs=1e-6)
    assert float(F.cosine_similarity(target, neighbours[3], dim=0)) > 0.99
    # Unnormalised neighbours are normalised first: scaling one changes nothing.
    scaled = neighbours.clone()
    scaled[0] *= 7
    torch.testing.assert_close(blend_target(query, scaled), blend_target(query, neighbours))


def test_cosine_distance():
    a = torch.tensor([[1.0, 2.0, -3.0], [0.5, 0.0, 1.0]])
    torch.testing.assert_close(cosine_distance(a, a), torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(cosine_distance(a, -3 * a), torch.full((2,), 2.0))
    assert float(cosine_distance(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))) == 1.0
    assert cosine_distance(a, a[0]).shape == (2,)  # broadcasts
    x = torch.randn(4, 3, requires_grad=True)
    cosine_distance(x, a[0]).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_bad_inputs_raise():
    source, target, _, _ = _pairs(4, 6)
    with pytest.raises(ValueError, match="same shape"):
        procrustes_rotation(source, target[:3])
    with pytest.raises(ValueError, match="same shape"):
        procrustes_rotation(source[0], target[0])
    with pytest.raises(ValueError, match="same shape"):
        procrustes_rotation(source[:0], target[:0])
    bad = target.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        procrustes_rotation(source, bad)
    with pytest.raises(ValueError, match="non-finite"):
        procrustes_target(torch.full((6,), float("inf")), source, target)
    with pytest.raises(ValueError, match="d=6"):
        procrustes_target(torch.ones(5), source, target)
    with pytest.raises(ValueError, match="zero-norm"):
        procrustes_target(torch.zeros(6), source, target)
    with pytest.raises(ValueError, match="floating"):
        procrustes_rotation(source.long(), target.long())
    for temperature in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            blending_weights(source[0], target, temperature)
    with pytest.raises(ValueError, match="d=6"):
        blend_target(torch.ones(5), target)
    with pytest.raises(ValueError, match="non-finite"):
        blending_weights(source[0], bad)
    with pytest.raises(ValueError, match="last size"):
        cosine_distance(torch.ones(3), torch.ones(4))
