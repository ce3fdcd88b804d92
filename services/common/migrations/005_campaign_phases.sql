-- The campaign's phases as SQL sees them (the campaign file is the truth; `cw init` writes them
-- here again on every run), so that the views can show venues never inspected in a phase that
-- has started (coverage). Instants: a phase starts at local midnight of its first day and ends
-- (exclusive) at local midnight of its end day, in the campaign's time zone; NULL runs on.
CREATE TABLE IF NOT EXISTS cw.campaign_phases (
    phase     text COLLATE "C" PRIMARY KEY,
    title     text NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at   timestamptz
);
