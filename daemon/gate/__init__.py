"""regen.daemon.gate: may this machine start its software?

Hardware probes, their judgement against the configured limits, time boxes and start checks.
Imports nothing from `regen.daemon.run` (tests/test_layers.py checks the direction).
"""
