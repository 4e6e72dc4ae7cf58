#!/usr/bin/env python3
"""Report task logic that two roles both carry (STYLE.md, convention 10).

Reads every ``roles/*/tasks/*.yml`` and reports each run of ``--min-lines``
(default 6) or more consecutive normalized lines that occurs in two different
roles, with ``file:line`` of both copies. Exit 1 when it finds one, 0 (and no
output) when it finds none.

    python tools/repeated_tasks.py              # the repository's roles/
    python tools/repeated_tasks.py path/to/roles --min-lines 8

Normalizing, so that a copy is found even after its names were adapted:

- leading and trailing white space go (a copy moved into a block is still a
  copy); blank lines, comment lines and ``---`` do not count;
- the role's own name, wherever it stands as a word or a name part
  (``_glance_db_check``, ``glance_port``, ``glance-manage``, ``Glance``,
  "Migrate the glance schema"), reads ``ROLE``.

Tasks that only hand over to other task files or roles carry no logic of
their own: ``include_role``/``import_role`` (a call of a shared entry point,
whose arguments are the caller's data), ``include_tasks``/``import_tasks``
and ``include_vars``. Their lines are left out and end a run; this is what
leaves every role's ``tasks/main.yml`` (only includes, by convention) and the
calls of ``openstack_service``/``common`` out of the report.

YAML is read as text, not parsed, so ``file:line`` point at the source; the
jscpd-style ``duplicates`` tool does not read YAML.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIN_LINES = 6

#: Modules of tasks that only include something: their lines are no logic.
_INCLUDE_MODULES = {
    f"{prefix}{name}"
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for name in ("include_role", "import_role", "include_tasks", "import_tasks", "include_vars")
}
_TASK_START = re.compile(r"^(?P<indent>\s*)- ")
_KEY = re.compile(r"^\s*(?:- )?(?P<key>[A-Za-z0-9_.]+):")


@dataclass(frozen=True)
class Line:
    """One counted line: where it stands and what it reads as."""

    path: Path
    number: int  # 1-based, in the source file
    text: str  # normalized


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_noise(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#") or stripped == "---"


def include_lines(lines: list[str]) -> set[int]:
    """0-based indexes of the lines of tasks that only include something."""
    skipped: set[int] = set()
    for start, line in enumerate(lines):
        match = _TASK_START.match(line)
        if not match:
            continue
        indent = len(match.group("indent"))
        # The task ends before the next line (not blank, not a comment) that is
        # indented no deeper than its "- ".
        end = start + 1
        while end < len(lines) and (_is_noise(lines[end]) or _indent(lines[end]) > indent):
            end += 1
        # Its own keys stand at indent + 2 (the first one after "- ").
        keys = {
            key.group("key")
            for i in range(start, end)
            if (key := _KEY.match(lines[i]))
            and (i == start or (_indent(lines[i]) == indent + 2 and not _is_noise(lines[i])))
        }
        if keys & _INCLUDE_MODULES:
            skipped.update(range(start, end))
    return skipped


def normalize(text: str, role: str) -> str:
    """``text`` without surrounding blanks and with the role's name as ROLE."""
    name = re.escape(role)
    # The name as a word or a name part: not inside another word, but "_" and
    # "-" may join it to more (_glance_user, glance-manage, glance_port).
    pattern = re.compile(rf"(?<![A-Za-z0-9]){name}(?![A-Za-z0-9])", re.IGNORECASE)
    return pattern.sub("ROLE", text.strip())


def role_lines(path: Path, role: str) -> list[list[Line]]:
    """The counted lines of one task file, cut where an include task stands."""
    lines = path.read_text().splitlines()
    skipped = include_lines(lines)
    segments: list[list[Line]] = [[]]
    for index, line in enumerate(lines):
        if index in skipped:
            if segments[-1]:
                segments.append([])
            continue
        if _is_noise(line):
            continue
        segments[-1].append(Line(path, index + 1, normalize(line, role)))
    return [segment for segment in segments if segment]


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Repeat:
    """A run of ``length`` normalized lines found at ``first`` and ``second``."""

    first: Line
    second: Line
    length: int

    def __str__(self) -> str:
        return (
            f"{_shown(self.first.path)}:{self.first.number}:"
            f" {_shown(self.second.path)}:{self.second.number}:"
            f" {self.length} lines repeated, from: {self.first.text}"
        )


def find_repeats(roles_dir: Path, min_lines: int = MIN_LINES) -> list[Repeat]:
    """Every longest run of ``min_lines``+ lines that two different roles share."""
    # Each window of min_lines consecutive lines, keyed by its text.
    windows: dict[tuple[str, ...], list[tuple[str, int, int]]] = defaultdict(list)
    segments: list[list[Line]] = []
    roles: list[str] = []
    for path in sorted(roles_dir.glob("*/tasks/*.yml")):
        role = path.parent.parent.name
        for segment in role_lines(path, role):
            seg = len(segments)
            segments.append(segment)
            roles.append(role)
            for start in range(len(segment) - min_lines + 1):
                key = tuple(line.text for line in segment[start : start + min_lines])
                windows[key].append((role, seg, start))
    # Window pairs from different roles; a run is a chain of pairs whose
    # windows both move on by one line.
    pairs: set[tuple[int, int, int, int]] = set()
    for places in windows.values():
        for i, (role_a, seg_a, start_a) in enumerate(places):
            for role_b, seg_b, start_b in places[i + 1 :]:
                if role_a != role_b:
                    pairs.add((seg_a, start_a, seg_b, start_b))
    repeats: list[Repeat] = []
    for seg_a, start_a, seg_b, start_b in sorted(pairs):
        if (seg_a, start_a - 1, seg_b, start_b - 1) in pairs:
            continue  # inside a run that began earlier
        more = 1  # windows that follow on both sides
        while (seg_a, start_a + more, seg_b, start_b + more) in pairs:
            more += 1
        repeats.append(
            Repeat(segments[seg_a][start_a], segments[seg_b][start_b], min_lines + more - 1)
        )
    return repeats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "roles", nargs="?", type=Path, default=ROOT / "roles", help="roles directory"
    )
    parser.add_argument("--min-lines", type=int, default=MIN_LINES, help="shortest run reported")
    args = parser.parse_args(argv)
    repeats = find_repeats(args.roles, args.min_lines)
    for repeat in repeats:
        print(repeat)
    return 1 if repeats else 0


if __name__ == "__main__":
    sys.exit(main())
