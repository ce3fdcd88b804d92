"""Each NATS user's permissions, pure: ``users.py``."""
