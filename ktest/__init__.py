"""ktest: kernel patch test-and-regression CI for Linux networking under virtme-ng.

Not the kernel's tools/testing/ktest/ktest.pl.
"""

__version__ = "0.1.0"
