"""TLS as the README says to set it up: deploy/nats.conf's ``tls { cert_file, key_file }`` block
and ``tls://`` in ``CW_NATS_URL``; a client trusts the bureau's CA through ``SSL_CERT_FILE``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from services.devstack.reader import with_user
from services.devstack.servers import OwnNats
from services.permissions.domain.users import operator, password_user, quoted, server_config
from tests.support.processes import cw, cw_env

pytestmark = pytest.mark.integration

PASSWORD = "Tls-Operator-Pw1"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(folder: Path) -> None:
    """A CA, and a certificate for 127.0.0.1 that it signed."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=cw-test-ca", cwd=folder)  # fmt: skip
    _openssl("req", *key, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext",
             cwd=folder)  # fmt: skip


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_commands_reach_nats_over_tls_with_the_bureaus_ca(
    tmp_path: Path, database_url: str
) -> None:
    _certificates(tmp_path)
    config = tmp_path / "nats.conf"
    users = [password_user("operator", quoted(PASSWORD), operator().render())]
    tls = (
        f'tls {{\n  cert_file: "{tmp_path / "server.pem"}"\n'
        f'  key_file: "{tmp_path / "server.key"}"\n  timeout: 2\n}}\n'
    )
    config.write_text(server_config(users) + tls)
    with OwnNats(tmp_path / "store", config=config) as server:
        url = with_user(server.url, "operator", PASSWORD).replace("nats://", "tls://", 1)
        env = cw_env(url, database_url)
        done = cw({**env, "SSL_CERT_FILE": str(tmp_path / "ca.pem")}, "init")
        assert done.returncode == 0, done.stdout + done.stderr
        # Without the CA, the server's certificate is not trusted: said in one line.
        done = cw({**env, "SSL_CERT_FILE": "/nonexistent"}, "init")
        said = done.stdout + done.stderr
        assert done.returncode == 2, said
        assert "certificate verify failed" in said.lower()
        assert "Traceback" not in said and PASSWORD not in said
