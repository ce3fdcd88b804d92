-- What operators did with dead letters (`cw dlq replay`, `cw dlq delete`), kept after the dead
-- letter itself is gone, so that `cw audit` can account for every message of CW_EVENTS: an event
-- the projector dead-lettered is either still a dead letter or has a row here saying when, by
-- which action and why it left.
CREATE TABLE IF NOT EXISTS cw.dead_letter_actions (
    id                  bigserial PRIMARY KEY,
    stage               text NOT NULL,
    dead_letter_seq     bigint NOT NULL,
    original_stream_seq bigint,
    action              text NOT NULL CHECK (action IN ('replayed', 'deleted')),
    event_id            uuid,
    event_stream_seq    bigint,
    reason              text,
    acted_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dead_letter_actions_original
    ON cw.dead_letter_actions (stage, original_stream_seq);
