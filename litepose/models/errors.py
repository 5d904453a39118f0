"""The models package's error types, in one leaf module (no torch, no other import): the
checkpoint reader and the weights registry both raise them without importing each other."""

from __future__ import annotations

__all__ = ["CheckpointError", "WeightsError"]


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or does not fit the model."""


class WeightsError(CheckpointError):
    """Named weights cannot be resolved, downloaded or verified (the message says which, and where)."""
