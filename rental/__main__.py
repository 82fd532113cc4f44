"""`python -m rental`: the CLI."""

from rental.cli import main

main()
