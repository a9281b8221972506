"""CurveZMQ keys for STUI sockets: key files, and the socket options of a CURVE client or server.

Key files are text. A secret key file holds one line `secret-key = Z85` (40 characters of Z85, ZeroMQ's
text form of a 32-byte key) and the matching `public-key = Z85` line; it is written with mode 0600 and
refused when group or others may read it, because whoever reads it can act as its owner. A public key
file, and an allow-list file, hold public keys, one Z85 key per line (`public-key = ` optional); a
line starting with `#` is a comment. `write_keypair` (the `stui-conformance keygen` verb) writes NAME.key and NAME.pub.

Every tool that opens a socket takes the same two options on the client side, `--curve-secret-key FILE`
(its own key pair) and `--curve-server-key FILE` (the server's public key); a server takes
`--curve-secret-key FILE` and `--curve-allow FILE` (the client keys it lets in; there is no allow-any).
`ZapAllowList` is the ZAP handler (RFC 27) of the kit's own servers (client-check, the proxy's front):
it admits exactly the allowed client keys. The reference server has its own (reference_server/gate.py:
it also enforces a connection cap). This module reads and writes keys, sets socket options and answers
ZAP requests; it must never connect to anything.
"""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import zmq
from zmq.utils import z85

Z85_KEY_LENGTH = 40


class CurveKeyError(ValueError):
    """A key file that cannot be used: unreadable, malformed, or readable by others (secret keys)."""


def curve_available() -> bool:
    """Whether this pyzmq's libzmq was built with CURVE (libsodium)."""
    return bool(zmq.has("curve"))


def _require_curve() -> None:
    if not curve_available():
        raise CurveKeyError("this ZeroMQ library was built without CURVE support (libsodium)")


def _key_lines(path: Path) -> list[tuple[str, bytes]]:
    """(label, Z85 key) for every non-comment line; label is '' for a bare key."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CurveKeyError(f"cannot read key file {path}: {exc}") from exc
    keys: list[tuple[str, bytes]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):  # not a trailing '#': '#' and '=' are Z85 characters
            continue
        words = line.split()
        if len(words) == 1:
            label, value = "", words[0]
        elif len(words) == 3 and words[1] == "=":
            label, value = words[0], words[2]
        else:
            raise CurveKeyError(f"{path}:{number}: expected 'NAME = KEY' or a bare key")
        if len(value) != Z85_KEY_LENGTH:
            raise CurveKeyError(f"{path}:{number}: not a 40-character Z85 key")
        try:
            z85.decode(value.encode())
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise CurveKeyError(f"{path}:{number}: not a Z85 key ({exc})") from exc
        keys.append((label, value.encode()))
    return keys


@dataclass(frozen=True)
class KeyPair:
    """A CURVE key pair, both halves in Z85."""

    public: bytes
    secret: bytes

    @classmethod
    def load(cls, path: str | Path) -> KeyPair:
        """Read a secret key file (refused when group or others have any access to it)."""
        _require_curve()
        path = Path(path)
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise CurveKeyError(f"cannot read secret key file {path}: {exc}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CurveKeyError(f"secret key file {path} is accessible by others (mode {stat.S_IMODE(mode):04o}); "
                                f"chmod 600 it")
        secrets = [key for label, key in _key_lines(path) if label in ("", "secret-key")]
        if len(secrets) != 1:
            raise CurveKeyError(f"{path}: expected one secret-key line")
        return cls(public=zmq.curve_public(secrets[0]), secret=secrets[0])


def load_public_keys(path: str | Path) -> list[bytes]:
    """Public keys of a public key or allow-list file (a secret-key line is refused, never used)."""
    path = Path(path)
    lines = _key_lines(path)
    if any(label == "secret-key" for label, _ in lines):
        raise CurveKeyError(f"{path} holds a secret key; give the public key file (.pub) instead")
    if not lines:
        raise CurveKeyError(f"{path} holds no public key")
    return [key for _, key in lines]


def load_server_key(path: str | Path) -> bytes:
    keys = load_public_keys(path)
    if len(keys) != 1:
        raise CurveKeyError(f"{path}: expected exactly one public key (the server's), found {len(keys)}")
    return keys[0]


@dataclass(frozen=True)
class ClientCurve:
    """What a CURVE client needs: its own key pair and the server's public key."""

    own: KeyPair
    server_public: bytes

    @classmethod
    def load(cls, secret_key_file: str | Path, server_key_file: str | Path) -> ClientCurve:
        return cls(KeyPair.load(secret_key_file), load_server_key(server_key_file))

    def apply(self, socket: zmq.Socket) -> None:
        """Before connect: this socket handshakes as a CURVE client of `server_public`."""
        socket.setsockopt(zmq.CURVE_SERVERKEY, self.server_public)
        socket.setsockopt(zmq.CURVE_PUBLICKEY, self.own.public)
        socket.setsockopt(zmq.CURVE_SECRETKEY, self.own.secret)


@dataclass(frozen=True)
class ServerCurve:
    """What a CURVE server needs: its key pair and the client public keys it admits (never empty)."""

    own: KeyPair
    allowed_clients: frozenset[bytes]

    def __post_init__(self) -> None:
        if not self.allowed_clients:
            raise CurveKeyError("a CURVE server needs at least one allowed client key (there is no allow-any)")

    @classmethod
    def load(cls, secret_key_file: str | Path, allow_files: list[str] | list[Path]) -> ServerCurve:
        allowed: set[bytes] = set()
        for path in allow_files:
            allowed.update(load_public_keys(path))
        return cls(KeyPair.load(secret_key_file), frozenset(allowed))

    def apply(self, socket: zmq.Socket) -> None:
        """Before bind: this socket handshakes as a CURVE server (a ZAP handler must check the keys)."""
        socket.setsockopt(zmq.CURVE_SERVER, 1)
        socket.setsockopt(zmq.CURVE_SECRETKEY, self.own.secret)
        socket.setsockopt(zmq.CURVE_PUBLICKEY, self.own.public)


def client_curve_from_args(secret_key_file: str | None, server_key_file: str | None) -> ClientCurve | None:
    """The client side of the shared options: both files or neither (CurveKeyError otherwise)."""
    if secret_key_file is None and server_key_file is None:
        return None
    if secret_key_file is None or server_key_file is None:
        raise CurveKeyError("CURVE needs both --curve-secret-key (this side's key) and --curve-server-key "
                            "(the server's public key)")
    return ClientCurve.load(secret_key_file, server_key_file)


def write_keypair(prefix: str | Path, *, overwrite: bool = False) -> tuple[Path, Path, KeyPair]:
    """Write PREFIX.key (secret, mode 0600, created so no other user can ever read it) and PREFIX.pub."""
    _require_curve()
    public, secret = zmq.curve_keypair()
    pair = KeyPair(public=public, secret=secret)
    prefix = Path(prefix)
    key_path, pub_path = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(key_path, flags, 0o600)
    except FileExistsError as exc:
        raise CurveKeyError(f"{key_path} exists; remove it first (keygen never overwrites a key)") from exc
    os.fchmod(fd, 0o600)  # O_CREAT's mode is masked by the umask; an existing file keeps its mode otherwise
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write("# STUI CurveZMQ secret key: keep it private (mode 0600)\n")
        out.write(f"public-key = {public.decode()}\nsecret-key = {secret.decode()}\n")
    pub_path.write_text(f"# STUI CurveZMQ public key\npublic-key = {public.decode()}\n", encoding="ascii")
    return key_path, pub_path, pair


ZAP_ENDPOINT = "inproc://zeromq.zap.01"


class ZapAllowList:
    """A ZAP handler on its own thread for one context: CURVE clients whose key is allowed get 200, every
    other handshake 400. Bind it (construct) before the CURVE server socket binds; `close()` at the end."""

    def __init__(self, context: zmq.Context, allowed: frozenset[bytes]) -> None:
        self.allowed = allowed
        self.refused = 0
        self._stop = threading.Event()
        self._socket = context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        try:
            self._socket.bind(ZAP_ENDPOINT)
        except zmq.ZMQError:
            self._socket.close(0)
            raise
        self._thread = threading.Thread(target=self._run, name="stui-zap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._socket.poll(100):
                continue
            request = self._socket.recv_multipart()
            if len(request) < 6:
                self._socket.send_multipart([b"1.0", b"", b"500", b"malformed ZAP request", b"", b""])
                continue
            version, request_id, mechanism = request[0], request[1], request[5]
            key = z85.encode(request[6]) if mechanism == b"CURVE" and len(request) > 6 else None
            ok = key is not None and key in self.allowed
            self.refused += 0 if ok else 1
            self._socket.send_multipart([version, request_id, b"200" if ok else b"400",
                                         b"OK" if ok else b"client key not allowed", b"", b""])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close(0)
