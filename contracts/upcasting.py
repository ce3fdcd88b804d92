"""Reading events written against another ``schema_version``.

The projector and every other reader understand exactly one shape, ``SCHEMA_VERSION``. When the
contract changes incompatibly, publishers move to the next version and an *upcaster* is registered
here: a pure function that takes the JSON object of version N and returns the object of version
N + 1 (or, for a downgrade path, the reverse). Upcasters are applied one step at a time until the
object is at ``SCHEMA_VERSION``, so the stream never has to be rewritten and a rebuild reads ten
years of history through the same chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.events import SCHEMA_VERSION

JsonObject = dict[str, Any]
Upcaster = Callable[[JsonObject], JsonObject]

# (event_type or "*", from_version) -> function returning the object at the next version
# towards SCHEMA_VERSION.
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class NoUpcaster(LookupError):
    """No registered path from this version to the one this code reads."""


def register_upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register ``fn`` to move ``event_type`` (``"*"`` for all) off ``from_version``."""

    def decorate(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(event_type, from_version)] = fn
        return fn

    return decorate


def unregister_upcaster(event_type: str, from_version: int) -> None:
    _UPCASTERS.pop((event_type, from_version), None)


def upcast(obj: JsonObject) -> JsonObject:
    """Bring a decoded event object to ``SCHEMA_VERSION``; raise ``NoUpcaster`` if impossible."""
    seen = 0
    while True:
        version = obj.get("schema_version")
        if type(version) is float and version.is_integer():
            # 2.0 is the number 2 in JSON, as the JSON Schema reads it.
            version = int(version)
        if version == SCHEMA_VERSION or not isinstance(version, int) or isinstance(version, bool):
            return obj
        event_type = str(obj.get("event_type"))
        fn = _UPCASTERS.get((event_type, version)) or _UPCASTERS.get(("*", version))
        if fn is None:
            raise NoUpcaster(
                f"version {version} of {event_type} cannot be read: this reader knows version "
                f"{SCHEMA_VERSION} and no upcaster is registered for {version}"
            )
        obj = fn(obj)
        seen += 1
        if seen > 100:
            raise NoUpcaster(f"upcasters for schema_version {version} loop")
