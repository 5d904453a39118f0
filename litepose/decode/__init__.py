"""Decoding network outputs into people.

- :func:`group`: associative-embedding grouping of heatmaps + tags (fast, defect-free by
  default, ``legacy=True`` for the original's exact behaviour).
- :mod:`litepose.decode.testtime`: the test-time chain between the network and it (flip test,
  multi-scale aggregation, upsampling) and the back-projection to image pixels. The network's
  input (resize, pad, normalise) is :mod:`litepose.preprocess`'s.
"""

from .grouping import find_peaks, group

__all__ = ["group", "find_peaks"]
