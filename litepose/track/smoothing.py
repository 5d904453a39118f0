"""One-Euro filtering of keypoints: one filter per track and joint (Casiraghi, Roussel and Vogel,
"1 Euro Filter", CHI 2012).

A low-pass filter whose cutoff rises with speed: still joints are smoothed hard (jitter goes),
moving joints lightly (little lag). Per joint, with ``dt`` the time since the joint's last update:

    alpha(fc) = 1 / (1 + 1 / (2 pi fc dt))
    speed     = low-pass(d_cutoff) of |x - x_prev| / dt / scale
    fc        = min_cutoff + beta * speed
    x_hat     = alpha(fc) x + (1 - alpha(fc)) x_hat_prev

``scale`` is the person's size (the square root of its pose box area), so that ``beta`` means the
same at every image resolution and person size: speed is in person sizes per second.

A joint that is missing (score at or under the threshold, or not finite) leaves its filter as it
was and is passed through unchanged, so a joint that disappears for a few frames does not pull
its filter toward zero (or toward wherever a decoder puts missing joints). A joint that comes back
after more than ``max_gap`` seconds starts afresh from its new position.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["OneEuroConfig", "OneEuroFilter", "one_euro_step"]


@dataclass(frozen=True)
class OneEuroConfig:
    """Parameters of the One-Euro filter (times in seconds, frequencies in Hz).

    Attributes:
        min_cutoff: cutoff at rest; lower = smoother still joints, more lag.
        beta: how fast the cutoff rises with speed (per person size per second); higher = less lag
            on fast motion.
        d_cutoff: cutoff of the speed estimate.
        max_gap: a joint unseen for longer than this restarts from its next position.
    """

    min_cutoff: float = 5.0
    beta: float = 0.5
    d_cutoff: float = 1.0
    max_gap: float = 0.5

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (math.isfinite(value) and value >= 0) or (name in ("min_cutoff", "d_cutoff") and value == 0):
                raise ValueError(f"One-Euro {name} must be a finite number > 0 (beta, max_gap: >= 0), got {value}")


def _alpha(cutoff: np.ndarray | float, dt: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * np.asarray(cutoff) * dt))


def one_euro_step(
    config: OneEuroConfig,
    state: tuple[np.ndarray, np.ndarray, np.ndarray],
    xy: np.ndarray,
    valid: np.ndarray,
    t: float,
    scale: np.ndarray | float,
) -> np.ndarray:
    """One step of many One-Euro filters at once, in place: ``state`` = (x (..., K, 2), speed
    (..., K), last update time (..., K)); ``xy`` (..., K, 2) seen at time ``t``, only ``valid``
    (..., K) joints update; ``scale`` (...) the people's sizes in pixels. Returns the filtered
    positions (the input where a joint is not valid)."""
    x, dx, last = state
    xy = np.asarray(xy, np.float64)
    valid = np.asarray(valid, bool) & np.isfinite(xy).all(-1)
    dt = t - last
    fresh = valid & ~(dt <= config.max_gap)  # never seen, or gone too long: start from here
    upd = valid & ~fresh & (dt > 0)
    d = np.where(upd, dt, 1.0)
    size = np.maximum(np.asarray(scale, np.float64), 1.0)[..., None]
    speed = np.linalg.norm(xy - x, axis=-1) / d / size
    ad = _alpha(config.d_cutoff, d)
    new_dx = ad * speed + (1 - ad) * dx
    a = _alpha(config.min_cutoff + config.beta * new_dx, d)[..., None]
    new_x = a * xy + (1 - a) * x
    dx[...] = np.where(upd, new_dx, np.where(fresh, 0.0, dx))
    x[...] = np.where(upd[..., None], new_x, np.where(fresh[..., None], xy, x))
    last[...] = np.where(upd | fresh, t, last)
    # a joint seen twice at the same time keeps its filtered value; a missing one passes through
    return np.where(valid[..., None], x, xy)


class OneEuroFilter:
    """The One-Euro filters of one pose: (K, 2) joints, each filtered on its own."""

    def __init__(self, num_joints: int, config: OneEuroConfig | None = None) -> None:
        self.config = config or OneEuroConfig()
        self.x = np.zeros((num_joints, 2))
        self.dx = np.zeros(num_joints)  # the filtered speed, person sizes per second
        self.t = np.full(num_joints, -np.inf)  # when each joint was last updated (-inf: never)

    def __call__(self, xy: np.ndarray, valid: np.ndarray, t: float, scale: float) -> np.ndarray:
        """Filter joints ``xy`` (K, 2) seen at time ``t`` (seconds); only ``valid`` (K,) joints update.
        ``scale``: the person's size in pixels. Returns the (K, 2) filtered positions (the input for
        joints that are not valid)."""
        return one_euro_step(self.config, (self.x, self.dx, self.t), xy, valid, t, scale)
