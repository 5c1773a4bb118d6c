"""What operators watch: Prometheus metrics (metrics.py), health and readiness (health.py),
JSON logs with a request id (logs.py). Shared by both hosts and the workers; imports nothing
of ours but contracts."""
