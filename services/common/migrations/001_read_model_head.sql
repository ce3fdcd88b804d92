-- The pointer to the live generation of the read model. Each generation is a schema
-- cw_rm_<n> with its own tables and checkpoint; `cw rebuild` builds the next one beside the live
-- one and moves this pointer (and the public views) in one transaction.
CREATE TABLE IF NOT EXISTS cw.read_model_head (
    projection    text PRIMARY KEY,
    active_schema text NOT NULL,
    generation    integer NOT NULL,
    activated_at  timestamptz NOT NULL DEFAULT now()
);
