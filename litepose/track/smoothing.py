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

__all__ = ["OneEuroConfig", "OneEuroFilter"]


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
        c = self.config
        xy = np.asarray(xy, np.float64)
        valid = np.asarray(valid, bool) & np.isfinite(xy).all(1)
        out = xy.copy()
        dt = t - self.t
        fresh = valid & ~(dt <= c.max_gap)  # never seen, or gone too long: start from here
        upd = valid & ~fresh & (dt > 0)
        if upd.any():
            d = dt[upd]
            speed = np.linalg.norm(xy[upd] - self.x[upd], axis=1) / d / max(scale, 1.0)
            ad = _alpha(c.d_cutoff, d)
            self.dx[upd] = ad * speed + (1 - ad) * self.dx[upd]
            a = _alpha(c.min_cutoff + c.beta * self.dx[upd], d)[:, None]
            self.x[upd] = a * xy[upd] + (1 - a) * self.x[upd]
            self.t[upd] = t
        self.x[fresh] = xy[fresh]
        self.dx[fresh] = 0.0
        self.t[fresh] = t
        keep = valid & (dt <= 0) & ~fresh  # the same timestamp twice: the filtered value stands
        out[upd | fresh | keep] = self.x[upd | fresh | keep]
        return out
