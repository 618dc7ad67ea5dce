"""Weights registry: resolution order, hashes, hash records in the cache, offline mode, download, import, CLI."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import threading
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from inpaintbench import cli_weights, file_hashes
from inpaintbench import weights as W
from inpaintbench.errors import UnknownNameError, WeightsError

PAYLOAD = b"inpaintbench test weights " * 1000
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def spec(isolated_home: Path):
    """A registered test spec (published sha256, an unreachable URL), removed afterwards."""
    s = W.WeightSpec(id="test-net", filename="test-net.pth", urls=("https://example.invalid/test-net.pth",),
                     sha256=DIGEST, size=len(PAYLOAD), licence="test", description="test file")
    W.register_weights(s)
    yield s
    W.unregister_weights(s.id)


@pytest.fixture
def manual_spec(isolated_home: Path):
    """Like a MAT OneDrive checkpoint: no hash published, no URL, manual instructions."""
    s = W.WeightSpec(id="test-manual", filename="manual.pkl", urls=(), sha256=None,
                     manual_instructions="download it from the project's OneDrive share")
    W.register_weights(s)
    yield s
    W.unregister_weights(s.id)


def _write(path: Path, data: bytes = PAYLOAD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_builtin_entries_have_real_hashes_and_torchvision_prefixes():
    ids = {s.id for s in W.list_weights()}
    assert {"inception-tf", "inception-stylegan2", "torchvision-alexnet", "torchvision-vgg16",
            "torchvision-vgg19"} <= ids
    for s in W.list_weights():
        if s.sha256 is not None:
            assert re.fullmatch(r"[0-9a-f]{64}", s.sha256)
        # torchvision/torch.hub file names carry the first hex digits of the sha256
        m = re.search(r"-([0-9a-f]{8})\.pth$", s.filename)
        if m:
            assert (s.sha256 or s.sha256_prefix).startswith(m.group(1)), s.id
        # either fetchable over https, or (MAT's OneDrive shares) explained by manual instructions
        assert all(u.startswith("https://") for u in s.urls), s.id
        assert s.urls or s.manual_instructions, s.id
    assert W.get_weight_spec("torchvision-vgg19").sha256 is None  # not pinned: prefix + record


def test_register_conflicts_and_validation(spec: W.WeightSpec):
    W.register_weights(spec)  # identical: no-op
    with pytest.raises(ValueError):
        W.register_weights(W.WeightSpec(id=spec.id, filename="other.pth"))
    with pytest.raises(ValueError):
        W.WeightSpec(id="Bad Id", filename="x")
    with pytest.raises(ValueError):
        W.WeightSpec(id="x", filename="a/b.pth")
    with pytest.raises(UnknownNameError):
        W.get_weight_spec("no-such-weights")


def test_resolve_from_home_then_env_override(spec: W.WeightSpec, isolated_home: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, no_network: list[str]):
    other = _write(tmp_path / "elsewhere" / "my-copy.pth")
    monkeypatch.setenv("INPAINTBENCH_WEIGHT_TEST_NET", str(other))
    r = W.resolve_weights("test-net")
    assert (r.path, r.source, r.verified, r.sha256) == (other, "env", True, DIGEST)
    home_file = _write(isolated_home / "weights" / "test-net.pth")
    r = W.resolve_weights("test-net")  # the cache folder comes first
    assert (r.path, r.source) == (home_file, "home")
    wdir_file = _write(tmp_path / "wdir" / "test-net.pth")
    r = W.resolve_weights("test-net", weights_dir=tmp_path / "wdir")
    assert (r.path, r.source) == (wdir_file, "weights_dir")
    assert no_network == []


def test_env_override_to_missing_file_is_an_error(spec: W.WeightSpec, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(W.env_override_name("test-net"), "/nonexistent/file.pth")
    with pytest.raises(WeightsError, match="INPAINTBENCH_WEIGHT_TEST_NET"):
        W.resolve_weights("test-net", offline=True)


def test_hash_mismatch_refused_unless_allowed(spec: W.WeightSpec, tmp_path: Path):
    _write(tmp_path / "test-net.pth", b"something else")
    with pytest.raises(WeightsError, match="expected " + DIGEST):
        W.resolve_weights("test-net", weights_dir=tmp_path, offline=True)
    r = W.resolve_weights("test-net", weights_dir=tmp_path, offline=True, allow_unverified=True)
    assert r.verified == "unverified"
    assert r.sha256 == hashlib.sha256(b"something else").hexdigest()
    assert r.to_manifest()["verified"] == "unverified"


def test_hash_is_cached_in_the_home_until_file_changes(spec: W.WeightSpec, tmp_path: Path, isolated_home: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    path = _write(tmp_path / "test-net.pth")
    calls = []
    real = file_hashes.sha256_file
    monkeypatch.setattr(file_hashes, "sha256_file", lambda p: calls.append(p) or real(p))
    for _ in range(3):
        assert W.resolve_weights("test-net", weights_dir=tmp_path).verified is True
    assert len(calls) == 1
    # The record lives in the cache directory, keyed by the resolved path; nothing is written beside the file.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "test-net.pth"]
    (record,) = (isolated_home / "cache" / "hashes").glob("*.json")
    data = json.loads(record.read_text())
    st = path.stat()
    assert data["path"] == str(path.resolve()) and data["sha256"] == DIGEST
    assert (data["size"], data["mtime_ns"], data["ino"], data["ctime_ns"]) == (
        st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    assert W.recorded_sha256(path) == DIGEST
    # Same size, new content and mtime: re-hashed and caught.
    path.write_bytes(b"X" + PAYLOAD[1:])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(WeightsError):
        W.resolve_weights("test-net", weights_dir=tmp_path)
    assert len(calls) == 2


def test_offline_never_touches_the_network_and_explains(
    spec: W.WeightSpec, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, no_network: list[str]
):
    with pytest.raises(WeightsError) as info:
        W.resolve_weights("test-net", weights_dir=tmp_path, offline=True)
    text = str(info.value)
    for needle in ("test-net", str(tmp_path / "test-net.pth"), spec.urls[0], DIGEST,
                   "inpaintbench weights import test-net PATH", "INPAINTBENCH_WEIGHT_TEST_NET"):
        assert needle in text
    monkeypatch.setenv("INPAINTBENCH_OFFLINE", "1")
    with pytest.raises(WeightsError, match="offline"):
        W.resolve_weights("test-net", weights_dir=tmp_path)
    with pytest.raises(WeightsError, match="downloads disabled"):
        W.resolve_weights("test-net", weights_dir=tmp_path, offline=False, download=False)
    assert no_network == []
    # Not offline: the download really tries the network (proving the guard above is effective).
    with pytest.raises(AssertionError, match="network access attempted"):
        W.resolve_weights("test-net", weights_dir=tmp_path, offline=False, progress=False)
    assert no_network


def test_download_from_file_url_is_atomic_and_verified(isolated_home: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    src = _write(tmp_path / "served" / "w.bin")
    good = W.WeightSpec(id="test-dl", filename="w.pth", urls=(src.as_uri(),), sha256=DIGEST)
    W.register_weights(good)
    try:
        r = W.resolve_weights("test-dl", weights_dir=tmp_path / "cache", progress=False)
        assert (r.verified, r.source, r.path.read_bytes()) == (True, "download", PAYLOAD)
        assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["w.pth"]  # no sidecar beside it
        bad = W.WeightSpec(id="test-dl", filename="w2.pth", urls=(src.as_uri(),), sha256="0" * 64)
        W.register_weights(bad, replace=True)
        with pytest.raises(WeightsError, match="has sha256"):
            W.resolve_weights("test-dl", weights_dir=tmp_path / "cache", progress=False)
        assert not (tmp_path / "cache" / "w2.pth").exists()
        assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["w.pth"]  # no partial download left
    finally:
        W.unregister_weights("test-dl")


def test_download_over_http_with_progress(isolated_home: Path, tmp_path: Path):
    """A loopback HTTP server stands in for the real host (no external network)."""
    _write(tmp_path / "srv" / "w.bin")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(tmp_path / "srv"), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/w.bin"
        W.register_weights(W.WeightSpec(id="test-http", filename="h.pth",
                                        urls=("http://127.0.0.1:9/unreachable", url), sha256=DIGEST))
        r = W.resolve_weights("test-http", weights_dir=tmp_path / "cache", progress=True)
        assert r.verified is True and r.path.read_bytes() == PAYLOAD  # second URL after the first failed
    finally:
        server.shutdown()
        W.unregister_weights("test-http")


def test_import_checks_published_hash(spec: W.WeightSpec, tmp_path: Path, isolated_home: Path):
    good = _write(tmp_path / "dl" / "anything.bin")
    r = W.import_weights("test-net", good)
    assert r.path == isolated_home / "weights" / "test-net.pth" and r.verified is True
    assert r.path.read_bytes() == PAYLOAD and not r.path.is_symlink()
    assert W.resolve_weights("test-net", offline=True).verified is True
    bad = _write(tmp_path / "dl" / "bad.bin", b"bad")
    with pytest.raises(WeightsError, match="expects"):
        W.import_weights("test-net", bad, weights_dir=tmp_path / "w2")
    assert not (tmp_path / "w2" / "test-net.pth").exists()
    r = W.import_weights("test-net", bad, weights_dir=tmp_path / "w2", allow_unverified=True, copy=False)
    assert r.verified == "unverified" and r.path.is_symlink()


def test_unpublished_hash_is_recorded_on_import_and_enforced(manual_spec: W.WeightSpec, tmp_path: Path,
                                                             no_network: list[str]):
    with pytest.raises(WeightsError) as info:
        W.resolve_weights("test-manual", weights_dir=tmp_path)  # not offline, but no URL
    assert "OneDrive" in str(info.value) and "no download URL" in str(info.value)
    src = _write(tmp_path / "onedrive" / "MAT.pkl", b"checkpoint v1")
    r = W.import_weights("test-manual", src, weights_dir=tmp_path / "w")
    assert r.verified == "recorded" and r.sha256 == hashlib.sha256(b"checkpoint v1").hexdigest()
    assert W.resolve_weights("test-manual", weights_dir=tmp_path / "w").verified == "recorded"
    dest = tmp_path / "w" / "manual.pkl"
    dest.write_bytes(b"checkpoint v2 (tampered)")
    with pytest.raises(WeightsError, match="recorded at import"):
        W.resolve_weights("test-manual", weights_dir=tmp_path / "w")
    assert no_network == []


def test_prefix_only_spec(isolated_home: Path, tmp_path: Path):
    W.register_weights(W.WeightSpec(id="test-prefix", filename="p.pth", sha256_prefix=DIGEST[:8]))
    try:
        _write(tmp_path / "p.pth")
        assert W.resolve_weights("test-prefix", weights_dir=tmp_path).verified is True
        _write(tmp_path / "p.pth", b"other")
        os.utime(tmp_path / "p.pth", ns=(1, 10**18))
        with pytest.raises(WeightsError):
            W.resolve_weights("test-prefix", weights_dir=tmp_path)
    finally:
        W.unregister_weights("test-prefix")


@pytest.fixture
def cli():
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        pass

    cli_weights.register(app)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["weights", *args])


def test_cli_list_where_import_verify_fetch(cli, spec: W.WeightSpec, tmp_path: Path, isolated_home: Path,
                                            no_network: list[str]):
    r = cli("list")
    assert r.exit_code == 0 and "inception-tf" in r.output
    r = cli("where", "test-net")
    assert r.exit_code == 0 and "test-net.pth" in r.output and "INPAINTBENCH_WEIGHT_TEST_NET" in r.output
    r = cli("fetch", "test-net", "--offline")
    assert isinstance(r.exception, WeightsError)
    src = _write(tmp_path / "x.bin")
    r = cli("import", "test-net", str(src))
    assert r.exit_code == 0, r.output
    assert (isolated_home / "weights" / "test-net.pth").read_bytes() == PAYLOAD
    r = cli("verify", "test-net")
    assert r.exit_code == 0 and "ok" in r.output
    cached = isolated_home / "weights" / "test-net.pth"
    st = cached.stat()
    cached.write_bytes(b"Y" + PAYLOAD[1:])  # same size, mtime put back: the change of ctime is still seen,
    os.utime(cached, ns=(st.st_atime_ns, st.st_mtime_ns))  # so the sidecar cache is not fooled
    with pytest.raises(WeightsError):
        W.resolve_weights("test-net", offline=True)
    r = cli("verify", "test-net")  # and `verify` re-hashes
    assert isinstance(r.exception, WeightsError)
    r = cli("fetch", "test-net", "--offline")  # present file with a wrong hash: refused, no download
    assert isinstance(r.exception, WeightsError)
    assert no_network == []


def test_weights_cli_knows_the_model_packages_weight_ids(capsys: pytest.CaptureFixture[str]) -> None:
    """`weights where/import` must work for ids that model packages register (MAT, LaMa, MI-GAN), in a
    fresh process that never imported inpaintbench.models."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "inpaintbench.cli", "weights", "where", "migan-256"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "migan_256_places2.pt" in out.stdout


def test_records_written_beside_files_by_older_versions_are_still_honoured(
        manual_spec: W.WeightSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Trust on first use survives the move of hash records into the cache directory."""
    path = _write(tmp_path / "manual.pkl", b"changed since first use")
    old = {"sha256": DIGEST, "size": 1, "mtime_ns": 1, "recorded_sha256": DIGEST}
    (tmp_path / "manual.pkl.sha256").write_text(json.dumps(old))
    with pytest.raises(WeightsError, match="recorded at import"):
        W.resolve_weights("test-manual", weights_dir=tmp_path, offline=True)
    assert W.read_hash_record(path)["recorded_sha256"] == DIGEST
