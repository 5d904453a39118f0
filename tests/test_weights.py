"""Pretrained weights: mmcv-style metadata under weights_only, code in pickles refused, and named
weights downloaded from a loopback HTTPS server (hash check, cache, failures, https only, the CLI);
the registry file's limits; and the named OpenVINO IR without litepose metadata (a fixture IR built
as its publisher describes the real one)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import socket
import ssl
import threading
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared

import litepose
from litepose.cli import main
from litepose.models import CheckpointError, WeightsError, download_weights, load_checkpoint
from litepose.models.weights import ENV_REGISTRY, ENV_URL, find_weights

DATA = Path(__file__).parent / "data"
#: A self-signed certificate for 127.0.0.1 (valid 2000-2100) and its key: the loopback server's, trusted
#: by the tests through SSL_CERT_FILE. Test data only: it guards nothing.
CERT, KEY = DATA / "loopback-cert.pem", DATA / "loopback-key.pem"

# -- what weights_only=True lets through --------------------------------------------------------


def _tiny_state_dict() -> dict[str, torch.Tensor]:
    return {"w": torch.arange(4.0)}


def _rewrite_pickle(path: Path, edit) -> None:
    """Rewrite ``data.pkl`` inside a torch zip checkpoint with ``edit(bytes) -> bytes``."""
    with zipfile.ZipFile(path) as z:
        entries = [(i.filename, z.read(i)) for i in z.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            z.writestr(name, edit(data) if name.endswith("/data.pkl") else data)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("spelling", ["numpy.core.multiarray", "numpy._core.multiarray"])
def test_numpy_scalars_in_meta_load_under_both_spellings(tmp_path, spelling) -> None:
    """mmcv writes numpy scalars into meta (hook_msgs.best_score); numpy 1 spells the module
    numpy.core.multiarray, numpy 2 numpy._core.multiarray. Both load, with weights_only=True."""
    before = set(map(str, torch.serialization.get_safe_globals()))
    path = tmp_path / "mmcv.pth"
    meta = {"hook_msgs": {"best_score": np.float64(0.412), "best_epoch": np.int64(300)}, "epoch": 300}
    torch.save({"meta": meta, "state_dict": _tiny_state_dict()}, path)
    written = next(s for s in (b"numpy._core.multiarray", b"numpy.core.multiarray") if s in path.read_bytes())
    # protocol 2 GLOBAL opcodes are plain text: write the other numpy's spelling by hand
    _rewrite_pickle(path, lambda pkl: pkl.replace(written + b"\nscalar", spelling.encode() + b"\nscalar"))
    assert (spelling + "\nscalar").encode() in path.read_bytes()

    from litepose.models.checkpoint import _torch_load

    obj = _torch_load(path)
    assert obj["meta"]["hook_msgs"]["best_score"] == pytest.approx(0.412)
    assert int(obj["meta"]["hook_msgs"]["best_epoch"]) == 300
    # ... and the whole mmcv file loads into a model: a real layout under the same meta
    sd = torch.load(shared("ref/mmpose_convmodule_XS_17.pth"), weights_only=True)["state_dict"]
    full = tmp_path / "full.pth"
    torch.save({"meta": meta, "state_dict": sd, "optimizer": {"state": {}, "param_groups": []}}, full)
    _rewrite_pickle(full, lambda pkl: pkl.replace(written + b"\nscalar", spelling.encode() + b"\nscalar"))
    _, info = load_checkpoint(full)
    assert info["layout"] == "mmpose-convmodule" and info["arch"] == "litepose-xs"
    assert set(map(str, torch.serialization.get_safe_globals())) == before  # numpy allowed for the load only


class _Payload:
    """Pickles as a call of os.mkdir: unpickling it without restriction creates a folder."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_a_pickle_that_calls_code_is_refused_without_running_it(tmp_path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"meta": {"x": _Payload(marker)}, "state_dict": _tiny_state_dict()}, evil)
    with pytest.raises(CheckpointError, match=r"evil\.pth: its pickle calls code \(.*mkdir\)"):
        load_checkpoint(evil)
    assert not marker.exists()
    # the same payload under a numpy name it imitates is refused too: only scalar/dtype are allowed
    _rewrite_pickle(
        evil, lambda pkl: pkl.replace(b"posix\nmkdir", b"numpy\nload").replace(b"os\nmkdir", b"numpy\nload")
    )
    with pytest.raises(CheckpointError, match="calls code"):
        load_checkpoint(evil)
    assert not marker.exists()


# -- a loopback weights server ------------------------------------------------------------------


class _Server:
    """Serves ``files`` on 127.0.0.1 and records every request; ``truncate`` names files whose
    transfer stops half-way (the full Content-Length announced, then the connection closed);
    ``redirects`` maps a name to the URL it answers 302 with. HTTPS (the loopback certificate)
    unless ``tls`` is False."""

    def __init__(self, tls: bool = True) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.truncate: set[str] = set()
        self.redirects: dict[str, str] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                name = self.path.lstrip("/")
                outer.requests.append(name)
                if name in outer.redirects:
                    self.send_response(302)
                    self.send_header("Location", outer.redirects[name])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = outer.files.get(name)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if name in outer.truncate else data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(CERT, KEY)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    """The loopback HTTPS server, its certificate trusted (SSL_CERT_FILE) for the test."""
    monkeypatch.setenv("SSL_CERT_FILE", str(CERT))
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def plain_http():
    """A loopback server of plain http (what must never be used)."""
    s = _Server(tls=False)
    yield s
    s.close()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh $LITEPOSE_HOME; the weights cache is home/weights."""
    h = tmp_path / "home"
    monkeypatch.setenv("LITEPOSE_HOME", str(h))
    return h


def _registry(tmp_path: Path, monkeypatch, entries: dict) -> None:
    p = tmp_path / "registry.json"
    p.write_text(json.dumps(entries))
    monkeypatch.setenv(ENV_REGISTRY, str(p))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cache_files(home: Path) -> list[str]:
    d = home / "weights"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_download_checks_the_hash_and_caches(tmp_path, monkeypatch, home, server) -> None:
    data = os.urandom(300_000)
    server.files["tiny.pth"] = data
    _registry(tmp_path, monkeypatch, {"tiny": {"file": "tiny.pth", "sha256": _sha(data)[:8]}})
    monkeypatch.setenv(ENV_URL, server.url + "/")  # a trailing slash is fine
    path = download_weights("tiny", progress=False)
    assert path == home / "weights" / "tiny.pth" and path.read_bytes() == data
    assert server.requests == ["tiny.pth"] and _cache_files(home) == ["tiny.pth"]  # no temporary left
    assert download_weights("TINY", progress=False) == path  # cache hit: no second request
    assert server.requests == ["tiny.pth"]
    assert [w["cached"] for w in litepose.list_weights() if w["name"] == "tiny"] == [True]


def test_hash_mismatch_is_refused_and_nothing_is_cached(tmp_path, monkeypatch, home, server) -> None:
    server.files["tiny.pth"] = b"not the published file" * 1000
    _registry(tmp_path, monkeypatch, {"tiny": {"file": "tiny.pth", "sha256": "0123abcd"}})
    monkeypatch.setenv(ENV_URL, server.url)
    with pytest.raises(
        WeightsError, match=r"tiny: the file downloaded from https://127.*tiny\.pth has sha256 .*0123abcd.*deleted"
    ):
        download_weights("tiny", progress=False)
    assert _cache_files(home) == []


def test_interrupted_transfer_leaves_no_partial_file(tmp_path, monkeypatch, home, server) -> None:
    data = os.urandom(200_000)
    server.files["tiny.pth"] = data
    server.truncate.add("tiny.pth")
    _registry(tmp_path, monkeypatch, {"tiny": {"file": "tiny.pth", "sha256": _sha(data)[:12]}})
    monkeypatch.setenv(ENV_URL, server.url)
    with pytest.raises(WeightsError, match=r"interrupted after 100000 of 200000 bytes"):
        download_weights("tiny", progress=False)
    assert _cache_files(home) == []
    server.truncate.clear()  # the next try succeeds
    assert download_weights("tiny", progress=False).read_bytes() == data


def test_unreachable_server_and_http_errors_name_the_url_and_the_cache_path(tmp_path, monkeypatch, home, server):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(ENV_URL, f"https://127.0.0.1:{port}/mirror")
    dest = home / "weights" / "litepose_xs_coco_256x256-02c29c82_20220714.pth"
    url = f"https://127.0.0.1:{port}/mirror/litepose_xs_coco_256x256-02c29c82_20220714.pth"
    with pytest.raises(WeightsError) as e:
        load_checkpoint("litepose-xs-coco")
    msg = str(e.value)
    assert url in msg and str(dest) in msg and "refused" in msg.lower() and "\n" not in msg
    assert _cache_files(home) == []
    monkeypatch.setenv(ENV_URL, server.url)  # the server answers 404
    with pytest.raises(WeightsError, match=r"HTTP 404.*copy the file by hand to .*02c29c82"):
        download_weights("litepose-xs-coco", progress=False)


def test_names_resolve_after_paths_and_unknown_names_are_listed(tmp_path, monkeypatch, home) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(ENV_URL, f"https://127.0.0.1:{port}")  # any download would fail
    monkeypatch.chdir(tmp_path)
    Path("litepose-xs-coco").symlink_to(shared("ref/model_XS_17.pth"))  # an existing path wins
    _, info = load_checkpoint("litepose-xs-coco")
    assert info["layout"] == "original" and info["path"] == "litepose-xs-coco"
    with pytest.raises(
        WeightsError, match=r"architecture, not trained weights.*create_model\('litepose-xs'\).*litepose-s-coco"
    ):
        load_checkpoint("litepose-xs")
    with pytest.raises(FileNotFoundError, match=r"nope\.pth does not exist.*litepose-auto-s-coco"):
        litepose.Predictor("nope.pth")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mine": {"file": "../x.pth", "sha256": "abcdef12"}}))
    monkeypatch.setenv(ENV_REGISTRY, str(bad))
    with pytest.raises(WeightsError, match=r"bad\.json: entry 'mine': 'file' must be a plain file name"):
        load_checkpoint("mine")


# -- the command line ---------------------------------------------------------------------------


def test_weights_verb_lists_the_published_three_and_downloads(tmp_path, monkeypatch, home, server, capsys) -> None:
    assert main(["weights", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["weights"]
    names = ["litepose-xs-coco", "litepose-s-coco", "litepose-auto-s-coco"]
    assert [r["name"] for r in rows] == names
    assert [r["ap"] for r in rows] == [41.2, 57.2, None] and not any(r["cached"] for r in rows)
    assert [r["cache_state"] for r in rows] == ["absent"] * 3
    assert all(r["sha256"] in r["file"] for r in rows[:2])  # mmpose: the 8 digits its file names carry
    assert all(r["source"] and r["license"] for r in rows)
    assert main(["weights"]) == 0
    table = capsys.readouterr().out
    assert all(n in table for n in names) and "not measured by litepose" in table

    data = b"private weights" * 100
    server.files["mine.pth"] = data
    _registry(tmp_path, monkeypatch, {"mine": {"file": "mine.pth", "sha256": _sha(data), "base_url": server.url}})
    assert main(["weights", "download", "mine"]) == 0
    assert str(home / "weights" / "mine.pth") in capsys.readouterr().out
    assert main(["weights", "download", "nothing-here"]) == 2
    assert "unknown weights name 'nothing-here'" in capsys.readouterr().err


def test_predict_downloads_verifies_caches_and_runs_then_reuses(tmp_path, monkeypatch, home, server, capsys) -> None:
    """The issue's end-to-end check: a registry entry for a shared fixture with its true sha256
    prefix, served by a local server through LITEPOSE_WEIGHTS_URL."""
    fixture = shared("ref/mmpose_convmodule_XS_17.pth")
    data = fixture.read_bytes()
    server.files[fixture.name] = data
    _registry(
        tmp_path, monkeypatch,
        {"test-xs": {"file": fixture.name, "sha256": _sha(data)[:8], "dataset": "random", "base_url": "http://unused"}},
    )  # fmt: skip
    monkeypatch.setenv(ENV_URL, server.url)
    image = str(shared("ref/images/img_480x640.png"))
    args = ["predict", image, "--weights", "test-xs", "--no-flip", "--threads", "1"]
    assert main([*args, "--output", str(tmp_path / "a")]) == 0
    assert "1 image(s)" in capsys.readouterr().out
    assert server.requests == [fixture.name] and (tmp_path / "a" / "img_480x640.jpg").is_file()
    assert (home / "weights" / fixture.name).read_bytes() == data
    assert main([*args, "--output", str(tmp_path / "b")]) == 0  # second run: from the cache
    assert server.requests == [fixture.name]
    predictor = litepose.Predictor("test-xs", flip_test=False)
    assert predictor.keypoints.num_joints == 17 and server.requests == [fixture.name]
    from litepose.engine.trainer import load_backbone  # train --pretrained

    assert load_backbone(litepose.create_model("litepose-xs"), "test-xs") > 0
    litepose.create_model("litepose-xs", weights="test-xs")
    assert server.requests == [fixture.name]

    monkeypatch.setenv(ENV_URL, server.url + "/gone")
    capsys.readouterr()
    code = main(["predict", image, "--weights", "litepose-s-coco", "--output", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "HTTP 404" in err and "litepose_s_coco_448x448-2bd10ac6_20220714.pth" in err


# -- #23 item 9: published names only, https only, honest cache state, registry limits ------------


def test_only_published_files_are_named() -> None:
    """The port's model card links no CrowdPose file: those names are gone; the IR's two files carry
    their full published sha256 and the pinned Hugging Face revision in their URLs."""
    from litepose.models.weights import BUILTIN

    assert find_weights("litepose-xs-crowdpose") is None and find_weights("litepose-s-crowdpose") is None
    assert sorted(BUILTIN) == ["litepose-auto-s-coco", "litepose-s-coco", "litepose-xs-coco"]
    ir = BUILTIN["litepose-auto-s-coco"]
    assert ir.backend == "openvino" and ir.input_size == 448 and ir.keypoints == "coco"
    assert [(f, len(h)) for f, h in ir.files()] == [
        ("litepose-auto-s-coco-fp32.xml", 64), ("litepose-auto-s-coco-fp32.bin", 64)
    ]  # fmt: skip
    rev = "https://huggingface.co/cansik/visiongraph/resolve/0de7ab36c9cf7d0843a1a19fd8c83db34a19d8a3"
    assert [ir.url_for(f) for f, _ in ir.files()] == [
        f"{rev}/litepose-auto-s-coco-fp32.xml",
        f"{rev}/litepose-auto-s-coco-fp32.bin",
    ]


def test_only_https_or_file_urls_are_used(tmp_path, monkeypatch, home, plain_http) -> None:
    data = b"weights over plain http" * 100
    plain_http.files["tiny.pth"] = data
    _registry(tmp_path, monkeypatch, {"tiny": {"file": "tiny.pth", "sha256": _sha(data), "base_url": plain_http.url}})
    with pytest.raises(WeightsError, match=r"tiny: its base_url http://127.* is not https: only https://"):
        download_weights("tiny", progress=False)
    monkeypatch.setenv(ENV_URL, plain_http.url)
    with pytest.raises(WeightsError, match=rf"tiny: {ENV_URL} http://127.* is not https"):
        download_weights("tiny", progress=False)
    assert plain_http.requests == [] and _cache_files(home) == []
    mirror = tmp_path / "mirror"  # file:// for a local mirror
    mirror.mkdir()
    (mirror / "tiny.pth").write_bytes(data)
    monkeypatch.setenv(ENV_URL, mirror.as_uri())
    assert download_weights("tiny", progress=False).read_bytes() == data


def test_a_redirect_from_https_to_http_is_refused(tmp_path, monkeypatch, home, server, plain_http) -> None:
    data = os.urandom(50_000)
    plain_http.files["tiny.pth"] = data
    server.files["moved.pth"] = data
    server.redirects["tiny.pth"] = plain_http.url + "/tiny.pth"
    _registry(tmp_path, monkeypatch, {"tiny": {"file": "tiny.pth", "sha256": _sha(data)}})
    monkeypatch.setenv(ENV_URL, server.url)
    with pytest.raises(
        WeightsError, match=r"tiny: cannot download https://.*HTTP 302 .*redirect to http://127.*refused"
    ):
        download_weights("tiny", progress=False)
    assert plain_http.requests == [] and _cache_files(home) == []
    server.redirects["tiny.pth"] = server.url + "/moved.pth"  # https -> https is followed
    assert download_weights("tiny", progress=False).read_bytes() == data
    assert server.requests == ["tiny.pth", "tiny.pth", "moved.pth"]


def test_a_cached_file_that_fails_its_hash_is_not_reported_cached(home, capsys) -> None:
    (home / "weights").mkdir(parents=True)
    (home / "weights" / "litepose_xs_coco_256x256-02c29c82_20220714.pth").write_bytes(b"not the checkpoint")
    assert main(["weights", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["weights"][0]
    assert row["name"] == "litepose-xs-coco" and row["cached"] is False and row["cache_state"] == "mismatch"
    assert main(["weights"]) == 0
    assert "no (sha256 differs)" in capsys.readouterr().out
    with pytest.raises(WeightsError, match=r"has sha256 .*not the expected prefix 02c29c82"):
        download_weights("litepose-xs-coco", progress=False)


def test_registry_text_is_printed_with_control_characters_escaped(tmp_path, monkeypatch, home, capsys) -> None:
    evil = {"file": "e.pth", "sha256": "abcdef12", "dataset": "\x1b[2J\x1b]0;owned\x07", "source": "a\x9bb\x7f"}
    _registry(tmp_path, monkeypatch, {"red\x1b[31m": evil})
    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07\x9b\x7f")
    assert "red\\x1b[31m" in out and "\\x1b[2J\\x1b]0;owned\\x07" in out and "a\\x9bb\\x7f" in out
    assert main(["weights", "--json"]) == 0  # JSON escapes them itself; the values stay exact
    rows = json.loads(capsys.readouterr().out)["weights"]
    assert rows[-1]["name"] == "red\x1b[31m" and rows[-1]["dataset"] == evil["dataset"]


def test_a_registry_file_is_read_up_to_a_cap(tmp_path, monkeypatch) -> None:
    from litepose.models.weights import registry

    big = tmp_path / "big.json"
    big.write_text("{" + " " * (2 << 20) + "}")  # valid JSON, but no registry is 2 MiB large
    monkeypatch.setenv(ENV_REGISTRY, str(big))
    with pytest.raises(WeightsError, match=r"big\.json \(LITEPOSE_WEIGHTS_REGISTRY\): larger than 1024 KiB"):
        registry()
    if Path("/dev/zero").exists():  # unbounded: read up to the cap, then refused
        monkeypatch.setenv(ENV_REGISTRY, "/dev/zero")
        with pytest.raises(WeightsError, match=r"/dev/zero .*larger than"):
            registry()


def test_an_entry_fetches_and_checks_its_companion_files(tmp_path, monkeypatch, home, server) -> None:
    xml, binary = b"<net/>" * 10, os.urandom(30_000)
    server.files.update({"n.xml": xml, "n.bin": binary})
    entry = {"file": "n.xml", "sha256": _sha(xml), "companions": {"n.bin": _sha(binary)[:8]}, "backend": "openvino"}
    _registry(tmp_path, monkeypatch, {"net": dict(entry, companions={"n.bin": "0badc0de"})})
    monkeypatch.setenv(ENV_URL, server.url)
    with pytest.raises(WeightsError, match=r"net: the file downloaded from https://.*/n\.bin has sha256 .*0badc0de"):
        download_weights("net", progress=False)
    assert _cache_files(home) == ["n.xml"]  # the verified main file stays, the wrong .bin does not
    assert [w["cache_state"] for w in litepose.list_weights() if w["name"] == "net"] == ["partial"]
    _registry(tmp_path, monkeypatch, {"net": entry})
    assert download_weights("net", progress=False) == home / "weights" / "n.xml"
    assert _cache_files(home) == ["n.bin", "n.xml"] and (home / "weights" / "n.bin").read_bytes() == binary
    assert [w["cached"] for w in litepose.list_weights() if w["name"] == "net"] == [True]
    with pytest.raises(
        WeightsError, match=r"'net' is an exported network \(n\.xml, run by openvino\), not a checkpoint"
    ):
        load_checkpoint("net")
    _registry(tmp_path, monkeypatch, {"net": dict(entry, backend="torch")})
    with pytest.raises(WeightsError, match=r"'backend' must be one of openvino, onnxruntime, torchscript"):
        find_weights("net")


# -- the named OpenVINO IR without litepose metadata ---------------------------------------------


class _RawBgrLitePose(torch.nn.Module):
    """A LitePose as the published LitePose-Auto-S IR is described: raw BGR 0..255 in (the channel
    order, mean and std inside the graph), outputs in the other order than litepose's."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        from litepose.normalization import IMAGENET

        self.register_buffer("mean", torch.tensor(IMAGENET.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET.std).view(1, 3, 1, 1))

    def forward(self, bgr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (bgr.flip(1) / 255 - self.mean) / self.std
        low, high = self.net(x)
        return high, low  # 1/2 resolution first


def _bare_ir(net: torch.nn.Module, path: Path, size: int = 448) -> Path:
    """``net`` as an OpenVINO IR of a fixed (1, 3, size, size) input, no litepose metadata, outputs
    renamed and reordered."""
    import openvino as ov

    onnx_path = path.with_suffix(".onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
        torch.onnx.export(
            _RawBgrLitePose(net).eval(), (torch.zeros(1, 3, size, size),), str(onnx_path), dynamo=False,
            opset_version=17, input_names=["image"], output_names=["stage1_heatmaps", "stage0_output"],
        )  # fmt: skip
    ov.save_model(ov.convert_model(str(onnx_path)), str(path), compress_to_fp16=False)
    onnx_path.unlink()
    return path


@pytest.fixture(scope="module")
def xs_net() -> torch.nn.Module:
    torch.set_num_threads(1)
    return load_checkpoint(shared("ref/model_XS_17.pth"))[0].eval()


@pytest.fixture(scope="module")
def bare_ir(xs_net, tmp_path_factory) -> Path:
    pytest.importorskip("openvino")
    return _bare_ir(xs_net, tmp_path_factory.mktemp("ir") / "auto-s-like.xml")


def test_an_ir_without_metadata_is_read_by_its_output_shapes(xs_net, bare_ir) -> None:
    """Outputs found by shape, raw BGR fed, no normalisation of litepose's: the maps equal the torch
    model's on litepose's normal input (the same letterboxed image), within 1e-4."""
    import openvino as ov

    from litepose import preprocess
    from litepose.runtime import open_backend

    m = ov.Core().read_model(str(bare_ir))
    assert [o.get_any_name() for o in m.outputs] == ["stage1_heatmaps", "stage0_output"]
    assert not m.has_rt_info(["litepose"])
    backend = open_backend(bare_ir)
    assert backend.name == "openvino" and backend.raw_bgr and backend.static_size == 448 and backend.batch == 1
    info = backend.info
    assert (info.num_joints, info.keypoints.name, info.input_size) == (17, "coco", 448)
    assert "raw BGR input" in backend.describe()
    image = np.random.default_rng(3).integers(0, 256, (300, 520, 3), dtype=np.uint8)
    batch = preprocess.resize_image(image, preprocess.square_geometry(300, 520, 448))[None]
    x = backend.inputs(batch)
    assert x.dtype == np.float32 and x.shape == (1, 3, 448, 448) and x.max() > 200  # raw 0..255, BGR
    np.testing.assert_array_equal(x[0, 0], batch[0, :, :, 2])
    reference = open_backend(xs_net, "torch-eager", device="cpu")
    want, want_flipped = reference.run(reference.inputs(batch), flip=True)
    got, got_flipped = backend.run(x, flip=True)  # a batch of 2 through a batch-1 network, in parts
    assert [g.shape for g in got] == [(1, 34, 112, 112), (1, 17, 224, 224)]
    for g, w in zip([*got, *got_flipped], [*want, *want_flipped]):
        np.testing.assert_allclose(g, w.numpy(), atol=1e-4)


def test_the_predictor_runs_a_named_ir_and_finds_the_torch_models_people(
    xs_net, bare_ir, tmp_path, monkeypatch, home, capsys
) -> None:
    """A registry name of an IR (two files, both hash-checked, from a file:// mirror) through
    Predictor and 'predict --weights': the same people as the torch model with litepose's own
    preprocessing (a 448x448 image: no letterbox either way), keypoints within 0.05 px."""
    xml, binary = bare_ir.read_bytes(), bare_ir.with_suffix(".bin").read_bytes()
    _registry(
        tmp_path, monkeypatch,
        {"auto-s-like": {"file": bare_ir.name, "sha256": _sha(xml), "companions": {"auto-s-like.bin": _sha(binary)},
                         "backend": "openvino", "base_url": bare_ir.parent.as_uri()}},
    )  # fmt: skip
    predictor = litepose.Predictor("auto-s-like", detection_threshold=0.2, threads=1)
    assert predictor.backend.raw_bgr and predictor.input_size == 448
    assert _cache_files(home) == ["auto-s-like.bin", "auto-s-like.xml"]
    from litepose.media import read_image

    image = read_image(sorted(shared("data/coco_sample").glob("*.jpg"))[0], frame="upright")
    import cv2

    image = cv2.resize(image, (448, 448), interpolation=cv2.INTER_AREA)
    reference = litepose.Predictor(xs_net, input_size=448, detection_threshold=0.2, device="cpu")
    a, b = reference(image), predictor(image)
    assert len(a) == len(b) > 0
    for pa, pb in zip(a, b):
        np.testing.assert_allclose(pa["keypoints"], pb["keypoints"], atol=0.05)
        assert abs(pa["score"] - pb["score"]) < 1e-4
    cv2.imwrite(str(tmp_path / "square.png"), image[:, :, ::-1])
    args = ["predict", str(tmp_path / "square.png"), "--weights", "auto-s-like", "--no-flip", "--json"]
    assert main([*args, "--output", str(tmp_path / "out")]) == 0
    assert json.loads(capsys.readouterr().out)
    bench = ["benchmark", "--weights", "auto-s-like", "--runs", "1", "--warmup", "0", "--no-flip", "--json"]
    assert main(bench) == 0  # benchmark takes the name too: its verified file, on its backend
    assert [r["backend"] for r in json.loads(capsys.readouterr().out)["rows"]] == ["openvino"]
    with pytest.raises(WeightsError, match="not a checkpoint"):
        litepose.create_model("litepose-xs", weights="auto-s-like")


def test_an_ir_without_metadata_whose_outputs_are_not_liteposes_is_refused(tmp_path) -> None:
    ov = pytest.importorskip("openvino")
    from litepose.runtime import open_backend

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 17, 3, stride=2, padding=1))  # one output only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.zeros(1, 3, 64, 64),), str(tmp_path / "o.onnx"), dynamo=False)
    ov.save_model(ov.convert_model(str(tmp_path / "o.onnx")), str(tmp_path / "other.xml"))
    with pytest.raises(ValueError, match=r"other\.xml: carries no litepose metadata, and its outputs .* not two"):
        open_backend(tmp_path / "other.xml")
    # by shape: 2K channels at 1/4 and K at 1/2, in either order; wrong sizes or channels refused
    from litepose.runtime.ov_backend import litepose_outputs

    assert litepose_outputs([1, 3, 448, 448], [[1, 17, 224, 224], [1, 34, 112, 112]]) == (17, 1, 0)
    assert litepose_outputs([None, 3, None, None], [[None, 28, None, None], [None, 14, None, None]]) == (14, 0, 1)
    for outs in ([[1, 34, 224, 224], [1, 17, 112, 112]], [[1, 34, 112, 112], [1, 16, 224, 224]]):
        with pytest.raises(ValueError, match="not LitePose's"):
            litepose_outputs([1, 3, 448, 448], outs)
