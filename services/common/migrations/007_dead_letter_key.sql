-- The key of the services' dead-letter ids (services/consumer/letter_key.py). CW_DEAD_LETTERS
-- deduplicates by Nats-Msg-Id across all its subjects, and a district's publisher may write any
-- Nats-Msg-Id on its own cw.dlq.intake.<district>: a service's id must be one no district can
-- know, or a district could write it first and the service's letter would be taken for a
-- duplicate and never stored. One random key per deployment (244 bits from
-- gen_random_uuid's strong random source), never changed, read only by the services' role.
CREATE TABLE IF NOT EXISTS cw.dead_letter_key (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    key text NOT NULL
);
INSERT INTO cw.dead_letter_key (key)
VALUES (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
ON CONFLICT DO NOTHING;
