"""regen.daemon.run: one regend run, in order.

The agent, taking a target from the store, repair, update (with deltas), the journaled writer,
procedures, the report, the run lock and the dry run (`regend check` / `status`). The only layer
that combines `gate` and `tree`.
"""
