"""Training engine: the config (:mod:`.config`), the trainer (:mod:`.trainer`) that orchestrates its
parts (:mod:`.rundata` the data and loader, :mod:`.build` model / optimiser / schedule / AMP / loss /
teacher, :mod:`.step` one optimiser step, :mod:`.validation`, :mod:`.checkpointing` resume and
``last.pth`` / ``best.pth``, :mod:`.runlog` the run folder's log and metrics), the training-state
file format (:mod:`.checkpoint`), the losses, the learning-rate schedules, DDP helpers and the
supernet-to-subnet transfer.

Submodules are imported on use (``from litepose.engine.trainer import Trainer``) so that
importing this package stays cheap.
"""
