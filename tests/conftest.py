"""Shared test helpers.

Tests read reference fixtures and real samples in place from ``../shared`` (beside the
repository). Without it they skip with a reason; with ``LITEPOSE_REQUIRE_SHARED=1`` (CI)
a missing file fails the test instead.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("LITEPOSE_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


def _no_python_sigchld_handler() -> None:
    """Keep torch's DataLoader from installing its Python SIGCHLD handler in the test runner.

    The suite runs ~450 tests in one process and starts hundreds of child processes; once that
    handler was set, a child's exit late in the run sometimes crashed the runner inside Python's
    signal handler (SIGSEGV; gdb: ``_dl_runtime_resolve_xsavec <- trip_signal(17)``; not root-caused,
    not seen in a litepose process of its own). The DataLoader still finds a dead worker by its
    liveness checks."""
    try:
        from torch.utils.data._utils import signal_handling
    except ImportError:
        return
    signal_handling._SIGCHLD_handler_set = True


_no_python_sigchld_handler()


def shared(rel: str) -> Path:
    """Path of a file under ../shared; skip (or fail in CI) when it is absent."""
    p = SHARED / rel
    if not p.exists():
        msg = f"{p} is absent (the ../shared reference data sits beside the repository in CI)"
        if os.environ.get("LITEPOSE_REQUIRE_SHARED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return p


@pytest.fixture(autouse=True)
def _few_threads():
    import torch

    torch.set_num_threads(2)
    yield


@pytest.fixture
def one_thread():
    """One torch thread for the test (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    inference-heavy tests run fastest that way on a busy 2-core machine."""
    import torch

    torch.set_num_threads(1)
    yield


#: The tiny training run: 8 SynthPose images (seed 5), still augmentation, 120 full-batch steps
#: of the SynthPose recipe at 128 px (about 70 s on 2 cores).
TINY_IMAGES, TINY_STEPS = 8, 120


@pytest.fixture(scope="session")
def tiny_trained_run(tmp_path_factory) -> Path:
    """Folder of one short training run of the shipped SynthPose recipe (``best.pth``,
    ``metrics.jsonl``, ``synth/``): made once per session, for the tests that need a network with
    trained weights (the shared fixtures hold only random-weight ones)."""
    import torch

    from litepose.data.synth import make_synthpose
    from litepose.engine.config import SYNTHPOSE_RECIPE, TrainConfig
    from litepose.engine.trainer import Trainer

    root = tmp_path_factory.mktemp("tiny_trained")
    data = root / "synth"
    make_synthpose(data, TINY_IMAGES, seed=5, progress=False)
    still = {"max_rotation": 0, "min_scale": 1.0, "max_scale": 1.0, "max_translate": 0, "flip_prob": 0.0}
    recipe = {k: dict(v) for k, v in SYNTHPOSE_RECIPE.items()}
    recipe["model"]["input_size"] = 128
    recipe["data"] = {"train": str(data), "val": str(data), "workers": 0}
    recipe["augment"] = still
    recipe["train"].update(epochs=TINY_STEPS, batch_size=TINY_IMAGES, seed=0, warmup_steps=10)
    recipe["val"] = {"every": 0, "flip_test": False}
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        Trainer(TrainConfig.from_dict(recipe), root / "run", resume=None).fit()
    finally:
        torch.set_num_threads(threads)
    return root / "run"


def fail_torch_save(monkeypatch, error: BaseException) -> None:
    """Make ``torch.save`` fail as it does on a full disk: part of the archive written, then ``error``
    (litepose serialises into an in-memory buffer first; a file name is handled too)."""
    import torch

    def save(obj, f, *args, **kwargs):
        if hasattr(f, "write"):
            f.write(b"PK partial")
        else:
            with open(f, "wb") as fh:
                fh.write(b"PK partial")
        raise error

    monkeypatch.setattr(torch, "save", save)


@contextlib.contextmanager
def signal_policy():
    """The command line's stop policy (litepose.interrupt), and none of its state left behind."""
    from litepose import interrupt

    restore = interrupt.handle_signals()
    try:
        yield
    finally:
        restore()
        interrupt.handle_signals()()  # clears the stop request for the tests that follow
