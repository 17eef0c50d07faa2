"""regen.manager: the administrator CLI `regen`."""
