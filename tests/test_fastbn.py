"""The fast CPU BatchNorm + activation (litepose.models.fastbn) against aten, and the CPU training
settings (litepose.engine.cputune)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from litepose import native
from litepose.engine.cputune import cpu_training_settings
from litepose.models import create_model, fastbn
from litepose.models.fastbn import FusedSequential

pytestmark = pytest.mark.skipif(native._compiler() is None, reason="no C compiler: the fast kernels are not built")

CL = torch.channels_last


def _pair(c: int, act: type | None, seed: int = 0) -> tuple[nn.Sequential, FusedSequential]:
    torch.manual_seed(seed)
    mods = [nn.BatchNorm2d(c)] + ([act(inplace=True)] if act else [])
    with torch.no_grad():
        mods[0].weight.uniform_(0.5, 2.0)
        mods[0].bias.normal_()
        mods[0].running_mean.normal_()
    return nn.Sequential(*copy.deepcopy(mods)), FusedSequential(*copy.deepcopy(mods))


def _run(seq: nn.Module, x0: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
    x = x0.clone().requires_grad_()
    y = seq(x)
    y.backward(g)
    bn = seq[0]
    return {
        "y": y.detach(),
        "dx": x.grad,
        "dw": bn.weight.grad,
        "db": bn.bias.grad,
        "rm": bn.running_mean.clone(),
        "rv": bn.running_var.clone(),
        "fn": type(y.grad_fn).__name__,
    }


@pytest.mark.parametrize("act", [None, nn.ReLU, nn.ReLU6], ids=["none", "relu", "relu6"])
# (3, 40, 23, 17): large enough for the threaded path, with a partial channel block and row block
@pytest.mark.parametrize("shape", [(4, 24, 9, 11), (2, 96, 16, 16), (1, 7, 5, 3), (3, 40, 23, 17)])
def test_fused_equals_aten(act, shape):
    ref, fus = _pair(shape[1], act)
    torch.manual_seed(1)
    x0 = (torch.randn(shape) * 3 + 1.5).contiguous(memory_format=CL)
    g = torch.randn(shape).contiguous(memory_format=CL)
    a, b = _run(ref, x0, g), _run(fus, x0, g)
    assert b["fn"] == "_BatchNormActFnBackward"  # the fast path was taken
    assert b["y"].is_contiguous(memory_format=CL) and b["dx"].is_contiguous(memory_format=CL)
    for k in ("y", "rm", "rv"):
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-5)
    # The activation's gradient is a step at 0 (and 6): where the pre-activation lies within
    # rounding of a step, aten and the kernel may pick different sides. Compare elsewhere.
    z = F.batch_norm(x0, None, None, ref[0].weight.detach(), ref[0].bias.detach(), True)
    near = torch.zeros_like(z, dtype=torch.bool) if act is None else (z.abs() < 1e-4) | ((z - 6).abs() < 1e-4)
    assert near.float().mean() < 1e-3
    torch.testing.assert_close(b["dx"][~near], a["dx"][~near], rtol=1e-4, atol=1e-5)
    scale = g.abs().sum(dim=(0, 2, 3)) * 1e-5 + 1e-6
    assert ((b["dw"] - a["dw"]).abs() <= scale * 10).all()
    assert ((b["db"] - a["db"]).abs() <= scale * 10).all()


def test_large_mean_is_not_cancelled():
    """Activations far from zero (mean >> std): the shifted sums and the mean subtracted before
    scaling keep the output as close to float64 as aten's (here: 10x closer)."""
    ref, fus = _pair(8, None)
    x0 = (torch.randn(4, 8, 16, 16) * 0.01 + 1000).contiguous(memory_format=CL)
    g = torch.randn_like(x0)
    exact = copy.deepcopy(ref).double()(x0.double())
    a, b = _run(ref, x0, g), _run(fus, x0, g)
    err_aten = (a["y"].double() - exact).abs().max()
    err_fast = (b["y"].double() - exact).abs().max()
    assert err_fast <= max(err_aten, 5e-3), (err_fast, err_aten)
    torch.testing.assert_close(b["rv"], a["rv"], rtol=1e-3, atol=1e-9)


def _fast_taken(seq: nn.Module, x: torch.Tensor) -> bool:
    y = seq(x.requires_grad_())
    return y.grad_fn is not None and type(y.grad_fn).__name__ == "_BatchNormActFnBackward"


def test_fast_path_only_where_it_applies(monkeypatch):
    _, fus = _pair(16, nn.ReLU6)
    x = torch.randn(2, 16, 8, 8)
    assert _fast_taken(fus, x.contiguous(memory_format=CL).clone())
    assert not _fast_taken(fus, x.clone())  # NCHW: aten
    fus.eval()
    assert not _fast_taken(fus, x.contiguous(memory_format=CL).clone())  # eval: aten
    fus.train()
    with torch.no_grad():  # e.g. BatchNorm recalibration: aten
        assert fus(x.contiguous(memory_format=CL)).grad_fn is None
    fus[0].momentum = None  # cumulative average: aten
    assert not _fast_taken(fus, x.contiguous(memory_format=CL).clone())
    fus[0].momentum = 0.1
    h = fus[0].register_forward_hook(lambda *a: None)  # a hook on the BatchNorm must see it run
    assert not _fast_taken(fus, x.contiguous(memory_format=CL).clone())
    h.remove()
    assert _fast_taken(fus, x.contiguous(memory_format=CL).clone())
    monkeypatch.setenv(fastbn.ENV_ENABLE, "0")
    assert not _fast_taken(fus, x.contiguous(memory_format=CL).clone())


def test_hooked_activation_still_runs():
    _, fus = _pair(16, nn.ReLU6)
    seen = []
    fus[1].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    fus(torch.randn(2, 16, 8, 8).contiguous(memory_format=CL).requires_grad_())
    assert seen == [torch.Size([2, 16, 8, 8])]


def test_eval_and_script_equal_sequential():
    ref, fus = _pair(16, nn.ReLU6)
    ref.eval(), fus.eval()
    x = torch.randn(2, 16, 8, 8).contiguous(memory_format=CL)
    assert torch.equal(fus(x), ref(x))
    assert torch.equal(torch.jit.script(fus)(x), ref(x))
    assert list(fus.state_dict()) == list(ref.state_dict())


def test_litepose_gradients_and_stats_as_accurate_as_aten(monkeypatch):
    """XS forward + backward with every BatchNorm on the fast path: gradients and running
    statistics as close to the float64 result as aten's. (The layer-level tests above check the
    arithmetic tightly; this one checks the wiring. Deep in the network, BatchNorms over few
    values per channel amplify float32 rounding: a ReLU6 mask that flips on either side moves the
    earlier layers' gradients by ~1 %, for aten as for the kernel; at 128 px they see 2 x 8 x 8.)"""
    torch.manual_seed(0)
    base = create_model("litepose-xs", num_joints=17).to(memory_format=CL).train()
    assert sum(isinstance(m, FusedSequential) for m in base.modules()) > 40
    x = torch.randn(2, 3, 128, 128).contiguous(memory_format=CL)

    def step(flag: str, dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], str]:
        monkeypatch.setenv(fastbn.ENV_ENABLE, flag)
        m = copy.deepcopy(base).to(dtype)
        out = m(x.to(dtype))
        sum((o**2).mean() for o in out).backward()
        fn = type(m.first[0](x.to(dtype)).grad_fn).__name__
        grads = {k: p.grad.double() for k, p in m.named_parameters()}
        return grads, {k: v.double() for k, v in m.state_dict().items() if v.is_floating_point()}, fn

    exact, exact_sd, _ = step("0", torch.float64)
    ref, ref_sd, fn_ref = step("0", torch.float32)
    fast, fast_sd, fn_fast = step("1", torch.float32)
    assert fn_fast == "_BatchNormActFnBackward" and fn_ref != fn_fast
    ratios = []
    for k in exact:
        scale = exact[k].abs().max()
        err_ref = (ref[k] - exact[k]).abs().max()
        err_fast = (fast[k] - exact[k]).abs().max()
        assert err_fast <= 0.25 * scale, (k, err_fast, scale)  # a wiring error is O(1)
        ratios.append(float(err_fast / max(err_ref, 1e-12 * scale)))
    ratios.sort()
    assert ratios[len(ratios) // 2] <= 3.0, ratios  # typically as accurate as aten, or more
    for k in exact_sd:
        err_ref = (ref_sd[k] - exact_sd[k]).abs().max()
        err_fast = (fast_sd[k] - exact_sd[k]).abs().max()
        assert err_fast <= max(3 * err_ref, 1e-5), (k, err_fast, err_ref)


def test_cpu_training_settings_flush_denormals_and_restore():
    tiny = torch.tensor([1e-40])
    assert (tiny * 1.0).item() != 0.0
    with cpu_training_settings():
        assert (tiny * 1.0).item() == 0.0
    assert (tiny * 1.0).item() != 0.0
    with cpu_training_settings(enabled=False):
        assert (tiny * 1.0).item() != 0.0


def test_float64_default_dtype_does_not_corrupt_the_gradients():
    """Under torch.set_default_dtype(torch.float64) the kernels' outputs (statistics, weight and bias
    gradients) once were float64 tensors filled with float32 values: NaN or garbage."""
    shape = (2, 24, 9, 11)
    ref, fus = _pair(shape[1], nn.ReLU6)
    torch.manual_seed(1)
    x0 = (torch.randn(shape) * 3 + 1.5).contiguous(memory_format=CL)
    g = torch.randn(shape).contiguous(memory_format=CL)
    a = _run(ref, x0, g)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        b = _run(fus, x0, g)
    finally:
        torch.set_default_dtype(old)
    assert b["fn"] == "_BatchNormActFnBackward"
    for k in ("y", "rm", "rv", "dw", "db"):
        assert b[k].dtype == torch.float32, k
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-4, msg=k)
