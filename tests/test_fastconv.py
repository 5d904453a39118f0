"""The fast depthwise-conv weight gradient (litepose.models.fastconv): same values and gradients as
aten on every supported shape and layout, the fallbacks, and whole-model parity."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from litepose import native
from litepose.engine.cputune import kernel_status
from litepose.models import create_model, fastconv
from litepose.models.fastconv import DepthwiseConv2d, depthwise_conv2d, depthwise_input_grad, depthwise_weight_grad


@pytest.fixture(scope="module", autouse=True)
def kernel(tmp_path_factory):
    """Compile the kernel once into a fresh cache folder (skip without a C compiler)."""
    if native._compiler() is None:
        pytest.skip("no C compiler (cc, gcc or clang) on PATH: the fast depthwise kernel cannot be built")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(native.ENV_CACHE, str(tmp_path_factory.mktemp("cache")))
        mp.delenv(fastconv.ENV_ENABLE, raising=False)
        mp.setattr(native, "_lib", None)
        mp.setattr(native, "_lib_failed", False)
        assert fastconv.fast_conv_available(), "the kernel failed to compile (see the warning)"
        yield


def _fast(y: torch.Tensor) -> bool:
    return y.grad_fn is not None and "DepthwiseConvFn" in type(y.grad_fn).__name__


def _case(n, c, h, w, k, s, layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g)
    if layout == "cl":
        x = x.contiguous(memory_format=torch.channels_last)
    wt = torch.randn(c, 1, k, k, generator=g) / k
    ho, wo = (h - 1) // s + 1, (w - 1) // s + 1
    gy = torch.randn(n, c, ho, wo, generator=g)
    if layout == "cl":
        gy = gy.contiguous(memory_format=torch.channels_last)
    return x, wt, gy


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4) -> None:
    """Equal up to rtol of the reference's largest magnitude (float32 sums in another order)."""
    scale = b.abs().max().item()
    torch.testing.assert_close(a, b.to(a.dtype), rtol=rtol, atol=rtol * scale)


SHAPES = [
    # n, c, h, w, k, stride, layout
    (2, 96, 16, 16, 7, 1, "cl"),
    (2, 96, 16, 16, 7, 2, "cl"),
    (1, 13, 9, 11, 7, 2, "cl"),  # channels not a multiple of 8, odd sizes, batch 1
    (1, 13, 9, 11, 7, 1, "contiguous"),
    (2, 20, 6, 5, 7, 1, "cl"),
    (3, 40, 10, 7, 5, 1, "cl"),
    (2, 24, 12, 12, 5, 2, "contiguous"),
    (1, 35, 8, 8, 3, 1, "contiguous"),
    (2, 72, 9, 6, 3, 2, "cl"),
    (4, 480, 4, 4, 7, 1, "cl"),  # kernel larger than the image
    (1, 5, 1, 1, 3, 1, "cl"),
]


@pytest.mark.parametrize("n,c,h,w,k,s,layout", SHAPES)
def test_gradients_equal_aten(n, c, h, w, k, s, layout):
    x, wt, gy = _case(n, c, h, w, k, s, layout)
    xf, wf = x.clone().requires_grad_(), wt.clone().requires_grad_()
    y = depthwise_conv2d(xf, wf, s)
    assert _fast(y)
    y.backward(gy)
    xa, wa = x.clone().requires_grad_(), wt.clone().requires_grad_()
    ya = F.conv2d(xa, wa, None, s, k // 2, 1, c)
    ya.backward(gy)
    assert not _fast(ya)
    _close(y.detach(), ya.detach())
    _close(xf.grad, xa.grad)
    _close(wf.grad, wa.grad)
    if x.numel() <= 20000:  # aten's float64 depthwise conv is slow
        # the kernel's float32 sums are no further from float64 than aten's
        w64 = wt.double().requires_grad_()
        F.conv2d(x.double(), w64, None, s, k // 2, 1, c).backward(gy.double())
        err_fast = (wf.grad.double() - w64.grad).abs().max()
        err_aten = (wa.grad.double() - w64.grad).abs().max()
        assert err_fast <= 4 * err_aten + 1e-6 * w64.grad.abs().max()


def test_any_strides_and_thread_counts():
    x, _, gy = _case(2, 40, 11, 9, 5, 1, "contiguous", seed=3)
    ref = depthwise_weight_grad(x, gy, 5, 1)
    # a channel slice of a channels_last tensor, and a transposed (H <-> W) view of a wider one
    big = torch.randn(2, 50, 11, 9).contiguous(memory_format=torch.channels_last)
    big[:, 5:45] = x
    _close(depthwise_weight_grad(big[:, 5:45], gy, 5, 1), ref, 1e-5)
    xt = x.transpose(2, 3).contiguous().transpose(2, 3)
    _close(depthwise_weight_grad(xt, gy.contiguous(memory_format=torch.channels_last), 5, 1), ref, 1e-5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = depthwise_weight_grad(x, gy, 5, 1)
    finally:
        torch.set_num_threads(threads)
    _close(one, ref, 1e-5)


def test_input_grad_any_strides():
    x, wt, gy = _case(2, 30, 10, 12, 7, 1, "cl", seed=4)
    ref = torch.ops.aten.convolution_backward(
        gy, x, wt, None, [1, 1], [3, 3], [1, 1], False, [0, 0], 30, [True, False, False]
    )[0]
    # a sliced, non-contiguous weight (as the supernet's) and a planar output gradient
    wbig = torch.randn(40, 1, 9, 9)
    wbig[5:35, :, 1:8, 1:8] = wt
    gx = depthwise_input_grad(gy.contiguous(), x, wbig[5:35, :, 1:8, 1:8], 1)
    assert gx.is_contiguous(memory_format=torch.channels_last)  # laid out as x
    _close(gx, ref, 1e-5)
    _close(depthwise_input_grad(gy, x.contiguous(), wt, 1), ref, 1e-5)


def test_partial_requires_grad_and_no_grad():
    x, wt, gy = _case(2, 24, 10, 10, 7, 1, "cl")
    # only the weight: the fast path, no input gradient
    w1 = wt.clone().requires_grad_()
    y = depthwise_conv2d(x, w1)
    assert _fast(y)
    y.backward(gy)
    w2 = wt.clone().requires_grad_()
    F.conv2d(x, w2, None, 1, 3, 1, 24).backward(gy)
    _close(w1.grad, w2.grad)
    # only the input: nothing to gain, plain aten
    x1 = x.clone().requires_grad_()
    y = depthwise_conv2d(x1, wt)
    assert not _fast(y) and y.grad_fn is not None
    # no_grad: plain aten, no graph
    with torch.no_grad():
        y = depthwise_conv2d(x, w1)
    assert y.grad_fn is None
    _close(y, F.conv2d(x, wt, None, 1, 3, 1, 24))


def test_unsupported_cases_use_aten():
    x, wt, _ = _case(1, 8, 8, 8, 7, 1, "cl")
    w = wt.clone().requires_grad_()
    assert not _fast(depthwise_conv2d(x.double(), w.double()))  # float64: aten (gradcheck territory)
    assert not _fast(depthwise_conv2d(x, w, 1, 1))  # padding != k // 2
    assert not _fast(depthwise_conv2d(x, w, 3))  # stride 3
    w9 = torch.randn(8, 1, 9, 9, requires_grad=True)
    assert not _fast(depthwise_conv2d(x, w9))  # kernel 9
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not _fast(depthwise_conv2d(x, w))
    x64 = torch.randn(1, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    w64 = torch.randn(3, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: depthwise_conv2d(a, b, 2), (x64, w64))


def test_env_var_disables(monkeypatch):
    x, wt, gy = _case(2, 16, 8, 8, 5, 1, "cl")
    w = wt.clone().requires_grad_()
    monkeypatch.setenv(fastconv.ENV_ENABLE, "0")
    assert not fastconv.fast_conv_available()
    y = depthwise_conv2d(x, w)
    assert not _fast(y)
    y.backward(gy)
    monkeypatch.setenv(fastconv.ENV_ENABLE, "1")
    w2 = wt.clone().requires_grad_()
    y2 = depthwise_conv2d(x, w2)
    assert _fast(y2)
    y2.backward(gy)
    _close(w2.grad, w.grad)


def test_supernet_weight_slice_and_kernel_crop():
    from litepose.models.supernet import SuperInvertedBottleneck

    torch.manual_seed(0)
    block = SuperInvertedBottleneck(16, 24, stride=2).train()
    x = torch.randn(2, 16, 16, 16).contiguous(memory_format=torch.channels_last)

    def grads(flag: str) -> dict[str, torch.Tensor]:
        os.environ[fastconv.ENV_ENABLE] = flag
        try:
            block.zero_grad(set_to_none=True)
            loss = sum((block(x, 24, k, t) ** 2).mean() for k, t in ((7, 6), (5, 4), (3, 3)))
            loss.backward()
        finally:
            del os.environ[fastconv.ENV_ENABLE]
        return {k: p.grad.clone() for k, p in block.named_parameters()}

    ref, fast = grads("0"), grads("1")
    assert set(ref) == set(fast)
    for k in ref:
        _close(fast[k], ref[k])


def test_module_is_a_conv2d_and_eval_is_aten():
    conv = DepthwiseConv2d(24, 24, 7, 2, 3, groups=24, bias=False)
    plain = torch.nn.Conv2d(24, 24, 7, 2, 3, groups=24, bias=False)
    assert isinstance(conv, torch.nn.Conv2d)
    assert list(conv.state_dict()) == list(plain.state_dict()) == ["weight"]
    plain.load_state_dict(conv.state_dict())
    x = torch.randn(1, 24, 16, 16)
    assert _fast(conv.train()(x))
    y = conv.eval()(x)
    assert not _fast(y)
    torch.testing.assert_close(y, plain(x))
    scripted = torch.jit.script(conv)
    torch.testing.assert_close(scripted(x), y)
    traced = torch.jit.trace(conv.train(), x)
    torch.testing.assert_close(traced(x), y)


def test_xs_model_gradients_equal_with_and_without(monkeypatch):
    torch.manual_seed(0)
    model = create_model("litepose-xs").to(memory_format=torch.channels_last).train()
    assert sum(isinstance(m, DepthwiseConv2d) for m in model.modules()) > 30
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)

    def grads(flag: str, threads: int) -> dict[str, torch.Tensor]:
        monkeypatch.setenv(fastconv.ENV_ENABLE, flag)
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            model.zero_grad(set_to_none=True)
            out = model(x)
            sum((o**2).mean() for o in out).backward()
        finally:
            torch.set_num_threads(old)
        return {k: p.grad.clone() for k, p in model.named_parameters()}

    calls = []
    kernel_grad = fastconv.depthwise_weight_grad
    monkeypatch.setattr(fastconv, "depthwise_weight_grad", lambda *a: calls.append(1) or kernel_grad(*a))
    ref, fast = grads("0", 2), grads("1", 2)
    assert len(calls) == sum(isinstance(m, DepthwiseConv2d) for m in model.modules())
    # float32 noise floor: aten itself with another thread count (BatchNorm weight gradients are
    # sums that cancel to ~1e-6 and move by a few % with the summation order)
    other = grads("0", 1)
    for k in ref:
        scale = ref[k].abs().max()
        noise = (other[k] - ref[k]).abs().max()
        diff = (fast[k] - ref[k]).abs().max()
        assert diff <= max(1e-4 * scale, 2 * noise), (k, diff, scale, noise)


def test_failed_compile_warns_once_and_falls_back(monkeypatch, tmp_path):
    monkeypatch.setenv(native.ENV_CACHE, str(tmp_path))
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_lib_failed", False)
    monkeypatch.setattr(native, "CFLAGS", (*native.CFLAGS, "-litepose-no-such-flag"))
    x, wt, gy = _case(1, 8, 8, 8, 7, 1, "cl")
    w = wt.clone().requires_grad_()
    with pytest.warns(RuntimeWarning, match="fast CPU training kernels are unavailable"):
        y = depthwise_conv2d(x, w)
    assert not _fast(y)
    y.backward(gy)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not _fast(depthwise_conv2d(x, w))  # no second warning
    assert not list(tmp_path.rglob("*.so"))  # no half-written library left behind
    assert kernel_status("cpu").startswith("fast kernels: off (the kernels did not compile or load (")


def test_no_compiler_is_silent(monkeypatch):
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_lib_failed", False)
    monkeypatch.setattr(native, "_compiler", lambda: None)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, wt, _ = _case(1, 8, 8, 8, 7, 1, "cl")
        assert not _fast(depthwise_conv2d(x, wt.requires_grad_()))


def test_cached_library_is_reused(monkeypatch):
    folder = native._cache_dir()
    libs = sorted(folder.glob("kernels-*.so"))
    assert len(libs) == 1 and not list(folder.glob(".*"))  # one library, no temporary left
    mtime = libs[0].stat().st_mtime_ns
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_compile", lambda *a: pytest.fail("recompiled although cached"))
    assert native.load() is not None
    assert libs[0].stat().st_mtime_ns == mtime


def test_broken_cached_library_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv(native.ENV_CACHE, str(tmp_path))
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_lib_failed", False)
    path = tmp_path / "kernels" / native.library_name(native._compiler())
    path.parent.mkdir()
    path.write_bytes(b"not a shared library")
    assert native.load() is not None
    assert path.stat().st_size > 1000


def test_float64_default_dtype_does_not_corrupt_the_weight_gradient():
    """torch.set_default_dtype(torch.float64) once made the kernel's output a float64 tensor that it
    filled with float32 values (NaN or garbage gradients); the output is float32 whatever the default."""
    x, wt, gy = _case(2, 24, 12, 12, 7, 1, "cl")
    conv = DepthwiseConv2d(24, 24, 7, padding=3, groups=24, bias=False)
    with torch.no_grad():
        conv.weight.copy_(wt)
    ref = F.conv2d(x, wt.clone().requires_grad_(), None, 1, 3, 1, 24)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        y = conv(x)
        assert _fast(y)
        y.backward(gy)
    finally:
        torch.set_default_dtype(old)
    expected = torch.autograd.grad(ref, ref.grad_fn.next_functions[1][0].variable, gy)[0]
    assert conv.weight.grad.dtype == torch.float32 and torch.isfinite(conv.weight.grad).all()
    _close(conv.weight.grad, expected)


# -- the kernel cache: rebuilds, unsafe folders, read-only homes, the status line -------------------


@pytest.fixture
def fresh_native(monkeypatch):
    """native.load() starts over; compiling copies the module fixture's library (no compiler run)."""
    import shutil

    cc = native._compiler()
    prebuilt = native._cache_dir() / native.library_name(cc)
    assert prebuilt.is_file()
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_lib_failed", False)
    monkeypatch.setattr(native, "_reason", None, raising=False)
    monkeypatch.setattr(native, "_compile", lambda cc, out: shutil.copyfile(prebuilt, out))
    return cc, prebuilt


def test_rebuild_of_a_loaded_path_loads_the_new_library(fresh_native, monkeypatch, tmp_path):
    """A cached library that loads but is stale (another ABI) is rebuilt at its path; this process
    must then use the new build, not the handle the dynamic loader keeps for that file name."""
    import subprocess
    import warnings

    cc, prebuilt = fresh_native
    monkeypatch.setenv(native.ENV_CACHE, str(tmp_path))
    stub = tmp_path / "stale.c"
    stub.write_text(
        "int litepose_dw_abi_version(void) { return 1; }\nint litepose_bn_abi_version(void) { return 1; }\n"
    )
    (tmp_path / "kernels").mkdir(mode=0o700)
    for path in (tmp_path / native.library_name(cc), tmp_path / "kernels" / native.library_name(cc)):
        subprocess.run([cc, "-shared", "-fPIC", "-o", str(path), str(stub)], check=True, capture_output=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert native.load() is not None
    assert native.load().litepose_dw_abi_version() == native._ABI["litepose_dw_abi_version"]
    assert (tmp_path / "kernels" / native.library_name(cc)).read_bytes() == prebuilt.read_bytes()


def test_kernel_cache_other_users_could_change_is_not_used(fresh_native, monkeypatch, tmp_path):
    """A kernel folder writable by others is never loaded from (a library planted there would run as
    this user): a warning, and the per-user temporary folder instead. A read-only home uses that
    same folder, silently, and no new temporary folder is left behind by each run."""
    import errno
    import tempfile
    import warnings

    cc, prebuilt = fresh_native
    name = native.library_name(cc)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    shared = tmp_path / "shared"
    (shared / "kernels").mkdir(parents=True)
    os.chmod(shared / "kernels", 0o777)
    (shared / "kernels" / name).write_bytes(b"planted")
    (shared / name).write_bytes(b"planted")
    monkeypatch.setenv(native.ENV_CACHE, str(shared))
    with pytest.warns(RuntimeWarning, match=r"kernels are not loaded: other users can write to it \(mode 777\)"):
        assert native.load() is not None
    own = temp / f"litepose-kernels-{os.getuid()}"
    assert (own / name).read_bytes() == prebuilt.read_bytes() and (own.stat().st_mode & 0o777) == 0o700
    assert (shared / "kernels" / name).read_bytes() == b"planted"

    read_only = tmp_path / "ro"
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*a, dir=None, **k):  # noqa: A002 (tempfile's own name)
        if dir is not None and str(dir).startswith(str(read_only)):
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real_mkstemp(*a, dir=dir, **k)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setenv(native.ENV_CACHE, str(read_only))
    for _ in range(2):  # two "runs"
        monkeypatch.setattr(native, "_lib", None)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert native.load() is not None
    assert [p.name for p in temp.iterdir()] == [own.name]


def test_status_line_says_whether_the_fast_kernels_are_on(fresh_native, monkeypatch):
    assert kernel_status("cpu") == "fast kernels: on (compiled depthwise conv, BatchNorm)"
    assert kernel_status("cpu", supernet=True).startswith("fast kernels: on (compiled depthwise conv; BatchNorm")
    assert kernel_status("cuda") == "fast kernels: off (training on cuda; they are CPU kernels)"
    monkeypatch.setenv("LITEPOSE_FAST_BN", "0")
    assert kernel_status("cpu") == "fast kernels: on (compiled depthwise conv; BatchNorm off: LITEPOSE_FAST_BN=0)"
    monkeypatch.setenv("LITEPOSE_FAST_CONV", "0")
    assert kernel_status("cpu") == "fast kernels: off (LITEPOSE_FAST_CONV=0 and LITEPOSE_FAST_BN=0)"
    monkeypatch.delenv("LITEPOSE_FAST_CONV")
    monkeypatch.delenv("LITEPOSE_FAST_BN")
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_compiler", lambda: None)
    assert kernel_status("cpu") == "fast kernels: off (no C compiler (cc, gcc or clang) on PATH)"
