"""``python -m services`` is the ``vigil`` command."""

from services.entry import main

main()
