"""Which specimen a received image is of. By default the folders say (store.specimens.default_accession:
a subfolder directly under the inbox is a specimen, a file directly in it one of its own); a lab
whose scanner names files after the accession states a pattern with a group named `accession`,
e.g. `^(?P<accession>[A-Z]+-\\d+)_`. A file name the pattern does not match falls back to the folders."""

from __future__ import annotations

import re
from pathlib import PurePath

from ganad_clinic.errors import ConfigError
from ganad_clinic.store.specimens import default_accession


class AccessionRule:
    def __init__(self, pattern: str | None = None) -> None:
        self.pattern = None if not pattern else compile_pattern(pattern)

    def accession(self, path: str, inbox: str) -> str:
        if self.pattern is not None:
            found = self.pattern.search(PurePath(path).name)
            if found is not None and found.group("accession"):
                return found.group("accession")
        return default_accession(path, inbox)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The pattern, checked: it must be a regular expression with a group named `accession`."""
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ConfigError(f"the accession pattern {pattern!r} is not a regular expression: {error}") from None
    if "accession" not in compiled.groupindex:
        raise ConfigError(f"the accession pattern {pattern!r} has no group named accession: write (?P<accession>...)")
    return compiled
