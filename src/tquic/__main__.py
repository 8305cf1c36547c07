"""``python -m tquic`` runs the command line."""

import sys

from tquic.cli.main import main

sys.exit(main())
