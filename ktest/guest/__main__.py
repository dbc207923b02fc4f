"""python -m ktest.guest: the guest harness (ktest.guest.harness)."""

import sys

from ktest.guest.harness import main

sys.exit(main())
