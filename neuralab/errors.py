"""User-facing failures.

A `NeuralabError` carries where the problem is (a config key, a file, a column), what
went wrong, and a hint. The CLI prints it as one line per problem and exits with code 2;
library code raises it and never prints.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input."""

    where: str
    what: str
    hint: str = ""

    def __str__(self) -> str:
        line = f"{self.where}: {self.what}" if self.where else self.what
        return f"{line} ({self.hint})" if self.hint else line


class NeuralabError(Exception):
    """An error caused by the user's input: config, data files, run directories.

    Args:
        where: The config key, file or column the problem is in.
        what: What went wrong, with the value received.
        hint: How to fix it, or what would have been valid.
    """

    def __init__(self, where: str, what: str, hint: str = "") -> None:
        self.problems: tuple[Problem, ...] = (Problem(where, what, hint),)
        super().__init__(str(self.problems[0]))

    @classmethod
    def many(cls, problems: Iterable[Problem]) -> NeuralabError:
        """One error reporting several problems at once (e.g. every config mistake)."""
        problems = tuple(problems)
        error = cls(problems[0].where, problems[0].what, problems[0].hint)
        error.problems = problems
        error.args = ("; ".join(str(p) for p in problems),)
        return error

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint listing valid choices, led by the closest match if there is one."""
    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=1)
    listing = f"valid: {', '.join(choices)}"
    return f"did you mean '{close[0]}'? {listing}" if close else listing
