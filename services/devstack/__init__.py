"""The local development stack: ``cw dev`` (NATS, PostgreSQL and the services, on this machine).

``system`` (stdlib only) knows about ports, accounts and binaries; ``servers`` runs own NATS and
PostgreSQL processes; ``stack`` finds or starts both; ``cli`` is ``cw dev``; ``cleanup`` is
``make clean``'s helper.
"""
