import sys

from benchmark.warm import run_warm

code = run_warm(sys.argv[1:])  # a stage command, run in a fork of the warm server
if code is None:
    from benchmark.cli import main

    code = main()
raise SystemExit(code)
