"""Version swaps: blue/green and canary behind gates, shadow traffic, rollback, history."""
