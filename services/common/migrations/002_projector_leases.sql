-- Fencing for the single-writer lock: each projector that takes the write lock of a durable
-- bumps its epoch, and every batch checks the epoch it holds. A projector whose lock silently
-- passed to a standby can then never commit again.
CREATE TABLE IF NOT EXISTS cw.projector_leases (
    durable text PRIMARY KEY,
    epoch   bigint NOT NULL
);
