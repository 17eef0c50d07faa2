"""regen.contrib: the example configuration, policy, systemd units, backend guides and man pages,
shipped in the wheel as package data (read with importlib.resources; `regend example-config` and
`regend install-units` hand them out). No code lives here."""
