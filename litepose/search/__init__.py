"""Architecture search in a trained supernet under the user's budget (``litepose search``).

- :mod:`litepose.search.cost`: budgets with units, MACs / params and measured latency (a per-layer
  table cached on disk);
- :mod:`litepose.search.evolution`: the accuracy predictor (the supernet as the candidate, BatchNorm
  recalibrated, AP on a validation subset) and the original's regularized evolution, resumable.

The search space itself is :class:`litepose.models.space.SearchSpace`, shared with the supernet trainer.
"""
