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
3. a person's track missed in this frame for at most ``coast`` frames in a row is still output, at
   its predicted pose with ``"predicted": True`` (a detector misses a person now and then; filling
   such one- or two-frame gaps keeps the skeleton and its id on screen), unless a detection took it;
4. a detection matched by nothing starts a tentative track; a tentative track becomes a person
   with the next integer id after ``min_hits`` consecutive hits, and is dropped at its first
   miss; a person's track ends after ``max_misses`` missed frames. Ids are never reused.

With a :class:`~litepose.track.smoothing.OneEuroConfig`, each track's joints are also filtered
(one One-Euro filter per track and joint). Matching always uses the raw detections.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..data.keypoints import KeypointSet, get_keypoint_set, keypoint_set_for
from .oks import oks_matrix, pose_areas
from .smoothing import OneEuroConfig, one_euro_step

__all__ = ["Tracker", "TrackerConfig"]


@dataclass(frozen=True)
class TrackerConfig:
    """Tracking parameters (docs/tracking.md discusses each).

    Attributes:
        min_similarity: least OKS between a detection and a track's predicted pose for a match, in
            (0, 1]: OKS is above 0 at any distance, so 0 would match poses however far apart.
        min_hits: consecutive matched frames before a tentative track gets an id (its birth).
        max_misses: missed frames after which a track ends (and its id is never used again).
        kpt_threshold: joints scoring above this exist; the rest are missing.
        min_keypoints: least joints in common for a detection and a track to be compared.
        min_score: detections scoring under this are ignored (neither matched nor output).
        velocity_momentum: weight of the old velocity in its exponential average, in [0, 1).
        lost_falloff: widening of the OKS falloff per missed frame, for re-identification.
        coast: a person's track missed for at most this many frames in a row is output at its
            predicted pose (``"predicted": True``); 0 outputs detections only.
    """

    min_similarity: float = 0.2
    min_hits: int = 2
    max_misses: int = 30
    kpt_threshold: float = 0.1
    min_keypoints: int = 3
    min_score: float = 0.3  # the CLI's --min-score (litepose.commands._options.MIN_SCORE)
    velocity_momentum: float = 0.5
    lost_falloff: float = 0.1
    coast: int = 1

    def __post_init__(self) -> None:
        def real(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        def count(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        # field -> (valid, the rule as the message states it)
        checks = {
            # OKS is exp(-d^2 / ...) > 0 for every finite distance: at 0, poses 500 px apart would match
            "min_similarity": (real(self.min_similarity) and 0 < self.min_similarity <= 1,
                               "in (0, 1]; 0 would match any two poses, however far apart"),
            "min_hits": (count(self.min_hits) and self.min_hits >= 1, "an integer >= 1"),
            "max_misses": (count(self.max_misses) and self.max_misses >= 0, "an integer >= 0"),
            "kpt_threshold": (real(self.kpt_threshold) and 0 <= self.kpt_threshold <= 1, "in [0, 1]"),
            "min_keypoints": (count(self.min_keypoints) and self.min_keypoints >= 1, "an integer >= 1"),
            "velocity_momentum": (real(self.velocity_momentum) and 0 <= self.velocity_momentum < 1, "in [0, 1)"),
            "lost_falloff": (real(self.lost_falloff) and self.lost_falloff >= 0, ">= 0"),
            "coast": (count(self.coast) and 0 <= self.coast <= self.max_misses, "an integer in [0, max_misses]"),
        }  # fmt: skip
        bad = [f"{k}={getattr(self, k)!r} (must be {rule})" for k, (ok, rule) in checks.items() if not ok]
        if bad:
            raise ValueError(f"tracker settings out of range: {'; '.join(bad)}")


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

    #: the per-track arrays (one row per live track), see :meth:`reset`
    _STATE = ("_id", "_xy", "_seen", "_vel", "_last", "_hits", "_misses", "_score", "_kscore", "_fx", "_fdx", "_ft")

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
        k = self.keypoints.num_joints
        self.frame = -1
        self._next_id = 1
        # one row per live track (tentative ones included)
        self._id = np.zeros(0, np.int64)  # its id, -1 while tentative
        self._xy = np.zeros((0, k, 2))  # last seen position of each joint
        self._seen = np.zeros((0, k), np.int64)  # frame each joint was last seen (-1: never)
        self._vel = np.zeros((0, 2))  # body displacement per frame
        self._last = np.zeros(0, np.int64)  # frame of the last match
        self._hits = np.zeros(0, np.int64)
        self._misses = np.zeros(0, np.int64)
        self._score = np.zeros(0)  # person score at the last match
        self._kscore = np.zeros((0, k))  # joint scores at the last match
        # the One-Euro state of each track's joints: filtered position, filtered speed, last update time
        self._fx = np.zeros((0, k, 2))
        self._fdx = np.zeros((0, k))
        self._ft = np.zeros((0, k))

    @property
    def track_ids(self) -> list[int | None]:
        """The ids of the live tracks (``None``: tentative), those missed in recent frames included."""
        return [int(i) if i >= 0 else None for i in self._id]

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

    def _match(self, xy: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(track rows, detections) of the Hungarian assignment maximising OKS between detections and
        the tracks' predicted poses, pairs under ``min_similarity`` refused."""
        from scipy.optimize import linear_sum_assignment

        c = self.config
        if not len(self._id) or not len(xy):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pred = self._xy + self._vel[:, None, :] * (self.frame - self._last)[:, None, None]
        known = (self._seen >= 0) & (self.frame - self._seen <= c.max_misses + 1)
        sim = oks_matrix(
            pred, known, xy, valid, self._sigmas, pose_areas(pred, known),
            normalise="both", falloff=1.0 + c.lost_falloff * self._misses, min_joints=c.min_keypoints,
        )  # fmt: skip
        rows, cols = linear_sum_assignment(-sim)
        ok = sim[rows, cols] >= c.min_similarity
        return rows[ok], cols[ok]

    def _observe(self, rows: np.ndarray, xy: np.ndarray, valid: np.ndarray, kp: np.ndarray, score: np.ndarray) -> None:
        """Matched tracks ``rows`` saw joints ``xy`` (valid ``valid``): the velocity is the mean
        displacement of the joints seen in both frames, exponentially averaged."""
        m = self.config.velocity_momentum
        old, last = self._xy[rows], self._last[rows]
        gap = self.frame - last
        both = valid & (self._seen[rows] == last[:, None])
        n = both.sum(1)
        step = ((xy - old) * both[..., None]).sum(1) / np.maximum(n * gap, 1)[:, None]
        vel = self._vel[rows]
        new = np.where((self._hits[rows] > 1)[:, None], m * vel + (1 - m) * step, step)
        self._vel[rows] = np.where(((n > 0) & (gap > 0))[:, None], new, vel)
        self._xy[rows] = np.where(valid[..., None], xy, old)
        self._seen[rows] = np.where(valid, self.frame, self._seen[rows])
        self._last[rows] = self.frame
        self._misses[rows] = 0
        self._hits[rows] += 1
        self._score[rows] = score
        self._kscore[rows] = np.where(valid, kp[..., 2], 0.0)

    def _births(self, rows: np.ndarray) -> None:
        """Give the next ids to the tentative tracks among ``rows`` that have enough hits."""
        new = rows[(self._id[rows] < 0) & (self._hits[rows] >= self.config.min_hits)]
        self._id[new] = np.arange(self._next_id, self._next_id + len(new))
        self._next_id += len(new)

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
        kp, scores = kp[keep], scores[keep]
        valid = (kp[..., 2] > c.kpt_threshold) & np.isfinite(kp[..., :2]).all(-1)
        xy = np.nan_to_num(kp[..., :2])
        n_det = len(kp)

        rows, cols = self._match(xy, valid)
        self._observe(rows, xy[cols], valid[cols], kp[cols], scores[cols])
        self._births(rows)
        row_of = np.full(n_det, -1, np.int64)
        row_of[cols] = rows

        # unmatched tracks: tentative ones end, people's tracks miss a frame (and end after max_misses)
        missed = np.ones(len(self._id), bool)
        missed[rows] = False
        self._misses[missed] += 1
        alive = ~missed | ((self._id >= 0) & (self._misses <= c.max_misses))
        if not alive.all():
            index = np.cumsum(alive) - 1
            for name in self._STATE:
                setattr(self, name, getattr(self, name)[alive])
            row_of[cols] = index[rows]

        # unmatched detections start tentative tracks
        free = np.flatnonzero(row_of < 0)
        if len(free):
            k, f = self.keypoints.num_joints, len(free)
            start = len(self._id)
            self._id = np.concatenate([self._id, np.full(f, -1, np.int64)])
            self._xy = np.concatenate([self._xy, xy[free]])
            self._seen = np.concatenate([self._seen, np.where(valid[free], self.frame, -1)])
            self._vel = np.concatenate([self._vel, np.zeros((f, 2))])
            self._last = np.concatenate([self._last, np.full(f, self.frame, np.int64)])
            self._hits = np.concatenate([self._hits, np.ones(f, np.int64)])
            self._misses = np.concatenate([self._misses, np.zeros(f, np.int64)])
            self._score = np.concatenate([self._score, scores[free]])
            self._kscore = np.concatenate([self._kscore, np.where(valid[free], kp[free][..., 2], 0.0)])
            self._fx = np.concatenate([self._fx, np.zeros((f, k, 2))])
            self._fdx = np.concatenate([self._fdx, np.zeros((f, k))])
            self._ft = np.concatenate([self._ft, np.full((f, k), -np.inf)])
            row_of[free] = np.arange(start, start + f)
            self._births(row_of[free])

        if self.smoothing is not None and n_det:
            # every track's filters in one step: gathered by row, filtered, put back
            state = (self._fx[row_of], self._fdx[row_of], self._ft[row_of])
            filtered = one_euro_step(self.smoothing, state, xy, valid, t, np.sqrt(pose_areas(xy, valid)))
            self._fx[row_of], self._fdx[row_of], self._ft[row_of] = state
        ids = self._id[row_of].tolist()
        if self.smoothing is not None and n_det:
            smoothed = kp.copy()
            smoothed[..., :2] = np.where(valid[..., None], filtered, kp[..., :2])
        out = []
        source = people if not isinstance(people, np.ndarray) else [{"keypoints": p} for p in people]
        for d, i in enumerate(keep.tolist()):
            p = source[i]
            person = dict(p) if isinstance(p, dict) else {"keypoints": np.asarray(p)}
            if self.smoothing is not None:
                person["keypoints"] = smoothed[d].astype(np.asarray(person["keypoints"]).dtype, copy=False)
            person["track_id"] = ids[d] if ids[d] >= 0 else None
            out.append(person)
        return out + self._coasting()

    def _coasting(self) -> list[dict[str, Any]]:
        """People of the tracks missed in this frame for at most ``coast`` frames: their predicted
        pose (the joints seen at the last match, moved by the velocity), marked ``predicted``."""
        rows = np.flatnonzero((self._id >= 0) & (self._misses >= 1) & (self._misses <= self.config.coast))
        out = []
        for r in rows:
            seen = self._seen[r] == self._last[r]
            if not seen.any():
                continue
            xy = self._xy[r] + self._vel[r] * (self.frame - self._last[r])
            kp = np.zeros((self.keypoints.num_joints, 3), np.float32)
            kp[seen, :2] = xy[seen]
            kp[seen, 2] = self._kscore[r, seen]
            sel = xy[seen]
            box = [float(sel[:, 0].min()), float(sel[:, 1].min()), float(sel[:, 0].max()), float(sel[:, 1].max())]
            out.append({"keypoints": kp, "score": float(self._score[r]), "box": box,
                        "track_id": int(self._id[r]), "predicted": True})  # fmt: skip
        return out
