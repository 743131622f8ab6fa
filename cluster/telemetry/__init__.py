"""Live telemetry: follow a digest of every node's Prometheus metrics and ask the apps'
monitors, derive per-version rates, latency percentiles, balance and accuracy over sliding
windows."""
