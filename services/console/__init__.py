"""The web console: live alerts, the claims ledger, subscriptions, sources and dead letters."""
