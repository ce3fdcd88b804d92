"""Credentials: new passwords and NKeys, written to files only their owner can read."""
