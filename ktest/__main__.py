import sys

try:
    from ktest.cli import main
except KeyboardInterrupt:       # Ctrl-C while ktest is still starting up
    print("ktest: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
