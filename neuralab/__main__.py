"""`python -m neuralab` runs the command-line interface."""

from neuralab.cli import main

main()
