"""`python -m artcloak ...` runs the command line (same as the `artcloak` script)."""
from .cli import main

raise SystemExit(main())
