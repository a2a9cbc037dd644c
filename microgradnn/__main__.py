"""`python -m microgradnn`: the command line."""
from microgradnn.cli import main

raise SystemExit(main())
