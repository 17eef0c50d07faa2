"""regen.daemon: the client agent `regend`."""
