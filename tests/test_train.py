"""Training: exact resume, DDP equivalence, supernet steps, fine-tuning init, configs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_STEPS, fail_torch_save, shared, signal_policy

from litepose import interrupt
from litepose.engine.config import TrainConfig
from litepose.engine.step import TrainStep
from litepose.engine.trainer import Trainer, load_backbone
from litepose.models import CheckpointError, create_model, load_checkpoint

REPO = Path(__file__).resolve().parents[1]


def _minicoco() -> dict:
    root = shared("data/coco_minicoco_sample")
    return {
        "train": str(root / "annotations/person_keypoints_train2017.json"),
        "train_images": str(root / "images/train2017"),
        "workers": 0,
    }


def _cfg(tmp_path: Path, **sections) -> Path:
    base = {
        "model": {"arch": "litepose-xs", "input_size": 64},
        "data": _minicoco(),
        "train": {"epochs": 2, "batch_size": 4, "max_steps_per_epoch": 2, "seed": 3},
        "val": {"every": 0},
    }
    for k, v in sections.items():
        base.setdefault(k, {}).update(v)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def _assert_same(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if a[k].is_floating_point():
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)
        else:
            assert torch.equal(a[k], b[k]), k


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path) -> None:
    cfg_path = _cfg(tmp_path)
    straight = Trainer(TrainConfig.load(cfg_path), tmp_path / "a", resume=None).fit()
    assert straight["epochs"] == 2 and straight["steps"] == 4
    # "Killed" after epoch 1, then resumed from the output folder (auto).
    Trainer(TrainConfig.load(cfg_path, ["train.epochs=1"]), tmp_path / "b", resume=None).fit()
    torch.manual_seed(999)  # the resumed process starts from another global RNG state
    resumed = Trainer(TrainConfig.load(cfg_path), tmp_path / "b", resume="auto").fit()
    assert resumed["steps"] == 4
    _assert_same(_weights(tmp_path / "a/last.pth"), _weights(tmp_path / "b/last.pth"))
    rows = (tmp_path / "b/metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2  # one line per epoch, none duplicated
    assert (tmp_path / "b/curves.png").stat().st_size > 0
    model, info = load_checkpoint(tmp_path / "b/best.pth")
    assert info["source"] == "litepose" and info["input_size"] == 64
    # Stopped by SIGTERM in the middle of epoch 2 (after its first step): last.pth holds that point,
    # and the resumed run, which skips the batch already trained on, ends with the same weights.
    with signal_policy(), _sigterm_after_steps(3):
        with pytest.raises(interrupt.Stopped) as stopped:
            Trainer(TrainConfig.load(cfg_path), tmp_path / "c", resume=None).fit()
    assert stopped.value.signum == signal.SIGTERM
    state = torch.load(tmp_path / "c/last.pth", weights_only=True)
    assert (state["epoch"], state["step"], state["extra"]["partial_epoch"]["batches"]) == (1, 3, 1)
    torch.manual_seed(999)
    assert Trainer(TrainConfig.load(cfg_path), tmp_path / "c").fit()["steps"] == 4
    _assert_same(_weights(tmp_path / "a/last.pth"), _weights(tmp_path / "c/last.pth"))
    rows_c = [json.loads(x) for x in (tmp_path / "c/metrics.jsonl").read_text().splitlines()]
    rows_a = [json.loads(x) for x in (tmp_path / "a/metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in rows_c] == pytest.approx([r["loss"] for r in rows_a], rel=1e-6)


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_sigterm_stops_training_cleanly(tmp_path) -> None:
    """`kill` (SIGTERM) of `litepose train`: the step in progress ends, last.pth is saved where the
    run stopped, the run says what it kept, and the exit code is 143, with the summary under --json."""
    cfg_path = _cfg(tmp_path, train={"epochs": 1000, "batch_size": 2, "max_steps_per_epoch": 1})
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "litepose", "train", "--config", str(cfg_path), "--output", str(out), "--json"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    seen = []
    try:
        for line in proc.stderr:  # wait until the run is in its loop: the first epoch's line
            seen.append(line)
            if "epoch 1/1000  loss" in line:
                break
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    stderr = "".join(seen) + stderr
    assert proc.returncode == 143, stderr[-3000:]
    assert "Traceback" not in stderr and "litepose train: stopped by SIGTERM" in stderr
    assert "\nfast kernels: on (compiled depthwise conv, BatchNorm)\n" in stderr or "\nfast kernels: off (" in stderr
    assert "SIGTERM: stopped in epoch" in stderr and f"kept {out / 'last.pth'} (resumable" in stderr
    summary = json.loads(stdout)
    assert summary["stopped_by"] == "SIGTERM" and summary["stopped"] == "litepose train: stopped by SIGTERM"
    state = torch.load(out / "last.pth", weights_only=True)
    assert state["epoch"] == summary["epochs"] >= 1 and state["step"] == summary["steps"]
    assert not (out / ".litepose.lock").exists()


@contextlib.contextmanager
def _sigterm_after_steps(n: int):
    """SIGTERM, as the policy handles it, right after the n-th training step (never a real signal to the
    test runner: delivered to a process with many libraries' threads it crashed late in the suite)."""
    original, done = TrainStep.__call__, []

    def step(self, batch, step):
        out = original(self, batch, step)
        done.append(step)
        if len(done) == n:
            interrupt.request_stop(signal.SIGTERM)  # what SIGTERM does (a real one: the subprocess test)
        return out

    TrainStep.__call__ = step
    try:
        yield
    finally:
        TrainStep.__call__ = original


def test_fresh_run_refuses_to_overwrite(tmp_path) -> None:
    cfg_path = _cfg(tmp_path, train={"epochs": 1, "max_steps_per_epoch": 1, "schedule": "cosine"})
    Trainer(TrainConfig.load(cfg_path), tmp_path / "r", resume=None).fit()
    with pytest.raises(ValueError, match="already holds a run"):
        Trainer(TrainConfig.load(cfg_path), tmp_path / "r", resume=None).fit()
    # Resuming with another learning rate would train at the old one and write the new one to
    # config.yaml: refused, naming each difference and the way out, before anything is written.
    before = (tmp_path / "r/config.yaml").read_text()
    with pytest.raises(ValueError, match=r"train.lr 0.004 -> 0.05, loss.push_factor 0.001 -> 0.1\. .*another --output"):
        Trainer(TrainConfig.load(cfg_path, ["train.lr=0.05", "loss.push_factor=0.1"]), tmp_path / "r").fit()
    assert (tmp_path / "r/config.yaml").read_text() == before
    # The run's length may change: applied and recorded, the cosine decay stretched to the new end
    # (it had ended at step 1: the rate would have stayed 0).
    Trainer(TrainConfig.load(cfg_path, ["train.epochs=3"]), tmp_path / "r").fit()
    rows = [json.loads(x) for x in (tmp_path / "r/metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[1]["lr"] > 0
    assert yaml.safe_load((tmp_path / "r/config.yaml").read_text())["train"]["epochs"] == 3


def test_one_run_per_output_folder(tmp_path, monkeypatch) -> None:
    """Two runs into one folder would mix their checkpoints and metrics: the second is refused,
    naming the first, and the lock is held for the whole run and released at its end."""
    from litepose.files import FolderBusy, FolderLock

    cfg = TrainConfig.load(_cfg(tmp_path))
    out = tmp_path / "run"
    with FolderLock(out, "train"):  # another run holds the folder
        with pytest.raises(FolderBusy, match=r"run: this output folder is in use by train \(pid \d+"):
            Trainer(cfg, out, resume=None).fit()
    held = []

    def build(self, resuming=False):  # the run has started: the folder is its own
        with pytest.raises(FolderBusy):
            FolderLock(out, "train").acquire()
        held.append(True)
        raise ValueError("stopped here")

    monkeypatch.setattr(Trainer, "build", build)
    with pytest.raises(ValueError, match="stopped here"):
        Trainer(cfg, out, resume=None).fit()
    assert held and not (out / ".litepose.lock").exists()


def test_cli_full_disk_and_read_only_folder_are_one_line(tmp_path, monkeypatch, capsys) -> None:
    """torch.save failing on a full disk ("unexpected pos ...", a RuntimeError) and an output folder
    on a read-only file system are errors of the system: one line naming the file or the folder,
    exit code 2, not "a bug in litepose"."""
    import errno

    from litepose.cli import main

    cfg_path = _cfg(tmp_path, train={"epochs": 1, "batch_size": 2, "max_steps_per_epoch": 1})
    out = tmp_path / "run"
    real_open = os.open

    def read_only(path, flags, *a, **k):  # the folder exists, but nothing can be created in it
        if str(path).startswith(str(out) + os.sep) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", read_only)
    out.mkdir()
    assert main(["train", "--config", str(cfg_path), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"litepose train: error: {out}: cannot write in this output folder (Read-only file system)"
    monkeypatch.setattr(os, "open", real_open)

    fail_torch_save(monkeypatch, RuntimeError("[enforce fail at inline_container.cc:664] unexpected pos 1234 vs 1096"))
    assert main(["train", "--config", str(cfg_path), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"litepose train: error: {out / 'last.pth'}: the write failed, is the disk full?"), last
    assert "Traceback" not in err and not list(out.glob(".*.tmp")) and not (out / ".litepose.lock").exists()


def test_unreadable_training_images_are_left_out_not_fatal(tmp_path, recwarn) -> None:
    """A training image whose header is broken is found before the first step and left out with a
    warning naming it; one that fails only when decoded (here: another size than its entry says) is
    skipped with a warning naming it, another sample in its place, instead of ending the run."""
    import shutil

    import cv2
    import numpy as np

    src = _minicoco()
    images = tmp_path / "images"
    shutil.copytree(src["train_images"], images)
    names = [im["file_name"] for im in json.loads(Path(src["train"]).read_text())["images"]]
    (images / names[0]).write_bytes(b"\xff\xd8\xff\xe0 not a JPEG after all")  # header: broken
    cv2.imwrite(str(images / names[1]), np.zeros((10, 12, 3), np.uint8))  # decodes, but not at its size
    cfg = TrainConfig.load(_cfg(tmp_path, data={"train_images": str(images)}, train={"batch_size": 12}))
    t = Trainer(cfg, tmp_path / "r", resume=None)
    t.build()
    assert len(t.dataset) == 11 and names[0] not in {Path(t.dataset.annotations.image_path(i)).name for i in
                                                     t.dataset.image_ids}  # fmt: skip
    warned = [str(w.message) for w in recwarn]
    assert any(f"1 of the 12 training images cannot be read and are left out: {images / names[0]}: " in m
               for m in warned), warned  # fmt: skip
    loader = t.loader()
    loader.batch_sampler.set_epoch(0)
    batch = next(iter(loader))  # every training image: the one of another size among them
    assert len(batch["image_id"]) == 11
    warned = [str(w.message) for w in recwarn]
    assert any(str(images / names[1]) in m and "is skipped (another takes its place" in m for m in warned), warned


def test_nonfinite_loss_stops_the_run_or_is_skipped_under_amp(tmp_path, monkeypatch) -> None:
    """Without AMP a non-finite loss stops the run with one clear error. With AMP (a GradScaler) the
    step is skipped, as GradScaler skips an overflowing one, and only a run of them stops training."""
    from litepose.engine import step as step_module

    t = Trainer(TrainConfig.load(_cfg(tmp_path, train={"batch_size": 2})), tmp_path / "n", resume=None)
    t.build()
    loader = t.loader()
    loader.batch_sampler.set_epoch(0)
    batch = next(iter(loader))
    del loader
    finite_loss = t.stepper.loss

    def nan_loss(*a, **k):
        res = finite_loss(*a, **k)
        return {**res, "total": res["total"] * float("nan")}

    t.stepper.loss = nan_loss
    with pytest.raises(FloatingPointError, match=r"the loss is not finite at step 7 \(nan\): the run diverged"):
        t.stepper(batch, 7)
    t.stepper.scaler = torch.amp.GradScaler("cpu")  # what AMP on CUDA uses, here on the CPU
    monkeypatch.setattr(step_module, "MAX_NONFINITE_STEPS", 2)
    before = {k: p.detach().clone() for k, p in t.model.named_parameters()}
    assert t.stepper(batch, 0) is None  # skipped: no update, the scale lowered
    assert all(torch.equal(before[k], p) for k, p in t.model.named_parameters())
    assert t.stepper.scaler.get_scale() < 65536.0
    t.stepper.loss = finite_loss
    assert t.stepper(batch, 1)["loss"] > 0  # a finite step in between: the count starts again
    t.stepper.loss = nan_loss
    assert t.stepper(batch, 2) is None
    with pytest.raises(FloatingPointError, match="not finite at 2 steps in a row"):
        t.stepper(batch, 3)


def test_ddp_two_processes_equal_one_process_same_global_batch(tmp_path) -> None:
    """2-process gloo DDP (torchrun) == 1 process with the same global batch (BN kept in eval)."""
    still = {"max_rotation": 0, "min_scale": 1.0, "max_scale": 1.0, "max_translate": 0, "flip_prob": 0.0}
    cfg_path = _cfg(
        tmp_path,
        augment=still,
        train={"epochs": 1, "batch_size": 4, "freeze_bn": True, "max_steps_per_epoch": 2},
    )
    Trainer(TrainConfig.load(cfg_path), tmp_path / "one", resume=None).fit()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "litepose", "train", "--config", str(cfg_path), "--output", str(tmp_path / "two"),
        "train.batch_size=2",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same(_weights(tmp_path / "one/last.pth"), _weights(tmp_path / "two/last.pth"), atol=1e-5)


def test_supernet_trains_each_sampled_subnet(tmp_path) -> None:
    cfg_path = _cfg(
        tmp_path,
        model={"arch": "litepose-super", "input_size": None},
        supernet={"sizes": [64, 128], "kernels": [7, 5, 3], "sandwich": True},
        train={"epochs": 1, "batch_size": 2, "max_steps_per_epoch": 3},
    )
    trainer = Trainer(TrainConfig.load(cfg_path), tmp_path / "s", resume=None)
    before = {k: v.clone() for k, v in create_model("litepose-super").state_dict().items()}
    summary = trainer.fit()
    assert summary["steps"] == 3
    after = _weights(tmp_path / "s/last.pth")
    changed = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert any("Linear5x5" in k for k in changed) and any("Linear3x3" in k for k in changed)
    assert any(k.startswith("final_raw.1") for k in changed)
    sup, info = load_checkpoint(tmp_path / "s/last.pth")
    assert info["arch"] == "super"


def test_supernet_inplace_distillation(tmp_path) -> None:
    """With ``supernet.inplace_distill`` the smaller subnets of a sandwich step also learn the largest
    subnet's heatmaps: the step logs the term and the weights differ from the same run without it."""
    runs = {}
    for factor in (0.0, 1.0):
        (tmp_path / str(factor)).mkdir()
        cfg_path = _cfg(
            tmp_path / str(factor),
            model={"arch": "litepose-super", "input_size": None},
            supernet={"sizes": [64], "sandwich": True, "inplace_distill": factor},
            train={"epochs": 1, "batch_size": 2, "max_steps_per_epoch": 1},
        )
        trainer = Trainer(TrainConfig.load(cfg_path), tmp_path / f"s{factor}", resume=None)
        trainer.build()
        stats = trainer.stepper(next(iter(trainer.loader())), 0)
        assert ("inplace_distill" in stats) == (factor > 0)
        runs[factor] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    assert runs[1.0]["final_raw.1.conv.3.weight"].ne(runs[0.0]["final_raw.1.conv.3.weight"]).any()
    bad = _cfg(tmp_path, model={"arch": "litepose-super", "input_size": None}, supernet={"inplace_distill": 1.0})
    with pytest.raises(ValueError, match="supernet.inplace_distill"):
        TrainConfig.load(bad)


def test_fixed_subnet_of_supernet(tmp_path) -> None:
    cfg_path = _cfg(
        tmp_path,
        model={"arch": "litepose-super", "input_size": None},
        supernet={"arch": "litepose-xs"},
        train={"epochs": 1, "batch_size": 2, "max_steps_per_epoch": 1},
    )
    t = Trainer(TrainConfig.load(cfg_path), tmp_path / "f", resume=None)
    t.fit()
    assert t.fixed_arch.stem_channels == 16


def test_finetune_loads_backbone_and_skips_head(tmp_path) -> None:
    src, _ = load_checkpoint(shared("ref/model_XS_17.pth"))
    model = create_model("litepose-xs", num_joints=14)
    n = load_backbone(model, shared("ref/model_XS_17.pth"))
    sd = model.state_dict()
    assert n > 0 and torch.equal(sd["stage.3.9.point_conv.0.weight"], src.state_dict()["stage.3.9.point_conv.0.weight"])
    assert not torch.equal(sd["deconv_refined.0.weight"], src.state_dict()["deconv_refined.0.weight"])
    with pytest.raises(CheckpointError, match="backbone key"):
        load_backbone(create_model("litepose-s"), shared("ref/model_XS_17.pth"))
    full = create_model("litepose-xs", num_joints=17)
    assert load_backbone(full, shared("ref/model_XS_17.pth"), head=True) == len(src.state_dict())
    for k, v in src.state_dict().items():
        assert torch.equal(full.state_dict()[k], v), k
    with pytest.raises(CheckpointError, match="head key"):
        load_backbone(model, shared("ref/model_XS_17.pth"), head=True)  # 14 joints: the head does not fit


def test_config_rejects_unknown_keys_and_parses_overrides(tmp_path) -> None:
    cfg_path = _cfg(tmp_path)
    cfg = TrainConfig.load(cfg_path, ["train.epochs=7", "train.lr_steps=[1, 2]", "model.arch=litepose-s"])
    assert cfg.train.epochs == 7 and cfg.train.lr_steps == [1, 2] and cfg.model.arch == "litepose-s"
    with pytest.raises(ValueError, match="unknown key train.epoch"):
        TrainConfig.load(cfg_path, ["train.epoch=1"])
    with pytest.raises(ValueError, match="unknown section"):
        TrainConfig.load(cfg_path, ["trian.epochs=1"])


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_shipped_configs_load(name: str) -> None:
    cfg = TrainConfig.load(REPO / "configs" / name)
    assert cfg.train.epochs > 0 and cfg.model.arch


def test_synthpose_config_is_the_demo_recipe() -> None:
    """configs/synthpose_xs.yaml and `litepose demo` train with the same recipe (SYNTHPOSE_RECIPE)."""
    from litepose.engine.config import SYNTHPOSE_RECIPE

    cfg = TrainConfig.load(REPO / "configs" / "synthpose_xs.yaml").to_dict()
    for section, values in SYNTHPOSE_RECIPE.items():
        for key, value in values.items():
            assert cfg[section][key] == value, f"{section}.{key}"


def test_tags_separate_and_people_are_found_on_tiny_synthpose(tiny_trained_run) -> None:
    """The SynthPose recipe on a tiny set (conftest's ``tiny_trained_run``): the tags separate (no
    collapse) and the people are found.

    The first round's recipe ("exp" push, default init, constant rate) passed a loss-falls /
    AP > 0 check while its tags had collapsed to one value (separation ~0.3 after hundreds of
    steps, AP ~0.005). Here the separation must rise well above 1 and AP must clear a floor
    measured with the shipped recipe (docs/training.md).
    """
    rows = [json.loads(x) for x in (tiny_trained_run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == TINY_STEPS
    first = rows[0]["tag_separation"]
    last = sum(r["tag_separation"] for r in rows[-5:]) / 5
    assert last > TINY_MIN_SEPARATION and last > 3 * first, (first, last)
    assert rows[-1]["ap"] >= TINY_MIN_AP, rows[-1]


TINY_MIN_SEPARATION, TINY_MIN_AP = 8.0, 0.06  # measured here: 26 (from 0.19) and AP 0.15 at step 120


# -- typed configs ----------------------------------------------------------------------------------


def test_val_max_images_is_checked(tmp_path) -> None:
    assert TrainConfig.load(_cfg(tmp_path), ["val.max_images=5"]).val.max_images == 5
    with pytest.raises(ValueError, match="val.max_images must be at least 1"):
        TrainConfig.load(_cfg(tmp_path), ["val.max_images=0"])


def test_config_refuses_values_out_of_range(tmp_path) -> None:
    """A negative grad_clip would flip the gradient, a negative warm-up or worker count means nothing,
    and sync_bn on a CPU failed only at the first forward pass: all refused at load, naming the key."""
    cfg_path = _cfg(tmp_path)
    for bad, msg in [
        ("train.grad_clip=-1", "train.grad_clip must be 0 or more"),
        ("train.grad_clip=.nan", "train.grad_clip must be 0 or more"),
        ("train.warmup_steps=-5", "train.warmup_steps must be 0"),
        ("train.dist_timeout_min=0", "train.dist_timeout_min must be a positive"),
        ("data.workers=-1", "data.workers must be 0"),
        ("data.cache_mb=-10", "data.cache_mb must be 0 \\(no cache\\) or more"),
    ]:
        with pytest.raises(ValueError, match=msg):
            TrainConfig.load(cfg_path, [bad])
    ok = TrainConfig.load(cfg_path, ["train.grad_clip=0", "data.workers=null", "data.cache_mb=0"])
    assert ok.train.grad_clip == 0 and ok.data.workers is None
    with pytest.raises(ValueError, match="model.sync_bn=true needs CUDA"):
        TrainConfig.load(cfg_path, ["model.sync_bn=true", "train.device=cpu"])


def test_config_values_are_converted_to_the_field_types(tmp_path) -> None:
    cfg_path = _cfg(tmp_path, train={"lr": "4e-3", "epochs": 3.0})  # a YAML string and an integral float
    overrides = ["train.grad_clip=1", "train.amp=false", "loss.heatmap_factors=[1, 2]", "model.input_size=null"]
    cfg = TrainConfig.load(cfg_path, ["train.weight_decay=1e-5", *overrides])
    t = cfg.train
    assert t.lr == 0.004 and isinstance(t.lr, float) and t.epochs == 3 and isinstance(t.epochs, int)
    assert t.weight_decay == 1e-5 and t.grad_clip == 1.0 and isinstance(t.grad_clip, float) and t.amp is False
    assert cfg.loss.heatmap_factors == [1.0, 2.0] and cfg.model.input_size is None
    cfg = TrainConfig.from_dict({"data": {"synthpose": {"train_images": "3"}}})
    assert cfg.data.synthpose == {"train_images": 3}
    for bad, msg in [
        ("train.epochs=ten", "train.epochs: expected int, got 'ten'"),
        ("train.lr=fast", "train.lr: expected float"),
        ("train.epochs=2.5", "expected int"),
        ("train.amp=maybe", "train.amp: expected bool"),
        ("train.lr_steps=350", "expected a list of int"),
        ("train.lr_steps=[1, x]", r"train.lr_steps\[1\]: expected int"),
        ("train.epochs=null", "expected int, got None"),
        ("data.synthpose={train_images: many}", "data.synthpose.train_images: expected int"),
    ]:
        with pytest.raises(ValueError, match=msg):
            TrainConfig.load(cfg_path, [bad])
    (tmp_path / "bad.yaml").write_text("train:\n  batch_size: sixteen\n")
    with pytest.raises(ValueError, match=r"bad.yaml: train.batch_size: expected int"):
        TrainConfig.load(tmp_path / "bad.yaml")


def test_cli_bad_override_exits_2_with_one_line(tmp_path) -> None:
    cmd = [sys.executable, "-m", "litepose", "train", "--config", str(_cfg(tmp_path)), "train.epochs=ten"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "train.epochs: expected int, got 'ten'" in proc.stderr


def _ddp_agreement_worker(rank: int, world: int, folder: str, port: int) -> None:
    """One rank of test_ddp_ranks_stop_together (torch.multiprocessing.spawn)."""
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "LOCAL_RANK": str(rank)}
    os.environ.update(env, WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from litepose.engine import distributed as D
    from litepose.engine.loss import LitePoseLoss

    cfg = TrainConfig.from_dict(json.loads(Path(folder, "cfg.json").read_text()))
    out: dict = {}
    # 1. SIGTERM reaches rank 0 only, after its first step: every rank stops at the same step
    with signal_policy(), _sigterm_after_steps(1) if rank == 0 else contextlib.nullcontext():
        try:
            Trainer(cfg, Path(folder, "stop"), resume=None).fit()
        except interrupt.Stopped as e:
            out["stop"] = e.signum
    # 2. the loss is NaN on rank 1 only: every rank stops with the error (none waits for a timeout)
    if rank == 1:
        forward = LitePoseLoss.forward
        LitePoseLoss.forward = lambda self, *a, **k: {**(r := forward(self, *a, **k)), "total": r["total"] * torch.nan}
    try:
        Trainer(cfg, Path(folder, "nan"), resume=None).fit()
    except FloatingPointError as e:
        out["nan"] = str(e)
    # 3. rank 1 dies: rank 0's next collective is one clear error
    if rank == 1:
        Path(folder, "rank1.json").write_text(json.dumps(out))
        os._exit(0)
    try:
        with D.peer_errors():
            D.barrier()
    except ConnectionError as e:
        out["peer"] = str(e)
    Path(folder, "rank0.json").write_text(json.dumps(out))


def test_ddp_ranks_stop_together(tmp_path) -> None:
    """Under DDP (2 gloo processes) a signal that reaches one rank, or a non-finite loss on one rank,
    stops every rank at the same step; a dead rank is one clear error on the others."""
    import socket

    import torch.multiprocessing as mp

    cfg = yaml.safe_load(_cfg(tmp_path, train={"batch_size": 2, "dist_timeout_min": 0.5}).read_text())
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_ddp_agreement_worker, args=(2, str(tmp_path), port), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["stop"] == r1["stop"] == signal.SIGTERM
    state = torch.load(tmp_path / "stop/last.pth", weights_only=True)
    assert (state["step"], state["extra"]["partial_epoch"]["batches"]) == (1, 1)
    assert r1["nan"].startswith("rank 1 of 2: the loss is not finite at step 0 (nan): the run diverged; lower train.lr")
    assert r0["nan"].startswith("rank 0 of 2: the loss is not finite at step 0 (finite on this rank, not on another)")
    assert r0["peer"].startswith("rank 0 of 2: lost the connection to another rank, which most likely died"), r0


def test_peer_timeout_is_one_clear_error(monkeypatch) -> None:
    """A collective that waits past train.dist_timeout_min (gloo's own words below) names the rank and
    the timeout instead of a traceback of torch internals."""
    import torch.distributed as dist

    from litepose.engine import distributed as D

    def stuck(*a, **k):
        raise RuntimeError(
            "[/pytorch/third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 1800000ms "
            "for recv operation to complete"
        )

    monkeypatch.setattr(D, "_active", lambda: True)
    monkeypatch.setattr(D, "backend", lambda: "gloo")
    monkeypatch.setattr(dist, "get_rank", lambda: 3)
    monkeypatch.setattr(dist, "get_world_size", lambda: 8)
    monkeypatch.setattr(dist, "barrier", stuck)
    monkeypatch.setattr(D._group, "timeout_min", 30.0)
    with pytest.raises(TimeoutError, match=r"^rank 3 of 8: waited longer than train.dist_timeout_min \(30 min\)"):
        with D.peer_errors():
            D.barrier()
    with pytest.raises(RuntimeError, match="^something else$"):  # other errors pass unchanged
        with D.peer_errors():
            raise RuntimeError("something else")

    def no_rendezvous(*a, **k):
        raise dist.DistStoreError("Timed out after 1801 seconds waiting for clients. 1/2 clients joined.")

    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", no_rendezvous)
    env = {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConnectionError, match=r"^rank 1 of 2: could not join the process group at node0:29500"):
        D.setup("cpu", 30)


# -- supernet: fixed-subnet checkpoints, validation, sync_bn ----------------------------------------


def _tiny_xs(tmp_path: Path) -> tuple[Path, object]:
    """An architecture JSON: LitePose-XS at input 64 (a subnet of the supernet)."""
    from litepose.models.spec import resolve_spec

    spec = resolve_spec("litepose-xs")[1].with_input_size(64)
    path = tmp_path / "xs64.json"
    path.write_text(json.dumps(spec.to_json()))
    return path, spec


def test_fixed_subnet_checkpoints_are_the_standalone_subnet(tmp_path) -> None:
    from litepose.engine.checkpoint import load_training_state, restore_training_state
    from litepose.models import SuperLitePose

    arch, spec = _tiny_xs(tmp_path)
    cfg_path = _cfg(
        tmp_path,
        model={"arch": "litepose-super", "input_size": None},
        supernet={"arch": str(arch)},
        train={"epochs": 1, "batch_size": 2, "max_steps_per_epoch": 1},
    )
    Trainer(TrainConfig.load(cfg_path), tmp_path / "f", resume=None).fit()
    state = load_training_state(tmp_path / "f/last.pth")
    sup = SuperLitePose(17)
    restore_training_state(state, sup, restore_rng=False)  # resume still gets the supernet
    sup.eval()
    x = torch.randn(1, 3, 64, 64)
    for name in ("best.pth", "last.pth"):
        net, info = load_checkpoint(tmp_path / "f" / name)
        assert info["arch"] != "super" and net.spec == spec and info["input_size"] == 64, name
        with torch.no_grad():
            for a, b in zip(sup(x, spec), net(x)):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_supernet_validation_measures_the_recalibrated_val_arch(tmp_path) -> None:
    root = shared("data/coco_minicoco_sample")
    full = json.loads((root / "annotations/person_keypoints_val2017.json").read_text())
    keep = {im["id"] for im in full["images"][:3]}  # 3 val images are enough to run the whole path
    full["images"] = [im for im in full["images"] if im["id"] in keep]
    full["annotations"] = [a for a in full["annotations"] if a["image_id"] in keep]
    (tmp_path / "val3.json").write_text(json.dumps(full))
    val = {"val": str(tmp_path / "val3.json"), "val_images": str(root / "images/val2017")}
    arch, spec = _tiny_xs(tmp_path)
    cfg_path = _cfg(
        tmp_path,
        model={"arch": "litepose-super", "input_size": None},
        data=val,
        supernet={"sizes": [64]},
        train={"epochs": 1, "batch_size": 2, "max_steps_per_epoch": 1},
        val={"arch": str(arch), "calib_batches": 1, "flip_test": False},
    )
    t = Trainer(TrainConfig.load(cfg_path), tmp_path / "s", resume=None)
    t.fit()
    rows = [json.loads(x) for x in (tmp_path / "s/metrics.jsonl").read_text().splitlines()]
    assert "ap" in rows[-1]
    _, info = load_checkpoint(tmp_path / "s/best.pth")  # plain supernet training: best.pth is the supernet
    assert info["arch"] == "super" and info["extra"]["val_spec"] == spec.to_json()
    assert info["extra"]["bn_recalibration_images"] == 2
    net = t.validator.network(t.model)  # the network validation measured: BatchNorm re-estimated, not the supernet's
    copied = t.model.state_dict()["stage.0.0.inv.1.running_mean"]
    mean = net.state_dict()["stage.0.0.inv.1.running_mean"]
    assert net.spec == spec and not torch.allclose(mean, copied[: mean.shape[0]])


def test_sync_bn_is_refused_for_the_supernet(tmp_path) -> None:
    cfg_path = _cfg(tmp_path, model={"arch": "litepose-super", "input_size": None, "sync_bn": True})
    with pytest.raises(ValueError, match="model.sync_bn"):
        Trainer(TrainConfig.load(cfg_path), tmp_path / "x", resume=None).fit()


# -- torchrun: world size 1, rank-0 decisions -------------------------------------------------------


def _torchrun(n: int, cfg_path: Path, out: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
        "-m", "litepose", "train", "--config", str(cfg_path), "--output", str(out), *overrides,
    ]  # fmt: skip
    # A hang (ranks in different collectives) fails here instead of blocking the suite.
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


def test_torchrun_world_size_1_has_a_process_group(tmp_path) -> None:
    cfg_path = _cfg(tmp_path, train={"epochs": 1, "max_steps_per_epoch": 1})
    proc = _torchrun(1, cfg_path, tmp_path / "one")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 process(es) (process group gloo)" in proc.stderr
    assert (tmp_path / "one/last.pth").is_file()


def test_ddp_time_limit_after_resume_stops_every_rank(tmp_path) -> None:
    """After a resume only rank 0 knows the minutes already spent: its decision must reach rank 1."""
    cfg_path = _cfg(tmp_path, train={"epochs": 3, "batch_size": 2, "max_steps_per_epoch": 1})
    out = tmp_path / "run"
    proc = _torchrun(2, cfg_path, out, "train.epochs=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The first run "took" 100 minutes; with a 50-minute budget rank 0 stops after one more epoch,
    # while rank 1's own clock (a few seconds) says go on: without the broadcast the ranks hang.
    row = json.loads((out / "metrics.jsonl").read_text())
    (out / "metrics.jsonl").write_text(json.dumps({**row, "minutes": 100.0}) + "\n")
    proc = _torchrun(2, cfg_path, out, "train.time_limit_min=50", "train.dist_timeout_min=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "time limit of 50.0 min reached after epoch 2" in proc.stderr
    assert torch.load(out / "last.pth", weights_only=True)["epoch"] == 2


def test_auto_workers_and_the_image_cache(tmp_path, monkeypatch, capsys) -> None:
    """data.workers unset: in-process loading on a CPU with up to 2 cores, else 2 workers.
    data.cache_mb: images decoded once; a forked worker serves from the cache the very batch the
    training process makes itself, as uint8 images."""
    cfg = TrainConfig.load(_cfg(tmp_path, data={"workers": None, "cache_mb": 256}))
    assert cfg.data.workers is None and cfg.data.cache_mb == 256.0
    t = Trainer(cfg, tmp_path / "w", resume=None)
    t.build()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert t.num_workers() == 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert t.num_workers() == 2
    t.cache_images()
    assert t.dataset.cached == len(t.dataset)
    assert f"{len(t.dataset)} of {len(t.dataset)} training images cached" in capsys.readouterr().err
    batches = []
    for workers in (1, 0):
        t.cfg.data.workers = workers
        assert t.num_workers() == workers
        loader = t.loader()
        loader.batch_sampler.set_epoch(1)
        batches.append(next(iter(loader)))
        del loader
    a, b = batches
    assert a["image"].dtype == torch.uint8 and torch.equal(a["image"], b["image"])
    assert torch.equal(a["heatmaps"][1], b["heatmaps"][1]) and torch.equal(a["masks"][0], b["masks"][0])


def test_persistent_workers_serve_each_epoch_as_a_fresh_loader_would(tmp_path) -> None:
    """Workers live across epochs, yet an epoch's samples depend only on (seed, epoch): exact resume."""
    cfg = TrainConfig.load(_cfg(tmp_path, data={"workers": 1}))
    t = Trainer(cfg, tmp_path / "w", resume=None)
    t.build()
    loader = t.loader()
    firsts, pids = [], []
    for epoch in (0, 1):
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:  # one batch, then leave the epoch early (as max_steps_per_epoch does)
            firsts.append(batch)
            pids.append([w.pid for w in loader._iterator._workers])
            break
    assert pids[0] == pids[1]  # the same worker process in both epochs
    t.cfg.data.workers = 0
    fresh = t.loader()  # a resumed run: no worker, epoch 1 straight away
    fresh.batch_sampler.set_epoch(1)
    again = next(iter(fresh))
    assert again["image_id"].tolist() == firsts[1]["image_id"].tolist()
    assert torch.equal(again["image"], firsts[1]["image"])
    assert torch.equal(again["heatmaps"][0], firsts[1]["heatmaps"][0])
    assert not torch.equal(firsts[0]["image"], firsts[1]["image"])
    del loader


def test_checkpoints_record_the_normalization_training_used(tmp_path, monkeypatch) -> None:
    """The network is fed (and its best.pth / last.pth describe) the trainer's one normalisation, so
    that inference normalises as training did: here a non-ImageNet one, to tell them apart."""
    from litepose.engine import step as step_module
    from litepose.normalization import IMAGENET, Normalization

    cfg = TrainConfig.load(_cfg(tmp_path, train={"epochs": 1, "batch_size": 2, "max_steps_per_epoch": 1}))
    t = Trainer(cfg, tmp_path / "r", resume=None)
    assert t.normalization == IMAGENET  # what the training transform has always used
    t.normalization = Normalization((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    fed = []
    real = step_module.network_input
    monkeypatch.setattr(step_module, "network_input", lambda x, norm: fed.append(norm) or real(x, norm))
    t.fit()
    assert fed == [t.normalization]
    for name in ("best.pth", "last.pth"):
        _, info = load_checkpoint(tmp_path / "r" / name)
        assert info["normalization"] == t.normalization.to_dict(), name


def test_train_options_are_overrides_applied_before_the_one_check(tmp_path, monkeypatch) -> None:
    """--arch / --teacher / --pretrained / --device go into the config before it is checked (once,
    by TrainConfig.load), and win over KEY=VALUE overrides; they are not edited in afterwards."""
    from litepose.cli import main
    from litepose.engine import trainer as trainer_module

    seen, made = [], []
    real_check = TrainConfig.check

    def check(self, *a, **k):
        seen.append((self.supernet.arch, self.loss.teacher, self.model.pretrained, self.train.device))
        return real_check(self, *a, **k)

    class FakeTrainer:
        def __init__(self, cfg, out, resume):
            made.append(cfg)
            self.main, self.summary = True, None

        def fit(self):
            return {"epochs": 0, "steps": 0, "best_ap": None}

    monkeypatch.setattr(TrainConfig, "check", check)
    monkeypatch.setattr(trainer_module, "Trainer", FakeTrainer)
    cfg_path = _cfg(tmp_path)
    args = ["train", "--config", str(cfg_path), "--output", str(tmp_path / "o"), "supernet.arch=litepose-s",
            "--arch", "litepose-xs", "--teacher", "t.pth", "--pretrained", "p.pth", "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    assert seen == [("litepose-xs", "t.pth", "p.pth", "cpu")]
    c = made[0]
    assert (c.supernet.arch, c.loss.teacher, c.model.pretrained, c.train.device) == seen[0]


def test_synthpose_current_is_one_rule(tmp_path) -> None:
    """One "present and current" rule (data/synth.py) for the trainer and the demo."""
    from litepose.data.synth import make_synthpose, synthpose_current

    folder = tmp_path / "sp"
    assert not synthpose_current(folder)
    make_synthpose(folder, 2, seed=0)
    assert synthpose_current(folder) and synthpose_current(folder, 2) and not synthpose_current(folder, 3)
    ann = json.loads((folder / "annotations.json").read_text())
    ann["info"]["version"] = 1
    (folder / "annotations.json").write_text(json.dumps(ann))
    assert not synthpose_current(folder) and not synthpose_current(folder, 2)


def test_val_max_images_limits_the_scored_images(tmp_path) -> None:
    """val.max_images: validation scores the first N val images (the val set loaded before the first
    step used to be kept whole, so the key had no effect)."""
    root = shared("data/coco_minicoco_sample")
    val = {"val": str(root / "annotations/person_keypoints_val2017.json"), "val_images": str(root / "images/val2017")}
    t = Trainer(TrainConfig.load(_cfg(tmp_path, data=val, val={"max_images": 2})), tmp_path / "v", resume=None)
    t.build()
    assert len(t.validator.annotations.image_ids) == 2
