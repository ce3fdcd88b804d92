"""The dead letters' rules: pure functions of a dead letter and its replacement."""
