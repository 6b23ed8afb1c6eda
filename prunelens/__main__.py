"""`python -m prunelens ...` = `prunelens ...`."""
import sys

from .cli import main

sys.exit(main())
