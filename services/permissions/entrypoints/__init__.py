"""``cw nats``: the users of the NATS server."""
