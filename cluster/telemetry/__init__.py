"""Live telemetry: scrape every node's Prometheus endpoint and the apps' monitors, derive
per-version rates, latency percentiles, balance and accuracy over sliding windows."""
