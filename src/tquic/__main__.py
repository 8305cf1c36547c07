"""``python -m tquic`` runs the command line."""

from tquic.cli.main import run

run()
