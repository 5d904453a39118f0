"""Multi-person pose tracking by keypoint similarity: stable integer ids across video frames.

No box detector and no appearance model: a bottom-up model decodes people, and the tracker links
them from frame to frame by OKS (:mod:`litepose.track.oks`, with the keypoint set's sigmas)
against each track's predicted pose.

Per frame (:meth:`Tracker.update`):

1. predict every track's pose: its last seen joints moved by its velocity (the body's mean
   per-frame displacement, exponentially averaged) times the frames since it was last seen;
2. match the detections to all live tracks at once: Hungarian assignment
   (``scipy.optimize.linear_sum_assignment``) maximising OKS, pairs under ``min_similarity``
   refused. Tracks missed in recent frames (occluded or undetected for at most ``max_misses``
   frames) take part with their OKS falloff widened by ``1 + lost_falloff * misses``, since their
   position grows uncertain: a person hidden for a few frames gets its id back by pose and
   position (re-identification). One assignment for all (rather than recent tracks first) keeps
   a track that just lost its person from taking a neighbour's detection while the neighbour's
   own track is one frame behind;
3. a detection matched by nothing starts a tentative track; a tentative track becomes a person
   with the next integer id after ``min_hits`` consecutive hits, and is dropped at its first
   miss; a person's track ends after ``max_misses`` missed frames. Ids are never reused.

With a :class:`~litepose.track.smoothing.OneEuroConfig`, each track's joints are also filtered
(one One-Euro filter per track and joint). Matching always uses the raw detections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..data.keypoints import KeypointSet, get_keypoint_set, keypoint_set_for
from .oks import oks_matrix, pose_areas
from .smoothing import OneEuroConfig, OneEuroFilter, one_euro_step

__all__ = ["Tracker", "TrackerConfig", "Track"]


@dataclass(frozen=True)
class TrackerConfig:
    """Tracking parameters (docs/tracking.md discusses each).

    Attributes:
        min_similarity: least OKS between a detection and a track's predicted pose for a match.
        min_hits: consecutive matched frames before a tentative track gets an id (its birth).
        max_misses: missed frames after which a track ends (and its id is never used again).
        kpt_threshold: joints scoring above this exist; the rest are missing.
        min_keypoints: least joints in common for a detection and a track to be compared.
        min_score: detections scoring under this are ignored (neither matched nor output).
        velocity_momentum: weight of the old velocity in its exponential average, in [0, 1).
        lost_falloff: widening of the OKS falloff per missed frame, for re-identification.
    """

    min_similarity: float = 0.2
    min_hits: int = 2
    max_misses: int = 30
    kpt_threshold: float = 0.1
    min_keypoints: int = 3
    min_score: float = 0.2
    velocity_momentum: float = 0.5
    lost_falloff: float = 0.1

    def __post_init__(self) -> None:
        checks = {
            "min_similarity": 0 <= self.min_similarity <= 1,
            "min_hits": isinstance(self.min_hits, int) and self.min_hits >= 1,
            "max_misses": isinstance(self.max_misses, int) and self.max_misses >= 0,
            "kpt_threshold": 0 <= self.kpt_threshold <= 1,
            "min_keypoints": isinstance(self.min_keypoints, int) and self.min_keypoints >= 1,
            "velocity_momentum": 0 <= self.velocity_momentum < 1,
            "lost_falloff": self.lost_falloff >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise ValueError(f"tracker settings out of range: {values} (see litepose.track.TrackerConfig)")


class Track:
    """One tracked person: its id (``None`` while tentative), last seen joints and velocity."""

    def __init__(self, key: int, xy: np.ndarray, valid: np.ndarray, frame: int, smoother: OneEuroFilter | None):
        self.key = key  # internal, also for tentative tracks
        self.id: int | None = None
        self.xy = xy.copy()  # (K, 2) last seen position of each joint
        self.seen = np.where(valid, frame, -1)  # (K,) frame each joint was last seen (-1: never)
        self.velocity = np.zeros(2)  # body displacement per frame
        self.hits = 1
        self.misses = 0
        self.last = frame
        self.smoother = smoother


def _predict(tracks: list[Track], frame: int, max_age: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, K, 2) predicted joints of ``tracks`` at ``frame`` (last seen joints moved by the velocity
    times the frames since) and (T, K) which are known (seen within ``max_age`` frames)."""
    xy = np.stack([t.xy for t in tracks])
    seen = np.stack([t.seen for t in tracks])
    vel = np.array([t.velocity for t in tracks])
    last = np.array([t.last for t in tracks])
    known = (seen >= 0) & (frame - seen <= max_age + 1)
    return xy + vel[:, None, :] * (frame - last)[:, None, None], known


def _observe(tracks: list[Track], xy: np.ndarray, valid: np.ndarray, frame: int, momentum: float) -> None:
    """Update ``tracks`` with their matched joints ``xy`` (T, K, 2), ``valid`` (T, K) at ``frame``: the
    velocity is the mean displacement of the joints seen in both frames, exponentially averaged."""
    old = np.stack([t.xy for t in tracks])
    seen = np.stack([t.seen for t in tracks])
    last = np.array([t.last for t in tracks])
    vel = np.array([t.velocity for t in tracks])
    hits = np.array([t.hits for t in tracks])
    gap = frame - last
    both = valid & (seen == last[:, None])
    n = both.sum(1)
    step = ((xy - old) * both[..., None]).sum(1) / np.maximum(n * gap, 1)[:, None]
    new = np.where((hits > 1)[:, None], momentum * vel + (1 - momentum) * step, step)
    vel = np.where(((n > 0) & (gap > 0))[:, None], new, vel)
    old = np.where(valid[..., None], xy, old)
    seen = np.where(valid, frame, seen)
    for i, t in enumerate(tracks):
        t.xy, t.seen, t.velocity = old[i], seen[i], vel[i]
        t.last, t.misses = frame, 0
        t.hits += 1


def _people_arrays(people: Sequence[Any] | np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(P, K, 3) keypoints and (P,) scores of Predictor-style people (dicts) or a (P, K, 3) array."""
    if isinstance(people, np.ndarray):
        kp = np.asarray(people, np.float64).reshape(-1, k, people.shape[-1] if people.ndim == 3 else 3)
        return kp[..., :3], np.ones(len(kp))
    kps, scores = [], []
    for i, p in enumerate(people):
        raw = p["keypoints"] if isinstance(p, dict) else p
        a = np.asarray(raw, np.float64)
        if a.ndim == 1 and a.size == 3 * k:
            a = a.reshape(k, 3)
        if a.shape != (k, 3):
            raise ValueError(f"person {i}: keypoints of shape {a.shape}, expected ({k}, 3) for this keypoint set")
        kps.append(a)
        scores.append(float(p.get("score", 1.0)) if isinstance(p, dict) else 1.0)
    return (np.stack(kps) if kps else np.zeros((0, k, 3))), np.asarray(scores, np.float64)


def _resolve(keypoints: KeypointSet | str | int) -> KeypointSet:
    if isinstance(keypoints, KeypointSet):
        return keypoints
    if isinstance(keypoints, int):
        return keypoint_set_for(keypoints)
    return get_keypoint_set(keypoints)


class Tracker:
    """Online pose tracker: call :meth:`update` once per frame with that frame's people.

    Works with any :class:`~litepose.Predictor` output (or any list of dicts with ``keypoints``
    (K, 3) and optionally ``score``; or a (P, K, 3) array)::

        tracker = litepose.Tracker(predictor.keypoints, smooth=True)
        for frame in frames:
            people = tracker.update(predictor(frame))   # each person gains "track_id"

    Args:
        keypoints: the keypoint set (its sigmas set the OKS): a KeypointSet, a built-in name, or a
            number of joints (17: COCO, 14: CrowdPose).
        config: :class:`TrackerConfig` (default: its defaults).
        smooth: One-Euro smoothing of each track's joints: ``True`` (default parameters), a
            :class:`~litepose.track.smoothing.OneEuroConfig`, or ``False`` / ``None`` (off).
        fps: frames per second, the filter's clock when :meth:`update` gets no timestamp.
    """

    def __init__(
        self,
        keypoints: KeypointSet | str | int = "coco",
        config: TrackerConfig | None = None,
        *,
        smooth: bool | OneEuroConfig | None = None,
        fps: float = 30.0,
    ) -> None:
        self.keypoints = _resolve(keypoints)
        self.config = config or TrackerConfig()
        if smooth is True:
            smooth = OneEuroConfig()
        self.smoothing: OneEuroConfig | None = smooth or None
        if not (fps > 0):
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self._sigmas = np.asarray(self.keypoints.sigmas, np.float64)
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new video); ids start again at 1."""
        self.tracks: list[Track] = []
        self.frame = -1
        self._next_key = 0
        self._next_id = 1

    @property
    def born(self) -> int:
        """How many tracks got an id since the last :meth:`reset`."""
        return self._next_id - 1

    @property
    def settings(self) -> dict[str, Any]:
        """The tracker's and the smoother's parameters, as plain values."""
        return {
            "tracker": asdict(self.config),
            "smoothing": asdict(self.smoothing) if self.smoothing else None,
            "fps": self.fps,
        }

    def _match(self, tracks: list[Track], kp: np.ndarray, valid: np.ndarray, free: list[int]) -> list[tuple[int, int]]:
        """Hungarian assignment of detections ``free`` to ``tracks`` by OKS against their predicted poses."""
        from scipy.optimize import linear_sum_assignment

        if not tracks or not free:
            return []
        c = self.config
        pxy, pvalid = _predict(tracks, self.frame, c.max_misses)
        falloff = np.array([1.0 + c.lost_falloff * t.misses for t in tracks])
        sim = oks_matrix(
            pxy, pvalid, kp[free], valid[free], self._sigmas, pose_areas(pxy, pvalid),
            normalise="both", falloff=falloff, min_joints=c.min_keypoints,
        )  # fmt: skip
        rows, cols = linear_sum_assignment(-sim)
        return [(int(r), free[int(j)]) for r, j in zip(rows, cols) if sim[r, j] >= c.min_similarity]

    def update(self, people: Sequence[Any] | np.ndarray, timestamp: float | None = None) -> list[dict[str, Any]]:
        """Track one frame's ``people``. Returns them (as new dicts, in the input order, those under
        ``min_score`` left out), each with ``track_id``: its integer id, or ``None`` while its
        track is tentative; with smoothing their ``keypoints`` are the filtered ones (the scores
        unchanged). ``timestamp``: the frame's time in seconds (default: frame number / fps)."""
        c = self.config
        self.frame += 1
        t = self.frame / self.fps if timestamp is None else float(timestamp)
        kp, scores = _people_arrays(people, self.keypoints.num_joints)
        keep = np.flatnonzero(scores >= c.min_score)
        kp = kp[keep]
        valid = (kp[..., 2] > c.kpt_threshold) & np.isfinite(kp[..., :2]).all(-1)
        xy = np.nan_to_num(kp[..., :2])

        free = list(range(len(kp)))
        owner: dict[int, Track] = {d: self.tracks[r] for r, d in self._match(self.tracks, xy, valid, free)}
        free = [d for d in free if d not in owner]

        if owner:
            ds = list(owner)
            _observe([owner[d] for d in ds], xy[ds], valid[ds], self.frame, c.velocity_momentum)
        for tr in owner.values():
            if tr.id is None and tr.hits >= c.min_hits:
                tr.id, self._next_id = self._next_id, self._next_id + 1
        survivors = []
        for tr in self.tracks:
            if tr.last == self.frame:
                survivors.append(tr)
            elif tr.id is not None and tr.misses < c.max_misses:
                tr.misses += 1
                survivors.append(tr)
        for d in free:
            smoother = OneEuroFilter(self.keypoints.num_joints, self.smoothing) if self.smoothing else None
            tr = Track(self._next_key, xy[d], valid[d], self.frame, smoother)
            self._next_key += 1
            if c.min_hits <= 1:
                tr.id, self._next_id = self._next_id, self._next_id + 1
            owner[d] = tr
            survivors.append(tr)
        self.tracks = survivors

        order = [owner[d] for d in range(len(kp))]
        if self.smoothing is not None and order:
            # every track's filters in one step: (P, K) arrays gathered from the tracks and put back
            state = tuple(np.stack([getattr(tr.smoother, a) for tr in order]) for a in ("x", "dx", "t"))
            filtered = one_euro_step(self.smoothing, state, xy, valid, t, np.sqrt(pose_areas(xy, valid)))
            for i, tr in enumerate(order):
                tr.smoother.x, tr.smoother.dx, tr.smoother.t = state[0][i], state[1][i], state[2][i]
        out = []
        source = people if not isinstance(people, np.ndarray) else [{"keypoints": p} for p in people]
        for d, i in enumerate(keep):
            p = source[int(i)]
            person = dict(p) if isinstance(p, dict) else {"keypoints": np.asarray(p)}
            if self.smoothing is not None:
                new = np.array(kp[d], np.float64)
                new[valid[d], :2] = filtered[d][valid[d]]
                person["keypoints"] = new.astype(np.asarray(person["keypoints"]).dtype, copy=False)
            person["track_id"] = order[d].id
            out.append(person)
        return out
