"""Running Slipway: health, metrics, request ids and request logs, database roles."""
