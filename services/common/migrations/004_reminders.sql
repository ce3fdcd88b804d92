-- The reminders service's own state (cw run reminders), beside the read model in the same
-- database but independent of it: its own copy of the issue lifecycle (the same rules as the
-- projector, services/common/lifecycle.py), its timers, its outbox and its own checkpoint on
-- CW_EVENTS. A batch of events writes issues, timers and the checkpoint in one transaction; a
-- fired timer is settled in the transaction that puts its reminder in the outbox.
CREATE SCHEMA IF NOT EXISTS cw_reminders;
CREATE TABLE cw_reminders.checkpoint (
    consumer   text PRIMARY KEY,
    stream_seq bigint NOT NULL
);
-- Ids of the events applied (or waiting for their issue): a republished event changes nothing.
CREATE TABLE cw_reminders.seen_events (
    event_id   uuid PRIMARY KEY,
    stream_seq bigint NOT NULL
);
CREATE TABLE cw_reminders.issues (
    district         text COLLATE "C" NOT NULL,
    issue_id         text COLLATE "C" NOT NULL,
    venue_id         text COLLATE "C" NOT NULL,
    phase            text NOT NULL,
    item_code        text COLLATE "C" NOT NULL,
    category         text,
    severity         text NOT NULL,
    description      text,
    found_at         timestamptz NOT NULL,
    due_at           timestamptz,
    order_no         text,
    assignee         text,
    closed_at        timestamptz,
    closed_on_time   boolean,
    recheck_failures integer NOT NULL,
    rebound          boolean NOT NULL,
    PRIMARY KEY (district, issue_id)
);
CREATE INDEX ON cw_reminders.issues (district, venue_id, item_code, closed_at);
CREATE INDEX ON cw_reminders.issues (district) WHERE closed_at IS NULL;
CREATE TABLE cw_reminders.venues (
    district                text COLLATE "C" NOT NULL,
    venue_id                text COLLATE "C" NOT NULL,
    name                    text NOT NULL,
    first_responsible_name  text NOT NULL,
    first_responsible_phone text,
    officer_name            text,
    officer_phone           text,
    PRIMARY KEY (district, venue_id)
);
CREATE TABLE cw_reminders.pending_issue_events (
    district   text COLLATE "C" NOT NULL,
    issue_id   text COLLATE "C" NOT NULL,
    stream_seq bigint NOT NULL,
    subject    text NOT NULL,
    phase      text NOT NULL,
    payload    text NOT NULL,
    PRIMARY KEY (district, issue_id, stream_seq)
);
-- One row per reminder that is, was or will be due; reminder_id is deterministic, so a timer
-- derived twice is the same row, and a reminder is sent at most once.
CREATE TABLE cw_reminders.timers (
    reminder_id  uuid PRIMARY KEY,
    district     text COLLATE "C" NOT NULL,
    issue_id     text COLLATE "C",
    kind         text NOT NULL,
    level        integer NOT NULL,
    deadline     timestamptz,
    fire_at      timestamptz NOT NULL,
    state        text NOT NULL CHECK (state IN ('pending', 'sent', 'skipped', 'cancelled')),
    reason       text,
    scheduled_at timestamptz NOT NULL DEFAULT now(),
    settled_at   timestamptz
);
CREATE INDEX timers_due ON cw_reminders.timers (fire_at) WHERE state = 'pending';
CREATE INDEX timers_of_issue ON cw_reminders.timers (district, issue_id);
-- The transactional outbox: a reminder recorded as sent, published to CW_REMINDERS with
-- Nats-Msg-Id = reminder_id, then marked. Unmarked rows are published again after a crash (the
-- stream's duplicate window drops the second copy).
CREATE TABLE cw_reminders.outbox (
    reminder_id  uuid PRIMARY KEY,
    kind         text NOT NULL,
    subject      text NOT NULL,
    payload      bytea NOT NULL,
    fire_at      timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    published_at timestamptz,
    expired_at   timestamptz
);
CREATE INDEX outbox_unpublished ON cw_reminders.outbox (fire_at)
    WHERE published_at IS NULL AND expired_at IS NULL;
