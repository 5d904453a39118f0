"""Training-state checkpoints: weights_only loading, RNG restore, exact resume, atomic writes."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from conftest import fail_torch_save
from torch import nn

from litepose.engine.checkpoint import (
    capture_rng_state,
    gather_rng_states,
    load_training_state,
    restore_rng_state,
    restore_training_state,
    save_training_state,
)
from litepose.models.checkpoint import CheckpointError


def _draws() -> list:
    """Consume every global generator, including the cached-Gaussian paths."""
    return [
        random.random(),
        random.gauss(0, 1),  # leaves gauss_next set
        random.randint(0, 10**9),
        np.random.rand(3).tolist(),
        np.random.normal(size=3).tolist(),  # odd count: leaves a cached gaussian
        np.random.randint(0, 10**9),
        torch.rand(4).tolist(),
        torch.randn(3).tolist(),
        torch.randperm(10).tolist(),
    ]


def test_rng_restore_reproduces_draws(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.gauss(0, 1)
    np.random.normal()
    state = capture_rng_state()
    # round trip through a file loaded with weights_only=True
    torch.save(state, tmp_path / "rng.pt")
    loaded = torch.load(tmp_path / "rng.pt", weights_only=True)
    first = _draws()
    second_run = _draws()
    assert first != second_run  # the generators really moved on
    restore_rng_state(loaded)
    assert _draws() == first
    restore_rng_state(state)
    assert _draws() == first


def test_rng_state_is_plain_tensors_and_lists():
    state = capture_rng_state()

    def check(obj):
        if isinstance(obj, dict):
            for v in obj.values():
                check(v)
        elif isinstance(obj, list):
            for v in obj:
                check(v)
        else:
            assert obj is None or isinstance(obj, (torch.Tensor, int, float, str)), type(obj)

    check(state)
    assert gather_rng_states()[0].keys() == state.keys()  # single process: one entry
    with pytest.raises(ValueError, match="capture_rng_state"):
        restore_rng_state({"torch": torch.get_rng_state()})


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))

    def forward(self, x):
        return self.body(x)


def _setup():
    model = _Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 5], gamma=0.1)
    return model, opt, sched


def _epoch(model, opt, sched, steps=4):
    """One epoch whose data and dropout come from all three global generators."""
    model.train()
    for _ in range(steps):
        x = torch.randn(8, 4) + float(np.random.rand()) + random.random()
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    sched.step()


def test_interrupted_run_resumes_exactly(tmp_path):
    epochs, stop = 6, 3
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    model, opt, sched = _setup()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(epochs):
        _epoch(model, opt, sched)
    reference = model.state_dict()

    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    model, opt, sched = _setup()
    model.load_state_dict(init)
    for e in range(stop):
        _epoch(model, opt, sched)
        save_training_state(tmp_path / "last.pth", model, opt, sched, epoch=e + 1, step=(e + 1) * 4)
    _draws()  # the "killed" process goes on drawing; the resumed one must not see it

    # fresh process: new objects, different seeds
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    model, opt, sched = _setup()
    info = restore_training_state(tmp_path / "last.pth", model, opt, sched)
    assert info == {"epoch": stop, "step": stop * 4, "extra": {}}
    for _ in range(info["epoch"], epochs):
        _epoch(model, opt, sched)
    for k, v in reference.items():
        assert torch.equal(model.state_dict()[k], v), k
    assert sched.get_last_lr() == pytest.approx([1e-4])


def test_weights_only_loading_and_contents(tmp_path):
    model, opt, sched = _setup()
    _epoch(model, opt, sched)
    path = save_training_state(
        tmp_path / "sub" / "state.pth",
        nn.DataParallel(model),  # wrappers are unwrapped: no "module." prefixes
        opt,
        sched,
        epoch=1,
        step=4,
        extra={"best_ap": 0.5, "config": {"lr": 0.01}},
    )
    raw = torch.load(path, weights_only=True)
    assert set(raw["model"]) == set(model.state_dict())
    assert raw["optimizer"]["state"] and raw["scheduler"]["last_epoch"] == 1
    assert raw["epoch"] == 1 and raw["step"] == 4 and raw["extra"]["best_ap"] == 0.5
    assert "litepose" not in raw  # not a LitePose network: no model self-description
    assert load_training_state(path)["format"] == raw["format"]
    assert [p.name for p in path.parent.iterdir()] == ["state.pth"]  # no temp file left


def test_litepose_training_state_is_a_model_checkpoint(tmp_path):
    import litepose

    model = litepose.create_model("litepose-xs", num_joints=14)
    opt = torch.optim.Adam(model.parameters(), lr=4e-3)
    path = save_training_state(tmp_path / "last.pth", model, opt, epoch=0, step=0)
    loaded, info = litepose.load_checkpoint(path)
    assert info["num_joints"] == 14 and info["arch"] == "litepose-xs" and info["source"] == "litepose"
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    model, opt, sched = _setup()
    path = save_training_state(tmp_path / "last.pth", model, opt, sched, epoch=1, step=1)
    before = path.read_bytes()

    fail_torch_save(monkeypatch, OSError("disk full"))
    with pytest.raises(OSError, match="disk full"):
        save_training_state(path, model, opt, sched, epoch=2, step=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_bad_files_are_named(tmp_path):
    plain = tmp_path / "weights.pth"
    torch.save(_Net().state_dict(), plain)
    with pytest.raises(CheckpointError, match="weights.pth.*not a litepose training state"):
        load_training_state(plain)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_training_state(tmp_path / "missing.pth")
    model, opt, _ = _setup()
    path = save_training_state(tmp_path / "s.pth", model, epoch=0, step=0)
    with pytest.raises(CheckpointError, match="no optimizer state"):
        restore_training_state(path, model, opt)
    with pytest.raises(CheckpointError, match="do not fit"):
        restore_training_state(path, nn.Linear(2, 2))


def _gather_worker(rank: int, world: int, folder: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    try:
        torch.manual_seed(100 + rank)
        np.random.seed(100 + rank)
        random.seed(100 + rank)
        states = gather_rng_states()
        torch.save(_draws(), f"{folder}/draws_{rank}.pt")
        if rank == 0:
            model, opt, sched = _setup()
            save_training_state(f"{folder}/state.pth", model, opt, sched, epoch=1, step=1, rng=states)
    finally:
        dist.destroy_process_group()


def test_per_rank_rng_states_under_ddp(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_gather_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    state = load_training_state(tmp_path / "state.pth")
    assert isinstance(state["rng"], list) and len(state["rng"]) == 2
    for rank in range(2):
        model, opt, sched = _setup()
        restore_training_state(state, model, opt, sched, rank=rank)
        assert _draws() == torch.load(tmp_path / f"draws_{rank}.pt", weights_only=True)


def test_too_old_torch_is_named_not_called_corrupt(tmp_path, monkeypatch):
    """Without torch.serialization.safe_globals (torch < 2.5), or with a torch that does not take
    (function, name) pairs (2.5), every checkpoint once read as "truncated, corrupt or another file
    type": the error says which torch is needed instead."""
    model, opt, sched = _setup()
    path = save_training_state(tmp_path / "s.pth", model, opt, sched, epoch=0, step=0)
    assert load_training_state(path)["epoch"] == 0
    with monkeypatch.context() as m:
        m.delattr(torch.serialization, "safe_globals")
        with pytest.raises(CheckpointError, match=r"needs torch >= 2\.6 .*this is torch"):
            load_training_state(path)
    monkeypatch.setattr(torch, "__version__", "2.5.1+cpu")
    with pytest.raises(CheckpointError, match=r"needs torch >= 2\.6 .*this is torch 2\.5\.1\+cpu: upgrade it"):
        load_training_state(path)
