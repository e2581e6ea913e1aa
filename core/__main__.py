"""`python -m core` is the CLI."""

from core.cli import main

raise SystemExit(main())
