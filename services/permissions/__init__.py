"""Who may do what on NATS: the users, their permissions, their credentials."""
