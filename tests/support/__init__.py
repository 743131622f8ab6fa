"""Real components for tests and benchmarks: sshd test hosts, inventories, models."""
