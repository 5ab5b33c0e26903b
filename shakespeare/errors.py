"""User-facing errors: one clear line naming the cause and the fix, exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

USER_ERROR_EXIT = 2


class UserError(Exception):
    """Something the user can fix (bad flag, missing file, corrupt checkpoint, ...)."""


def run_cli(main: Callable[[], int | None]) -> None:
    """Run a CLI entry point; turn UserError into one line on stderr and exit status 2."""
    try:
        code = main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)

