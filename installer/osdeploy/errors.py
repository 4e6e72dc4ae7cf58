"""Errors the user sees: one line each, saying what is wrong, where, and what to do."""

import difflib
from collections.abc import Sequence
from dataclasses import dataclass


class OsdeployError(Exception):
    """An error with a one-line, user-facing message; the CLI prints it and exits."""

    #: Process exit code the CLI uses for this error.
    exit_code = 1


class InputError(OsdeployError):
    """The user's input (config file, command line) is wrong; nothing was touched."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One problem in a file: ``file:line: path: message; fix``."""

    path: str
    message: str
    fix: str
    file: str = "osdeploy.yml"
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}; {self.fix}"


class ProblemsError(OsdeployError):
    """Several problems found at once, so the user can fix them all in one go."""

    def __init__(self, problems: Sequence[Problem], what: str) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(f"{what}: {count} problem{'s' if count != 1 else ''}")


class ConfigError(ProblemsError):
    """``osdeploy.yml`` is invalid; ``problems`` lists every problem found."""

    exit_code = 2


class CatalogError(ProblemsError):
    """The service catalog itself is inconsistent (a bug in osdeploy, not in user input)."""


def suggest(word: str, choices: Sequence[str], known: str) -> str:
    """The fix part for an unknown name: a close match if there is one, else the known names.

    >>> suggest("keystne", ["keystone", "glance"], "known services")
    'did you mean keystone?'
    """
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    return f"{known}: {', '.join(choices)}"
