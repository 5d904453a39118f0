"""Running a predictor over images, folders, globs, videos and webcams: sources, the result of
each frame, and the sinks that write it (overlays, videos, JSON lines, results.json).

``litepose.stream(source, predictor, ...)`` (:mod:`litepose.pipeline.runner`) is what
``litepose predict`` runs; :class:`FrameResult` is what it yields.
"""

from .result import FrameResult, person_json
from .runner import Stream, plan_outputs, stream
from .sinks import CocoResults, Display, ImageIds, OutputPlan
from .sources import Sources, resolve_source

__all__ = [
    "CocoResults", "Display", "FrameResult", "ImageIds", "OutputPlan", "Sources", "Stream", "person_json",
    "plan_outputs", "resolve_source", "stream",
]  # fmt: skip
