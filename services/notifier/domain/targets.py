"""The notify file (``CW_NOTIFY_FILE``): where reminders go, and within which limits.

```toml
[[targets]]
name = "lianyun-dingtalk"
kind = "dingtalk"                   # dingtalk | wecom | webhook
url = "https://oapi.dingtalk.com/robot/send?access_token=…"
# or url_env = "CW_DINGTALK_URL": the URL (its token a secret) read from this variable
secret_env = "CW_DINGTALK_SECRET"   # DingTalk's signing secret, read from this variable
districts = ["320703"]              # optional filter
kinds = ["overdue", "escalation", "digest"]   # optional filter
per_minute = 20                     # default 20 for dingtalk and wecom; none for a webhook
window = "60s"                      # the window per_minute counts in
alerts = true                       # also Alertmanager's alerts (POST /alerts); default false
reminders = false                   # alerts only; default true
```

An unknown key or a bad value is an error that names the target and the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, TypeAlias, cast, get_args
from urllib.parse import urlsplit

from contracts.reminders import REMINDER_KINDS, Reminder
from services.common.durations import parse_duration

TargetKind: TypeAlias = Literal["dingtalk", "wecom", "webhook"]
TARGET_KINDS: tuple[str, ...] = get_args(TargetKind)
ROBOTS = ("dingtalk", "wecom")
ROBOT_PER_MINUTE = 20
"""What DingTalk and WeCom allow a robot: 20 messages a minute (DingTalk then throttles the
robot for 10 minutes)."""
DEFAULT_WINDOW = timedelta(seconds=60)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DISTRICT = re.compile(r"^\d{6}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEYS = ("name", "kind", "url", "url_env", "secret_env", "districts", "kinds", "per_minute",
         "window", "alerts", "reminders")  # fmt: skip


class NotifyFileInvalid(ValueError):
    """The notify file cannot be used; the message names the target, the field and why."""


@dataclass(frozen=True, slots=True)
class Target:
    """One place reminders are delivered to."""

    name: str
    kind: TargetKind
    url: str
    secret: str | None = None
    """DingTalk's signing secret (read from ``secret_env``), if the robot signs."""
    districts: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    per_minute: int | None = ROBOT_PER_MINUTE
    """Most messages in any ``window`` (``None``: no limit, a webhook's default)."""
    window: timedelta = DEFAULT_WINDOW
    alerts: bool = False
    """Takes Alertmanager's alerts (``POST /alerts``), within the same budget."""
    reminders: bool = True
    """Takes reminders (``false``: an operators' robot for alerts only)."""

    @property
    def is_robot(self) -> bool:
        return self.kind in ROBOTS

    def wants(self, reminder: Reminder) -> bool:
        """Whether this target takes ``reminder`` (its district and kind filters)."""
        if not self.reminders:
            return False
        if self.districts is not None and reminder.district not in self.districts:
            return False
        return self.kinds is None or reminder.kind in self.kinds


def parse_targets(data: Mapping[str, object], env: Mapping[str, str]) -> tuple[Target, ...]:
    """The targets of a parsed notify file; secrets are read from ``env``."""
    unknown = sorted(set(data) - {"targets"})
    if unknown:
        raise NotifyFileInvalid(f"unknown key {unknown[0]!r} (the file holds [[targets]] only)")
    raw = data.get("targets", [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise NotifyFileInvalid("targets: expected [[targets]] tables")
    targets = [_target(i, t, env) for i, t in enumerate(raw)]
    seen: set[str] = set()
    for t in targets:
        if t.name in seen:
            raise NotifyFileInvalid(f"targets: the name {t.name!r} is used twice")
        seen.add(t.name)
    return tuple(targets)


def _target(index: int, raw: Mapping[str, object], env: Mapping[str, str]) -> Target:
    name = raw.get("name")
    where = f"targets[{index}]" + (f" ({name})" if isinstance(name, str) else "")

    def bad(field: str, reason: str) -> NotifyFileInvalid:
        return NotifyFileInvalid(f"{where}.{field}: {reason}")

    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise bad(unknown[0], f"unknown key (known: {', '.join(_KEYS)})")
    for field in ("name", "kind"):
        if field not in raw:
            raise bad(field, "missing")
    if "url" not in raw and "url_env" not in raw:
        raise bad("url", "missing (or url_env, the variable holding it)")
    if "url" in raw and "url_env" in raw:
        raise bad("url", "give either url or url_env, not both")
    if not isinstance(name, str) or not _NAME.match(name):
        raise bad("name", "letters, digits, '.', '_' or '-', at most 64")
    kind = raw["kind"]
    if kind not in TARGET_KINDS:
        raise bad("kind", f"{kind!r} is not one of {', '.join(TARGET_KINDS)}")
    assert isinstance(kind, str)
    if "url_env" in raw:
        # A robot's URL carries its token: a deployment keeps it with its other secrets.
        url = _from_env(raw["url_env"], env, lambda reason: bad("url_env", reason))
        if not _http_url(url):
            raise bad("url_env", f"the variable {raw['url_env']} holds no http(s):// URL")
    else:
        given = raw["url"]
        if not isinstance(given, str) or not _http_url(given):
            raise bad("url", "expected an http:// or https:// URL")
        url = given
    secret = None
    if "secret_env" in raw:
        variable = raw["secret_env"]
        if kind != "dingtalk":
            raise bad("secret_env", "only a DingTalk robot signs its messages")
        secret = _from_env(variable, env, lambda reason: bad("secret_env", reason))
    districts = _strings(raw, "districts", bad)
    if districts is not None:
        wrong = sorted(d for d in districts if not _DISTRICT.match(d))
        if wrong:
            raise bad("districts", f"{wrong[0]!r} is not a six-digit district code")
    kinds = _strings(raw, "kinds", bad)
    if kinds is not None:
        wrong = sorted(kinds - set(REMINDER_KINDS))
        if wrong:
            raise bad("kinds", f"{wrong[0]!r} is not one of {', '.join(REMINDER_KINDS)}")
    per_minute: int | None = ROBOT_PER_MINUTE if kind in ROBOTS else None
    if "per_minute" in raw:
        value = raw["per_minute"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
            raise bad("per_minute", "expected a whole number from 1 to 10000")
        per_minute = value
    window = DEFAULT_WINDOW
    if "window" in raw:
        try:
            window = parse_duration(raw["window"])  # type: ignore[arg-type]
        except ValueError as exc:
            raise bad("window", str(exc)) from None
        if window <= timedelta(0):
            raise bad("window", "must be longer than 0s")
    flags = {}
    for field, default in (("alerts", False), ("reminders", True)):
        value = raw.get(field, default)
        if not isinstance(value, bool):
            raise bad(field, "expected true or false")
        flags[field] = value
    if not flags["alerts"] and not flags["reminders"]:
        raise bad("reminders", "false, and alerts is not true: the target would take nothing")
    return Target(
        name=name,
        kind=cast(TargetKind, kind),
        url=url,
        secret=secret,
        districts=districts,
        kinds=kinds,
        per_minute=per_minute,
        window=window,
        alerts=flags["alerts"],
        reminders=flags["reminders"],
    )


def _from_env(
    variable: object, env: Mapping[str, str], bad: Callable[[str], NotifyFileInvalid]
) -> str:
    if not isinstance(variable, str) or not _ENV.match(variable):
        raise bad("expected the name of an environment variable")
    value = env.get(variable)
    if not value:
        raise bad(f"the variable {variable} is not set")
    return value


def _strings(
    raw: Mapping[str, object], field: str, bad: Callable[[str, str], NotifyFileInvalid]
) -> frozenset[str] | None:
    if field not in raw:
        return None
    value = raw[field]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise bad(field, "expected a non-empty list of strings")
    return frozenset(value)


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
