"""Decoding network outputs into people.

- :func:`group`: associative-embedding grouping of heatmaps + tags (fast, defect-free by
  default, ``legacy=True`` for the original's exact behaviour).
- :mod:`litepose.decode.testtime`: the test-time chain around it (aspect-keeping resize, flip
  test, multi-scale aggregation, upsampling, back-projection to image pixels).
"""

from .grouping import find_peaks, group

__all__ = ["group", "find_peaks"]
