"""Where tickets go: webhook, Alertmanager, JSON-lines file."""
