"""The alert archive: every alert kept in Redis for a while, indexed for the console."""
