"""`cw dlq`: the command line."""
