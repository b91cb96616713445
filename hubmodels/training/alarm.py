"""The catastrophic/robust overfitting alarm, read from the per-epoch history.

DER's observation (docs/methods.md 3.1, 3.2): the delta energy dE(x) = E(x) - E(x*) on training data
stays near a plateau during healthy adversarial training and diverges when catastrophic
overfitting (CO, single-step AT) or robust overfitting (RO, long multi-step AT) sets in. The
robust validation accuracy tells the same story from the outside: under CO it collapses within
an epoch. The alarm fires on either sign; it does not stop training, it makes the event visible
(log line, JSONL field, marker on the plot) so a user can pick the checkpoint before it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class AlarmRule:
    """Thresholds; the defaults were chosen so healthy Fashion-MNIST runs stay quiet."""

    collapse_fraction: float = 0.5  # PGD val acc below this fraction of its best so far
    min_best_acc: float = 0.1  # ...once the best is above chance-like levels
    divergence_sigmas: float = 5.0  # dE(x) this many robust deviations from its history
    min_divergence: float = 0.25  # ...and at least this many nats away
    warmup_epochs: int = 3  # history needed before dE divergence can be judged


def check_alarm(history: list[dict], rule: AlarmRule | None = None) -> str | None:
    """Return a human-readable alarm for the newest epoch of ``history``, or None.

    Each history entry needs ``val_pgd_acc`` and ``delta_energy``; the last entry is judged
    against the ones before it.
    """
    rule = rule or AlarmRule()
    if not history:
        return None
    now, past = history[-1], history[:-1]
    reasons = []
    best = max((h["val_pgd_acc"] for h in past), default=0.0)
    if best >= rule.min_best_acc and now["val_pgd_acc"] < rule.collapse_fraction * best:
        reasons.append(
            f"PGD validation accuracy collapsed to {now['val_pgd_acc']:.3f} "
            f"(best so far {best:.3f}): catastrophic overfitting"
        )
    if len(past) >= rule.warmup_epochs:
        previous = [h["delta_energy"] for h in past]
        centre = statistics.median(previous)
        spread = statistics.median(abs(d - centre) for d in previous)
        gap = now["delta_energy"] - centre
        if abs(gap) > max(rule.min_divergence, rule.divergence_sigmas * spread):
            kind = "drops (robust overfitting)" if gap < 0 else "rises"
            reasons.append(
                f"delta energy dE(x) = {now['delta_energy']:+.3f} diverged from its plateau "
                f"{centre:+.3f}: it {kind}"
            )
    return "; ".join(reasons) or None
