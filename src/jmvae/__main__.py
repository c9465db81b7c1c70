"""``python -m jmvae`` runs the command line."""

import sys

from jmvae.cli import main

sys.exit(main())
