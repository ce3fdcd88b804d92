"""One-shot operator commands that concern more than one service (``cw tracking reset``); a
service's own commands are in its ``entrypoints/``, their SQL in its ``adapters/``."""
