"""``python -m streamflow.cli``."""

import sys

from streamflow.cli.main import main

sys.exit(main())
