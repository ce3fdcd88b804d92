"""The versions the image installs: every runtime dependency of chuangwei (no extras), with the
version installed where the tests run. ``deploy/constraints.txt`` is this list;
``tests/integration/test_compose.py`` checks that it still is. After an upgrade:

    .venv/bin/python -m tests.support.constraints > deploy/constraints.txt
"""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement

HEADER = """\
# The versions deploy/Dockerfile installs (pip install -c): every runtime dependency of
# chuangwei, as installed where `make test` ran. Written by
#   .venv/bin/python -m tests.support.constraints > deploy/constraints.txt
# and checked by tests/integration/test_compose.py.
"""


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_versions(root: str = "chuangwei") -> dict[str, str]:
    """Every distribution ``root`` needs at run time (its extras' too, where a dependency asks
    for them), by normalised name, with the installed version."""
    seen: dict[str, str] = {}

    def walk(name: str, extras: frozenset[str]) -> None:
        dist = metadata.distribution(name)
        key = _key(name)
        if key in seen and not extras:
            return
        seen[key] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not any(
                req.marker.evaluate({"extra": extra}) for extra in ("", *extras)
            ):
                continue
            walk(req.name, frozenset(req.extras))

    walk(root, frozenset())
    del seen[_key(root)]
    return dict(sorted(seen.items()))


def constraints() -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in runtime_versions().items())


if __name__ == "__main__":
    print(constraints(), end="")
