"""``python -m optin``: the same as the ``optin`` command."""

import sys

from optin.cli import main

sys.exit(main())
