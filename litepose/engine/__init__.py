"""Training engine: losses, checkpoints of the training state, and (later) the trainer.

Submodules are imported on use (``from litepose.engine.loss import LitePoseLoss``) so that
importing this package stays cheap.
"""
