"""All configuration in one typed place, read from ``CW_*`` environment variables."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.durations import format_duration, parse_duration


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CW_", frozen=True, extra="ignore")

    env: Literal["development", "production"] = Field(
        default="development",
        description="production: every command and service refuses to start while NATS has no "
        "credentials, a database URL has no password, or a secret is a default one.",
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="NATS server URL (several: comma-separated); a token or password in it is "
        "never printed.",
    )
    nats_creds: Path | None = Field(
        default=None,
        description="A NATS credentials file: a .creds file (user JWT and seed) or an NKey user "
        "seed; its contents are never printed. Unset: the user and password in CW_NATS_URL, if "
        "any.",
    )
    nats_inbox_prefix: str = Field(
        default="_INBOX",
        description="Subject prefix of this client's reply inboxes; a district publisher allowed "
        "to subscribe only to its own (e.g. _INBOX_320703) cannot read others' replies.",
    )
    district: str | None = Field(
        default=None,
        pattern=r"^[0-9]{6}$",
        description="The district this publisher publishes for (`cw publish`): its rejected lines "
        "go to cw.dlq.intake.<district>, the one dead-letter subject its NATS user may write; "
        "required with a district publisher's NATS user (`cw nats publisher`).",
    )
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/chuangwei",
        description="PostgreSQL URL of the read model (and cw.dead_letter_actions); its user is "
        "the role the services run as (cw db setup creates it); cw init and cw rebuild act as "
        "the services' role, the owner of schema cw, whoever this user is (a superuser may).",
    )
    admin_database_url: str | None = Field(
        default=None,
        description="Only for cw db setup: a PostgreSQL URL of a superuser (or a role with "
        "CREATEROLE and CREATEDB) that creates the database and the roles.",
    )
    campaign_file: Path | None = Field(
        default=None,
        description="Campaign TOML: phases, rebound_window, districts, checklist and reminders "
        "(unset: the shipped Lianyun 2023 campaign).",
    )
    metrics_port: int = Field(
        default=9464,
        description="Prometheus /metrics port of cw run (default: the service's own; 0: off).",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address /metrics listens on (0.0.0.0 in a container)."
    )

    projector_durable: str = Field(
        default="projector",
        description="The projector's JetStream durable consumer and write lease.",
    )
    projector_partition: str = Field(
        default="",
        description="A subject filter within cw.events.> (e.g. cw.events.320703.>) for one of "
        "several projectors, each with its own CW_PROJECTOR_DURABLE (its consumer and write "
        "lease) and checkpoint; unset: the whole stream.",
    )
    projector_batch: int = Field(
        default=8000, ge=1, le=20_000, description="Most events per batch (one transaction)."
    )
    projector_fetch_wait: timedelta = Field(
        default=timedelta(seconds=1),
        description="How long a pull waits for a batch to fill before taking what is there.",
    )
    projector_ack_wait: timedelta = Field(
        default=timedelta(seconds=60),
        description="JetStream ack_wait of the projector's consumer.",
    )
    projector_pull_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=2 * 1024 * 1024,
        description="Most bytes requested from JetStream and not yet taken: keep it well under "
        "the server's max_pending (64 MiB by default), or the server cuts the projector off.",
    )
    notify_file: Path | None = Field(
        default=None,
        description="The notifier's targets (TOML); the notifier runs only when it is set.",
    )
    notifier_metrics_port: int | None = Field(
        default=None, description="The notifier's /metrics port (default 9466; 0: off)."
    )
    notifier_durable: str = Field(
        default="notifier", description="The notifier's durable consumer and write lease."
    )
    events_duplicate_window: timedelta = Field(
        default=timedelta(minutes=5),
        description="CW_EVENTS's duplicate window (Nats-Msg-Id), when cw init creates it.",
    )
    dead_letter_duplicate_window: timedelta = Field(
        default=timedelta(hours=24),
        description="CW_DEAD_LETTERS's duplicate window, when cw init creates it.",
    )
    stall_after: timedelta = Field(
        default=timedelta(seconds=60),
        description="/healthz says stalled (HTTP 503) when messages wait and nothing was "
        "committed for this long.",
    )
    slow_after: timedelta = Field(
        default=timedelta(seconds=10),
        description="/healthz says slow when the oldest waiting message is older than this.",
    )
    audit_every: timedelta = Field(
        default=timedelta(seconds=60),
        description="How often the projector audits its last CW_AUDIT_WINDOW sequences (0s: off).",
    )
    audit_window: int = Field(
        default=10_000, ge=1, description="How many sequences up to the checkpoint it checks."
    )
    reader_role: str = Field(
        default="cw_reader",
        description="The read-only PostgreSQL role cw init creates for Grafana and reports.",
    )
    reader_password: SecretStr | None = Field(
        default=None,
        description="Its password; without one, cw init does not create the role.",
    )
    reader_database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL `cw report` reads the public views through, as the read-only "
        "role (unset: CW_DATABASE_URL).",
    )

    reminders_metrics_port: int = Field(
        default=9465, description="The reminders service's Prometheus /metrics port (0: off)."
    )
    reminders_durable: str = Field(
        default="reminders", description="JetStream durable name (and write lease) of reminders."
    )
    reminders_batch: int = Field(
        default=2000, ge=1, le=20_000, description="Most events per reminders transaction."
    )
    reminders_fetch_wait: timedelta = Field(
        default=timedelta(seconds=1),
        description="How long the reminders consumer's pull waits for a batch to fill.",
    )
    reminders_duplicate_window: timedelta = Field(
        default=timedelta(hours=24),
        description="CW_REMINDERS' duplicate window: a reminder published again after a crash "
        "within it is dropped by the stream. `cw init` brings an existing stream to it.",
    )

    @field_validator("projector_partition")
    @classmethod
    def _partition(cls, value: str) -> str:
        if value and not (value.startswith("cw.events.") and len(value) > len("cw.events.")):
            raise ValueError("a partition is a subject filter within cw.events.>")
        return value

    @field_validator(
        "projector_fetch_wait",
        "projector_ack_wait",
        "events_duplicate_window",
        "dead_letter_duplicate_window",
        "audit_every",
        "stall_after",
        "slow_after",
        "reminders_fetch_wait",
        "reminders_duplicate_window",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        if isinstance(value, (str, int, float, timedelta)):
            return parse_duration(value)
        raise ValueError("expected a duration such as 5s or 2m")


def _shown(value: object) -> str:
    if isinstance(value, timedelta):
        return format_duration(value)
    if value is None or value == "":
        return "unset"
    return str(value)


def described_settings() -> list[tuple[str, str, str]]:
    """Every setting as (environment variable, default, meaning): what ``cw --help`` lists."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return [
        (f"{prefix}{name}".upper(), _shown(field.default), field.description or "")
        for name, field in Settings.model_fields.items()
    ]
