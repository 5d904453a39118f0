"""Object keypoint similarity (OKS) between two sets of poses: the one similarity of tracking.

The tracker matches detections to tracks with it, and the tracking evaluation feeds ``1 - OKS``
to motmetrics as the distance between a ground-truth person and a hypothesis. COCO's definition,
per joint ``j``: ``exp(-d_j^2 / (2 s^2 k_j^2))`` with ``k_j = 2 sigma_j`` (the keypoint set's
sigmas), ``s^2`` the person's area, ``d_j`` the distance between the two joints; the OKS is the
mean over the joints that count.
"""

from __future__ import annotations

import numpy as np

__all__ = ["oks_matrix", "pose_areas"]


def pose_areas(keypoints: np.ndarray, valid: np.ndarray, minimum: float = 1.0) -> np.ndarray:
    """(N,) area of the box around each pose's valid joints (N, K, 2+), at least ``minimum``."""
    xy = np.asarray(keypoints, np.float64)[..., :2]
    v = np.asarray(valid, bool)[..., None]
    if xy.shape[0] == 0:
        return np.zeros(0)
    wh = np.where(v, xy, -np.inf).max(1) - np.where(v, xy, np.inf).min(1)
    wh[~v[..., 0].any(1)] = 0.0
    return np.maximum(wh[:, 0] * wh[:, 1], minimum)


def oks_matrix(
    ref: np.ndarray,
    ref_valid: np.ndarray,
    cand: np.ndarray,
    cand_valid: np.ndarray,
    sigmas: np.ndarray | tuple[float, ...],
    areas: np.ndarray,
    *,
    normalise: str = "ref",
    falloff: np.ndarray | float = 1.0,
    min_joints: int = 1,
) -> np.ndarray:
    """(N, M) OKS between reference poses ``ref`` (N, K, 2+) and candidates ``cand`` (M, K, 2+).

    Args:
        ref_valid, cand_valid: (N, K) / (M, K) which joints exist.
        sigmas: (K,) the keypoint set's OKS sigmas.
        areas: (N,) the reference people's areas (``s^2``).
        normalise: ``"ref"``: the mean over the reference's valid joints, a candidate joint that is
            missing counting 0 (COCO: the reference is the ground truth); ``"both"``: the mean over
            the joints valid in both (tracking, where either side may miss joints).
        falloff: a factor on ``k`` per reference, (N,) or a scalar (the tracker widens it for
            people it has not seen for some frames).
        min_joints: pairs with fewer joints to compare get 0.
    """
    a = np.asarray(ref, np.float64)[..., :2]
    b = np.asarray(cand, np.float64)[..., :2]
    va = np.asarray(ref_valid, bool)
    vb = np.asarray(cand_valid, bool)
    n, m = a.shape[0], b.shape[0]
    if n == 0 or m == 0:
        return np.zeros((n, m))
    k2 = (2.0 * np.asarray(sigmas, np.float64)) ** 2  # (K,)
    f = np.broadcast_to(np.asarray(falloff, np.float64), (n,))
    scale = np.asarray(areas, np.float64)[:, None] * (f[:, None] ** 2) * k2[None, :]  # (N, K)
    d2 = ((a[:, None] - b[None, :]) ** 2).sum(-1)  # (N, M, K)
    both = va[:, None, :] & vb[None, :, :]
    e = np.where(both, np.exp(-d2 / (2.0 * scale[:, None, :] + np.spacing(1))), 0.0)
    if normalise == "ref":
        count = np.broadcast_to(va.sum(1)[:, None], (n, m)).astype(np.float64)
        joints = both.sum(-1)
    elif normalise == "both":
        count = both.sum(-1).astype(np.float64)
        joints = count
    else:
        raise ValueError(f"normalise must be 'ref' or 'both', got {normalise!r}")
    out = np.divide(e.sum(-1), count, out=np.zeros((n, m)), where=count > 0)
    out[joints < max(min_joints, 1)] = 0.0
    return out
