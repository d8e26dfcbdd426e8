"""``python -m sigmarrow``: the command line."""

from sigmarrow.cli import main

raise SystemExit(main())
