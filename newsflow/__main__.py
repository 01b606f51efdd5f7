"""`python -m newsflow` runs the CLI."""

from newsflow.cli import main

main()
