"""`python -m g3n_core ...`."""

from .cli import main

raise SystemExit(main())
