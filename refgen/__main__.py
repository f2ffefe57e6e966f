"""``python -m refgen ...`` runs the ``refgen`` command (see ``refgen.cli``)."""
import sys

from refgen.cli import main

if __name__ == "__main__":
    sys.exit(main())
