-- What a generation created by an earlier version lacks; `cw init` adds it (idempotent).
-- {s} is replaced by the live generation's schema name.
CREATE TABLE IF NOT EXISTS {s}.stream_outcomes (
    stream_seq  bigint PRIMARY KEY,
    outcome     text NOT NULL,
    event_id    uuid,
    reason      text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS event_archive_stream_seq ON {s}.event_archive USING brin (stream_seq);
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = '{s}' AND table_name = 'checkpoint' AND column_name = 'partition'
    ) THEN
        ALTER TABLE {s}.checkpoint ADD COLUMN partition text NOT NULL DEFAULT '';
        ALTER TABLE {s}.checkpoint DROP CONSTRAINT checkpoint_pkey;
        ALTER TABLE {s}.checkpoint ADD PRIMARY KEY (projection, partition);
    END IF;
END $$;
