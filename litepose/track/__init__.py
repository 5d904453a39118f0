"""Video: pose tracking with stable identities, and temporal smoothing (docs/tracking.md).

- :class:`Tracker` (``litepose.Tracker``): per-frame people in, people with ``track_id`` out;
  :class:`TrackerConfig` its parameters;
- :class:`OneEuroConfig`, :class:`OneEuroFilter`: the One-Euro smoothing of each track's joints;
- :func:`oks_matrix`: the OKS the tracker matches with and the evaluation scores with;
- :mod:`litepose.track.evaluate`: MOTA / IDF1 / identity switches (motmetrics), jitter and lag on
  clips with ground-truth identities (``litepose val --track``).
"""

from .oks import oks_matrix, pose_areas
from .smoothing import OneEuroConfig, OneEuroFilter
from .tracker import Tracker, TrackerConfig

__all__ = ["Tracker", "TrackerConfig", "OneEuroConfig", "OneEuroFilter", "oks_matrix", "pose_areas"]
