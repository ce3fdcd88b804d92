"""All configuration in one typed place, read from ``CW_*`` environment variables."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.durations import parse_duration


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CW_", frozen=True, extra="ignore")

    nats_url: str = Field(default="nats://127.0.0.1:4222", description="NATS server URL(s).")
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/chuangwei",
        description="PostgreSQL DSN of the read model.",
    )
    campaign_file: Path | None = Field(
        default=None, description="Campaign TOML; default: the shipped Lianyun 2023 campaign."
    )
    metrics_port: int = Field(default=9464, description="Prometheus /metrics port (0: off).")
    metrics_host: str = Field(
        default="127.0.0.1", description="Address /metrics listens on (0.0.0.0 in a container)."
    )

    projector_durable: str = Field(default="projector", description="JetStream durable name.")
    projector_partition: str = Field(
        default="",
        description="A subject filter within cw.events.> (e.g. cw.events.320703.>) for one of "
        "several projectors, each with its own CW_PROJECTOR_DURABLE (its consumer and write "
        "lease) and checkpoint; empty: the whole stream.",
    )
    projector_batch: int = Field(
        default=8000, ge=1, le=20_000, description="Most events per batch (one transaction)."
    )
    projector_fetch_wait: timedelta = Field(
        default=timedelta(seconds=1),
        description="How long a pull waits for a batch to fill before taking what is there.",
    )
    projector_ack_wait: timedelta = Field(default=timedelta(seconds=60))
    projector_pull_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=2 * 1024 * 1024,
        description="Most bytes requested from JetStream and not yet taken: keep it well under "
        "the server's max_pending (64 MiB by default), or the server cuts the projector off.",
    )
    events_duplicate_window: timedelta = Field(default=timedelta(minutes=5))
    dead_letter_duplicate_window: timedelta = Field(default=timedelta(hours=24))
    audit_every: timedelta = Field(
        default=timedelta(seconds=60),
        description="How often the projector audits its last CW_AUDIT_WINDOW sequences.",
    )
    audit_window: int = Field(
        default=10_000, ge=1, description="How many sequences up to the checkpoint it checks."
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
    reminders_fetch_wait: timedelta = Field(default=timedelta(seconds=1))
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
        "reminders_fetch_wait",
        "reminders_duplicate_window",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        if isinstance(value, (str, int, float, timedelta)):
            return parse_duration(value)
        raise ValueError("expected a duration such as 5s or 2m")
