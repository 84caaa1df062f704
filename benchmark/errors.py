"""The error every entry point answers in one line: bad input, exit code 2, no traceback.

Domain code raises it (or a ValueError the stage turns into it); ``benchmark.cli`` prints
it. It lives here, not in the CLI module, so that nothing imports the CLI.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: printed as one line, exit code 2, no traceback."""
