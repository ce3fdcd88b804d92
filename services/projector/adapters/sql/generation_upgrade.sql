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
ALTER TABLE {s}.checkpoint ADD COLUMN IF NOT EXISTS message_id text;
-- Follow-ups already waiting when this column came count as waiting since that `cw init`.
ALTER TABLE {s}.pending_issue_events
    ADD COLUMN IF NOT EXISTS waiting_since timestamptz NOT NULL DEFAULT now();
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
-- The original deadline and the extensions of an issue, and inspections by kind with their
-- items: added with what the archive says, so the views are right at once, without a rebuild.
-- The archive holds exactly the events that were applied, and follow-ups apply to an issue in
-- stream order (a waiting one when its issue comes, sorted by sequence) until the recheck that
-- closes it; a follow-up naming another venue was refused and is not applied.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = '{s}' AND table_name = 'issues' AND column_name = 'original_due_at'
    ) THEN
        ALTER TABLE {s}.issues
            ADD COLUMN original_due_at timestamptz,
            ADD COLUMN extensions integer NOT NULL DEFAULT 0;
        WITH follow_ups AS (
            SELECT a.district, a.venue_id, a.stream_seq, a.event_type,
                   convert_from(a.payload, 'UTF8')::jsonb -> 'data' AS data
            FROM {s}.event_archive a
            WHERE a.event_type IN ('RectificationDue', 'RecheckPassed')
        ), closing AS (
            SELECT district, data ->> 'issue_id' AS issue_id, venue_id, min(stream_seq) AS seq
            FROM follow_ups WHERE event_type = 'RecheckPassed'
            GROUP BY 1, 2, 3
        ), orders AS (
            SELECT f.district, f.data ->> 'issue_id' AS issue_id, f.stream_seq,
                   (f.data ->> 'due_at')::timestamptz AS due_at,
                   lag((f.data ->> 'due_at')::timestamptz) OVER (
                       PARTITION BY f.district, f.data ->> 'issue_id' ORDER BY f.stream_seq
                   ) AS previous
            FROM follow_ups f
            JOIN {s}.issues i
              ON i.district = f.district AND i.issue_id = f.data ->> 'issue_id'
             AND i.venue_id = f.venue_id
            LEFT JOIN closing c
              ON c.district = f.district AND c.issue_id = f.data ->> 'issue_id'
             AND c.venue_id = f.venue_id
            WHERE f.event_type = 'RectificationDue' AND f.stream_seq < COALESCE(c.seq, 9223372036854775807)
        )
        UPDATE {s}.issues i
        SET original_due_at = o.original, extensions = o.extensions
        FROM (
            SELECT district, issue_id, (array_agg(due_at ORDER BY stream_seq))[1] AS original,
                   (count(*) FILTER (WHERE due_at IS DISTINCT FROM previous
                                       AND previous IS NOT NULL))::integer AS extensions
            FROM orders GROUP BY 1, 2
        ) o
        WHERE i.district = o.district AND i.issue_id = o.issue_id;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = '{s}' AND table_name = 'venue_phase_counts'
          AND column_name = 'items_checked'
    ) THEN
        ALTER TABLE {s}.venue_phase_counts
            ADD COLUMN inspections_self_check integer NOT NULL DEFAULT 0,
            ADD COLUMN inspections_supervision integer NOT NULL DEFAULT 0,
            ADD COLUMN inspections_look_back integer NOT NULL DEFAULT 0,
            ADD COLUMN inspections_re_review integer NOT NULL DEFAULT 0,
            ADD COLUMN items_checked integer NOT NULL DEFAULT 0,
            ADD COLUMN items_failed integer NOT NULL DEFAULT 0;
        UPDATE {s}.venue_phase_counts c
        SET inspections_self_check = a.self_check, inspections_supervision = a.supervision,
            inspections_look_back = a.look_back, inspections_re_review = a.re_review,
            items_checked = a.checked, items_failed = a.failed
        FROM (
            SELECT district, venue_id, phase,
                   (count(*) FILTER (WHERE kind = 'self_check'))::integer AS self_check,
                   (count(*) FILTER (WHERE kind = 'supervision'))::integer AS supervision,
                   (count(*) FILTER (WHERE kind = 'look_back'))::integer AS look_back,
                   (count(*) FILTER (WHERE kind = 're_review'))::integer AS re_review,
                   COALESCE(sum(checked), 0)::integer AS checked,
                   COALESCE(sum(LEAST(COALESCE(failed, 0), checked)), 0)::integer AS failed
            FROM (
                SELECT district, venue_id, phase, data ->> 'kind' AS kind,
                       (data ->> 'items_checked')::integer AS checked,
                       (data ->> 'items_failed')::integer AS failed
                FROM (
                    SELECT district, venue_id, phase,
                           convert_from(payload, 'UTF8')::jsonb -> 'data' AS data
                    FROM {s}.event_archive WHERE event_type = 'InspectionRecorded'
                ) e
            ) k
            GROUP BY 1, 2, 3
        ) a
        WHERE c.district = a.district AND c.venue_id = a.venue_id AND c.phase = a.phase;
    END IF;
END $$;
