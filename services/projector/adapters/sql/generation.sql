-- One generation of the read model: the schema {s} (cw_rm_<n>), created empty by
-- create_generation (services/projector/adapters/generations.py); {s} is replaced by its name.
CREATE SCHEMA {s};
-- One row per consumer and partition (a subject filter such as one district); written as an
-- upsert that never moves backwards.
CREATE TABLE {s}.checkpoint (
    projection text NOT NULL,
    partition  text NOT NULL DEFAULT '',
    stream_seq bigint NOT NULL,
    -- The id of the message at stream_seq: tells CW_EVENTS from another stream of that name
    -- (services/consumer/identity.py).
    message_id text,
    PRIMARY KEY (projection, partition)
);
-- The payload is kept as the exact bytes received (validated UTF-8 JSON; the view presents it
-- as json, and bytes go in with a plain copy instead of a decode and a re-encode). Rows arrive in
-- stream_seq order, so a BRIN index serves `cw audit` and the projector's periodic audit of its
-- last window for almost nothing per row (a btree cost the projector 2-3% in A/B runs).
CREATE TABLE {s}.event_archive (
    event_id    uuid PRIMARY KEY,
    stream_seq  bigint NOT NULL,
    event_type  text NOT NULL,
    district    text COLLATE "C" NOT NULL,
    venue_id    text COLLATE "C" NOT NULL,
    phase       text NOT NULL,
    occurred_at timestamptz NOT NULL,
    subject     text NOT NULL,
    payload     bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON {s}.event_archive (venue_id, stream_seq);
CREATE INDEX event_archive_stream_seq ON {s}.event_archive USING brin (stream_seq);
CREATE TABLE {s}.venues (
    district                text COLLATE "C" NOT NULL,
    venue_id                text COLLATE "C" NOT NULL,
    name                    text NOT NULL,
    kind                    text NOT NULL,
    street                  text,
    address                 text,
    first_responsible_name  text NOT NULL,
    first_responsible_phone text,
    officer_name            text,
    officer_phone           text,
    registered_at           timestamptz NOT NULL,
    PRIMARY KEY (district, venue_id)
);
CREATE TABLE {s}.issues (
    district         text COLLATE "C" NOT NULL,
    issue_id         text COLLATE "C" NOT NULL,
    venue_id         text COLLATE "C" NOT NULL,
    phase            text COLLATE "C" NOT NULL,
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
    original_due_at  timestamptz,
    extensions       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (district, issue_id)
);
CREATE INDEX ON {s}.issues (district, venue_id, item_code, closed_at);
CREATE INDEX ON {s}.issues (district, venue_id, phase) WHERE closed_at IS NULL;
CREATE TABLE {s}.venue_phase_counts (
    district          text COLLATE "C" NOT NULL,
    venue_id          text COLLATE "C" NOT NULL,
    phase             text COLLATE "C" NOT NULL,
    inspections       integer NOT NULL,
    issues_found      integer NOT NULL,
    issues_closed     integer NOT NULL,
    closed_on_time    integer NOT NULL,
    recheck_failures  integer NOT NULL,
    rebounds          integer NOT NULL,
    last_inspected_at timestamptz,
    inspections_self_check  integer NOT NULL DEFAULT 0,
    inspections_supervision integer NOT NULL DEFAULT 0,
    inspections_look_back   integer NOT NULL DEFAULT 0,
    inspections_re_review   integer NOT NULL DEFAULT 0,
    items_checked           integer NOT NULL DEFAULT 0,
    items_failed            integer NOT NULL DEFAULT 0,
    PRIMARY KEY (district, venue_id, phase)
);
-- Messages the projector took but did not archive, and why: a duplicate of an archived event,
-- or a dead letter. With the archive, every message up to the checkpoint is accounted for
-- (`cw audit`).
CREATE TABLE {s}.stream_outcomes (
    stream_seq  bigint PRIMARY KEY,
    outcome     text NOT NULL,
    event_id    uuid,
    reason      text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
-- Follow-ups (RectificationDue, RecheckPassed …) that came before their IssueFound, kept until it
-- comes; waiting_since is when the projector took one (or the rebuild that made this generation).
CREATE TABLE {s}.pending_issue_events (
    district   text COLLATE "C" NOT NULL,
    issue_id   text COLLATE "C" NOT NULL,
    stream_seq bigint NOT NULL,
    subject    text NOT NULL,
    phase      text NOT NULL,
    payload    text NOT NULL,
    waiting_since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district, issue_id, stream_seq)
);
