"""CurveZMQ end to end: keygen's files, the reference server's allow-list (a ZAP handler, never
allow-any), and the suite talking CURVE to a server started as a real process."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import zmq
from rs_harness import REPO, SERVER, call, server_process

from stui_protocol_kit.protocol.client import ProtocolClient, ReplyTimeout
from stui_protocol_kit.protocol.curve import (
    ClientCurve,
    CurveKeyError,
    KeyPair,
    ServerCurve,
    load_public_keys,
    write_keypair,
)
from stui_protocol_kit.protocol.server_process import ServerProcess, ServerStartError

pytestmark = pytest.mark.skipif(not zmq.has("curve"), reason="this libzmq has no CURVE (libsodium)")
CONFORMANCE = [sys.executable, "-m", "stui_protocol_kit.conformance.cli"]


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """server, alice and bob key pairs (the keygen verb's own files are tested once, below)."""
    for name in ("server", "alice", "bob"):
        write_keypair(tmp_path / name)
    return tmp_path


def _curve_server(keys: Path, data: Path, *extra: str) -> ServerProcess:
    return server_process(data, "--curve-secret-key", str(keys / "server.key"), "--curve-allow",
                          str(keys / "alice.pub"), *extra)


def test_keygen_writes_a_private_secret_file_and_never_overwrites_it(tmp_path: Path) -> None:
    keys = tmp_path
    done = subprocess.run([*CONFORMANCE, "keygen", str(keys / "alice")], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((keys / "alice.key").stat().st_mode) == 0o600
    pair = KeyPair.load(keys / "alice.key")
    assert load_public_keys(keys / "alice.pub") == [pair.public]
    assert zmq.curve_public(pair.secret) == pair.public
    again = subprocess.run([*CONFORMANCE, "keygen", str(keys / "alice")], capture_output=True, text=True,
                           cwd=REPO, timeout=60)
    assert again.returncode == 2 and "exists" in again.stderr
    assert KeyPair.load(keys / "alice.key") == pair


def test_key_files_round_trip_whatever_z85_characters_the_keys_hold(tmp_path: Path) -> None:
    # Z85 uses '#', '=' and other punctuation: a key must never be mistaken for a comment or a label.
    for i in range(60):
        _, _, pair = write_keypair(tmp_path / f"k{i}")
        assert KeyPair.load(tmp_path / f"k{i}.key") == pair
        assert load_public_keys(tmp_path / f"k{i}.pub") == [pair.public]


def test_a_secret_key_others_can_read_is_refused_and_a_secret_is_never_an_allowed_key(keys: Path) -> None:
    os.chmod(keys / "bob.key", 0o640)
    with pytest.raises(CurveKeyError, match="accessible by others"):
        KeyPair.load(keys / "bob.key")
    with pytest.raises(CurveKeyError, match="secret key"):
        load_public_keys(keys / "alice.key")
    with pytest.raises(CurveKeyError, match="allow-any"):
        ServerCurve(KeyPair.load(keys / "server.key"), frozenset())


def test_only_listed_clients_deliver_anything(keys: Path, tmp_path: Path) -> None:
    alice = ClientCurve.load(keys / "alice.key", keys / "server.pub")
    bob = ClientCurve.load(keys / "bob.key", keys / "server.pub")
    with _curve_server(keys, tmp_path / "data", "--log-level", "debug") as proc:
        assert proc.endpoint is not None
        with ProtocolClient(proc.endpoint, timeout_s=5, curve=alice) as listed:
            assert call(listed, "hello")["status"] == "success"
            created = call(listed, "session.create", {"client_id": "alice"})["result"]
            assert call(listed, "session.validate", {"session_id": created["session_id"],
                                                     "token": created["token"]})["status"] == "success"
        for curve in (bob, None):  # an unlisted key, and no CURVE at all
            with ProtocolClient(proc.endpoint, timeout_s=1.5, curve=curve) as outsider, \
                    pytest.raises(ReplyTimeout):
                outsider.call("hello")
        with ProtocolClient(proc.endpoint, timeout_s=5, curve=alice) as listed:  # still serving
            assert call(listed, "hello")["status"] == "success"
    lines = proc.stderr_lines()
    served = [line for line in lines if "request command=" in line]
    assert len(served) == 4, served  # alice's four requests; nothing from bob or the plain client
    assert any("not on the allow-list" in line for line in lines)
    assert created["token"] not in "\n".join(lines)


def test_a_curve_server_needs_an_allow_list(keys: Path, tmp_path: Path) -> None:
    proc = ServerProcess([*SERVER, "--bind", "tcp://127.0.0.1:0", "--data-dir", str(tmp_path),
                          "--curve-secret-key", str(keys / "server.key")], cwd=REPO, name="reference server")
    with pytest.raises(ServerStartError) as raised:
        proc.start()
    assert raised.value.returncode == 2 and "allow-any" in raised.value.stderr_tail


def test_binding_every_interface_with_curve_does_not_warn(keys: Path, tmp_path: Path) -> None:
    proc = ServerProcess([*SERVER, "--bind", "tcp://0.0.0.0:0", "--data-dir", str(tmp_path), "--curve-secret-key",
                          str(keys / "server.key"), "--curve-allow", str(keys / "alice.pub")], cwd=REPO,
                         name="reference server")
    with proc:
        pass
    assert not any("CURVE is off" in line for line in proc.stderr_lines())


def test_the_suite_runs_over_curve_and_an_unlisted_suite_reaches_nothing(keys: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from stui_protocol_kit.conformance.cli import main

    with _curve_server(keys, tmp_path / "data") as proc:
        assert proc.endpoint is not None
        base = ["run", "--target", proc.endpoint, "--select", "hello.*", "--timeout", "2", "--no-color"]
        assert main([*base, "--curve-secret-key", str(keys / "alice.key"), "--curve-server-key",
                     str(keys / "server.pub")]) == 0, capsys.readouterr()
        capsys.readouterr()
        assert main([*base, "--curve-secret-key", str(keys / "bob.key"), "--curve-server-key",
                     str(keys / "server.pub")]) == 2
        assert "CURVE" in capsys.readouterr().err
        assert main([*base, "--curve-secret-key", str(keys / "alice.key")]) == 2
        assert "--curve-server-key" in capsys.readouterr().err


def test_the_proxy_talks_curve_on_both_sides(keys: Path, tmp_path: Path) -> None:
    """Clients -> proxy (front: server.key, admits bob) -> CURVE server (admits alice, the proxy's key)."""
    import threading

    from stui_protocol_kit.conformance.proxy import Proxy

    findings: list[object] = []
    with _curve_server(keys, tmp_path / "data") as proc:
        assert proc.endpoint is not None
        proxy = Proxy("tcp://127.0.0.1:0", proc.endpoint, on_finding=findings.append,
                      front_curve=ServerCurve.load(keys / "server.key", [keys / "bob.pub"]),
                      upstream_curve=ClientCurve.load(keys / "alice.key", keys / "server.pub"))
        endpoint = proxy.start()
        thread = threading.Thread(target=proxy.serve, daemon=True)
        thread.start()
        try:
            bob = ClientCurve.load(keys / "bob.key", keys / "server.pub")
            with ProtocolClient(endpoint, timeout_s=5, curve=bob) as c:
                assert call(c, "hello")["status"] == "success"
                assert call(c, "session.create", {"client_id": "via-proxy"})["status"] == "success"
            alice = ClientCurve.load(keys / "alice.key", keys / "server.pub")
            with ProtocolClient(endpoint, timeout_s=1.0, curve=alice) as c, pytest.raises(ReplyTimeout):
                c.call("hello")  # alice is allowed by the server, not by the proxy's front
        finally:
            proxy.request_stop("test")
            thread.join(10)
            proxy.close()
    assert findings == []
    assert proxy.counts.requests == 2


def test_client_check_serves_curve_clients_on_its_allow_list(keys: Path, tmp_path: Path) -> None:
    import threading

    from stui_protocol_kit.conformance.client_check.kit_server import KitServer

    kit = KitServer("tcp://127.0.0.1:0", [], data_dir=tmp_path / "kit", end_on_close=False,
                    curve=ServerCurve.load(keys / "server.key", [keys / "alice.pub"]))
    endpoint = kit.start()
    thread = threading.Thread(target=kit.serve, daemon=True)
    thread.start()
    try:
        with ProtocolClient(endpoint, timeout_s=5,
                            curve=ClientCurve.load(keys / "alice.key", keys / "server.pub")) as c:
            assert call(c, "hello")["status"] == "success"
        with ProtocolClient(endpoint, timeout_s=1.0,
                            curve=ClientCurve.load(keys / "bob.key", keys / "server.pub")) as c, \
                pytest.raises(ReplyTimeout):
            c.call("hello")
    finally:
        kit.request_stop("test")
        thread.join(10)
        kit.close()


def test_the_pytest_plugin_talks_curve(keys: Path, tmp_path: Path) -> None:
    from importlib.metadata import entry_points

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "test_empty.py").write_text("def test_nothing():\n    pass\n")
    installed = any(ep.value == "stui_protocol_kit.conformance.pytest_plugin" for ep in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "stui_protocol_kit.conformance.pytest_plugin"]
    with _curve_server(keys, tmp_path / "data") as proc:
        assert proc.endpoint is not None
        base = [sys.executable, "-m", "pytest", "-q", *plugin, "--stui-conformance", "--stui-target", proc.endpoint,
                "--stui-select", "hello.success", "-p", "no:cacheprovider", str(tmp_path / "t")]
        done = subprocess.run([*base, "--stui-curve-secret-key", str(keys / "alice.key"), "--stui-curve-server-key",
                               str(keys / "server.pub")], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path / "t")
        assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
