"""``python -m agent`` is the ``bedside`` command."""

from agent.cli import main

raise SystemExit(main())
