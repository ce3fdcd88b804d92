"""``cw dlq``'s adapters: ``jetstream.py`` holds every NATS call, ``postgres.py`` every SQL
statement."""
