"""regen.daemon.tree: make a directory match a manifest.

The stat index, the scan and its fast path, plan, apply, confined file operations, quarantine,
the object cache and fetching into it. Imports nothing from `regen.daemon.run`.
"""
