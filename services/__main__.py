"""``python -m services`` is the ``vigil`` command."""

from services.cli import main

main()
