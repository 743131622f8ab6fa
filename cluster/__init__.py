"""Operations layer: inventory, transports, provisioning, rollouts and telemetry.

Every operation is an async function that yields progress events; nothing here prints
or imports Textual, so the TUI and the headless CLI drive exactly the same code.
"""
