"""Source adapters: one module per kind of source, listed in :mod:`.registry`."""
