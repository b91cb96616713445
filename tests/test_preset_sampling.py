"""Sampling from the shipped robust presets: a quick, small version of the sampling ablation
(issue: sampling, experiment 4), graded by the independently trained standard preset."""

import pytest

from hubmodels import RobustClassifier
from hubmodels.metrics import judge_report

JUDGE = "fmnist-smallcnn-standard"


@pytest.fixture(scope="module")
def judge():
    return RobustClassifier.from_pretrained(JUDGE)


@pytest.mark.parametrize("name", ["fmnist-smallcnn-der", "fmnist-smallcnn-weat"])
def test_pca_start_samples_convince_a_judge_and_noise_start_samples_do_not(name, judge):
    model = RobustClassifier.from_pretrained(name)
    accuracy = {}
    for init in ("pca", "uniform"):
        out = model.sample(None, 5, seed=0, init=init, steps=30)
        accuracy[init] = judge_report(judge, out.images, out.labels)["judge_accuracy"]
    assert accuracy["pca"] > accuracy["uniform"] + 0.4, accuracy
