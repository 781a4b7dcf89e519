"""The one base class of GANAD Clinic's own errors.

A `GanadError` is a problem with what the program was given or found (a file, a folder, a
database, a model bundle, an option), said in one sentence that names it. The command line prints
such an error on one line and exits with its status; anything else is a bug and shows its
traceback. A leaf module: it imports nothing of the package.
"""

from __future__ import annotations


class GanadError(Exception):
    """A problem with the program's input or surroundings, not a bug; `str()` is the message."""


class ConfigError(GanadError, ValueError):
    """An option or setting whose value cannot work (a ValueError too, as it was before)."""
