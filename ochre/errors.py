"""User-facing errors: one line that names the file, the field and the fix.

Entry points wrap `main` with `cli_entry`, which prints an `OchreError` as a single
`error: ...` line and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class OchreError(Exception):
    """An error caused by the user's input (file, config key, argument)."""


class ConfigError(OchreError):
    """A config key that is unknown, of the wrong type, or out of range."""


def cli_entry(main: Callable[..., T]) -> Callable[..., T]:
    """Run `main`, turning `OchreError` into one line on stderr and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except OchreError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
