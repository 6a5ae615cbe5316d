"""Vigil's common library: settings, logging, stream bus, message models, metrics and health."""
