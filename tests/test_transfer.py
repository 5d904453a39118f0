"""Weight transfer: the extracted subnet equals the supernet as that subnet; BN recalibration."""

from __future__ import annotations

import torch
from conftest import fail_torch_save, shared

from litepose.cli import main
from litepose.engine.transfer import recalibrate_batchnorm, transfer
from litepose.models import load_checkpoint


def test_transferred_subnet_equals_supernet_as_that_subnet(tmp_path) -> None:
    sup, _ = load_checkpoint(shared("ref/super_14.pth"))
    net, summary = transfer(sup, "litepose-xs", tmp_path / "xs.pth")
    assert summary["recalibrated_on"] == 0
    loaded, info = load_checkpoint(tmp_path / "xs.pth")
    assert info["arch"] == "litepose-xs" and info["num_joints"] == 14 and info["source"] == "litepose"
    x = torch.randn(1, 3, 128, 192)
    with torch.no_grad():
        for a, b in zip(sup(x, "litepose-xs"), loaded(x)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_recalibration_gives_exact_batch_statistics() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    xs = [torch.randn(2, 3, 8, 8) + 3.0 for _ in range(3)]
    seen = recalibrate_batchnorm(model, xs)
    assert seen == 6 and not model.training
    with torch.no_grad():
        feats = torch.cat([model[0](x) for x in xs])
    torch.testing.assert_close(model[1].running_mean, feats.mean((0, 2, 3)), atol=1e-5, rtol=0)
    assert model[1].momentum == 0.1  # restored


def test_transfer_cli_recalibrates_on_training_images(tmp_path) -> None:
    data = shared("data/crowdpose_sample/test_crowdpose.json")
    out = tmp_path / "xs14.pth"
    args = ["transfer", "--supernet", str(shared("ref/super_14.pth")), "--arch", "litepose-xs", "--output", str(out)]
    assert main([*args, "--data", str(data), "--calib-images", "2", "--batch-size", "2"]) == 0
    model, info = load_checkpoint(out)
    sup, _ = load_checkpoint(shared("ref/super_14.pth"))
    assert info["extra"]["bn_recalibration_images"] == 2
    rm = model.state_dict()["stage.0.0.inv.1.running_mean"]
    assert not torch.allclose(rm, sup.state_dict()["stage.0.0.inv.1.running_mean"][: rm.shape[0]])


def test_transfer_cli_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys) -> None:
    """A full disk while writing the subnet is an error of the system, not a bug of litepose: one
    line naming the file, exit code 2, no temporary file left."""
    import errno

    fail_torch_save(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    out = tmp_path / "xs.pth"
    args = ["transfer", "--supernet", str(shared("ref/super_14.pth")), "--arch", "litepose-xs", "--output", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"litepose transfer: error: {out}: No space left on device", err
    assert "Traceback" not in "\n".join(err) and list(tmp_path.iterdir()) == []
    fail_torch_save(monkeypatch, RuntimeError("[enforce fail at inline_container.cc:664] unexpected pos 9216 vs 9104"))
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"litepose transfer: error: {out}: the write failed, is the disk full?"), err
    assert list(tmp_path.iterdir()) == []
