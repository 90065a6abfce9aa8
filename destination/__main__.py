"""`python -m destination` is the `destination` command."""

import sys

from .cli import main

sys.exit(main())
