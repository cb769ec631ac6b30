"""A node's home directory: where everything a node needs lives, and how it is made.

::

    DIR/node.toml            configuration (gateway.config)
    DIR/node.db              SQLite (WAL): the ledger's tables and the node's tables
    DIR/ledger-origin        the ledger's checkpoint origin line
    DIR/keys/root.key        the Party root key: signs the directory and signatory lists
    DIR/keys/node.key        the node key: signs receipts, peer answers and checkpoints
    DIR/keys/witness.key     the node's cosigner key for the peer's checkpoints
    DIR/keys/tls.pem, .key   the node's self-signed TLS certificate (pinned by the peer)
    DIR/keys/agency-ca.pem, .key   the CA that issues agency client certificates
    DIR/clients/<AUTH>/      agency profiles written by `gateway agency enroll`
    DIR/node.lock            held by the one process that writes the database

Every private key is encrypted with the node passphrase (``GATEWAY_PASSPHRASE`` or a
prompt). The root key sits in the home for a single-machine deployment; an operator
who keeps it offline moves ``keys/root.key`` away and brings it back to sign.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey, VerifyKey

from gateway import tls
from gateway.config import NodeConfig, load_config, render_config
from gateway.errors import GatewayError
from keys import keyfile
from keys.keyid import key_id


class HomeError(GatewayError):
    code = "home.invalid"


@dataclass(frozen=True)
class Home:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "node.toml"

    @property
    def db_path(self) -> Path:
        return self.root / "node.db"

    @property
    def origin_path(self) -> Path:
        return self.root / "ledger-origin"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def clients_dir(self) -> Path:
        return self.root / "clients"

    def key(self, name: str) -> Path:
        return self.keys_dir / f"{name}.key"

    @property
    def tls_certificate(self) -> Path:
        return self.keys_dir / "tls.pem"

    @property
    def tls_key(self) -> Path:
        return self.keys_dir / "tls.key"

    @property
    def agency_ca_certificate(self) -> Path:
        return self.keys_dir / "agency-ca.pem"

    @property
    def agency_ca_key(self) -> Path:
        return self.keys_dir / "agency-ca.key"

    def check(self) -> None:
        if not self.config_path.is_file():
            raise HomeError(f"{self.root} is not a node home (no node.toml); run `gateway init`",
                            code="home.missing")

    def config(self) -> NodeConfig:
        self.check()
        return load_config(self.config_path)

    def origin(self) -> str:
        return self.origin_path.read_text(encoding="ascii").strip()

    def public_key(self, name: str) -> VerifyKey:
        key = keyfile.load_public_key(keyfile.public_path(self.key(name)), kind="signing")
        assert isinstance(key, VerifyKey)
        return key

    def signing_key(self, name: str, passphrase: bytes) -> SigningKey:
        return keyfile.load_signing_key(self.key(name), passphrase)

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Only one process at a time may write the database (the ledger's tree state
        lives in the writer's memory); a second one gets ``home.busy``."""
        fd = os.open(self.root / "node.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HomeError(
                    f"{self.root} is in use by another gateway process (a running node?); "
                    "stop it first", code="home.busy") from None
            yield
        finally:
            os.close(fd)


def init_home(
    root: Path,
    config: NodeConfig,
    passphrase: bytes,
    *,
    opslimit: int = keyfile.DEFAULT_OPSLIMIT,
    memlimit: int = keyfile.DEFAULT_MEMLIMIT,
) -> Home:
    """Create a node home with fresh keys; refuse if ``root`` exists and is not empty."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise HomeError(f"{root} exists and is not empty; refusing to overwrite a node home",
                        code="home.exists")
    home = Home(root)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.keys_dir.mkdir(mode=0o700)
    home.clients_dir.mkdir(mode=0o700)
    limits = {"opslimit": opslimit, "memlimit": memlimit}
    for name in ("root", "node", "witness"):
        keyfile.save_private_key(home.key(name), SigningKey.generate(), passphrase, **limits)
    host = config.url.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    hosts = sorted({host, "127.0.0.1", "localhost"})
    node_tls = tls.make_node_certificate(config.party, hosts, passphrase)
    home.tls_certificate.write_bytes(node_tls.certificate_pem)
    tls.write_private(home.tls_key, node_tls.key_pem)
    ca = tls.make_agency_ca(config.party, passphrase)
    home.agency_ca_certificate.write_bytes(ca.certificate_pem)
    tls.write_private(home.agency_ca_key, ca.key_pem)
    node_id = key_id(home.public_key("node")).hex()[:8]
    home.origin_path.write_text(f"kzby-gateway.{config.party.lower()}/{node_id}\n",
                                encoding="ascii")
    home.config_path.write_text(render_config(config), encoding="utf-8")
    return home
