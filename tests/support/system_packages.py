"""Binaries a test needs from the system's packages (Prometheus, Alertmanager), installed by the
test set-up when they are missing, as the brief asks: `make test` on a fresh machine must pass."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support.locks import machine_lock

_updated = False


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", *args], capture_output=True, text=True, env=env, check=False, timeout=900
    )


def ensure_binary(binary: str, package: str) -> str:
    """The path of ``binary``; installs Debian's ``package`` when it is missing.

    Where that cannot be done (not root, no apt-get, no package index), the test fails with what
    to install by hand: a check that silently skipped would let a broken rule through.
    """
    found = shutil.which(binary)
    if found:
        return found
    with machine_lock("apt-get"):  # another test worker may be installing it (or another package)
        return shutil.which(binary) or _install(binary, package)


def _install(binary: str, package: str) -> str:
    global _updated  # noqa: PLW0603
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            f"{binary} is missing and this test set-up cannot install it (needs root and "
            f"apt-get): install Debian's {package} package, then run the tests again",
            pytrace=False,
        )
    done = _apt_get("install", "-y", "-q", "--no-install-recommends", package)
    if done.returncode != 0 and not _updated:
        _updated = True
        _apt_get("update", "-q")
        done = _apt_get("install", "-y", "-q", "--no-install-recommends", package)
    found = shutil.which(binary)
    if done.returncode != 0 or not found:
        pytest.fail(
            f"installing {package} for {binary} failed:\n"
            f"{done.stdout[-2000:]}{done.stderr[-2000:]}",
            pytrace=False,
        )
    print(f"\n*** installed Debian's {package} for {binary} (missing on this machine) ***")
    return found
