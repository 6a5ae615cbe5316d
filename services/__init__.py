"""Vigil's services: poller, classifier and notifier, and the ``vigil`` command line."""
