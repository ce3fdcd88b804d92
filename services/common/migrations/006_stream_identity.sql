-- The reminders' tracking row keeps the id of the message at its checkpoint's sequence, which
-- tells CW_EVENTS from another stream of that name (services/consumer/identity.py). NULL: a
-- checkpoint committed before this migration (nothing to compare until the next batch).
ALTER TABLE cw_reminders.checkpoint ADD COLUMN IF NOT EXISTS message_id text;
