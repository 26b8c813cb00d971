"""The `prodigy ...` command lines of the original prodigy's book, for
tests/unit/test_original_commands.py (tests/corpus/prodigy/book-commands.txt is this
script's output):

    .venv/bin/python -m tests.corpus.book_commands PATH-TO-A-CHECKOUT-OF-iepathos/prodigy \\
        > tests/corpus/prodigy/book-commands.txt

A command line is a line of a fenced code block (of `book/src/**/*.md`) that starts with
`prodigy ` (or `$ prodigy `), with the lines it continues onto (a trailing `\\`), up to
what the shell does with it: a comment, a pipe, a redirection or a `;`/`&&`. Each distinct
one is written once, after the page and line where it first appears, as the book has it
(placeholders such as `<job_id>` included).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

#: Where the shell stops reading the command's own words: a pipe, a list, a redirection
#: (`<job_id>` is a placeholder of the book, not one).
_SHELL = re.compile(r"\|\|?|&&?|;|[0-9&]?>.*|<")


def command_lines(root: Path) -> Iterator[tuple[str, str]]:
    """(where, command line) of every command line of the book, in page order."""
    for page in sorted((root / "book" / "src").rglob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        fenced, number = False, 0
        while number < len(lines):
            line = lines[number].strip()
            number += 1
            if line.startswith("```"):
                fenced = not fenced
                continue
            line = line.removeprefix("$ ")
            if not fenced or not line.startswith("prodigy "):
                continue
            first, text = number, _uncommented(line)
            while text.endswith("\\") and number < len(lines):
                text = text[:-1].rstrip() + " " + _uncommented(lines[number].strip())
                number += 1
            where = f"{page.relative_to(root).as_posix()}:{first}"
            yield where, _own_words(text)


def _uncommented(line: str) -> str:
    """The line without a trailing `# comment` (a `#` that starts a word, outside quotes)."""
    quoted = False
    for index, char in enumerate(line):
        if char in "'\"":
            quoted = not quoted
        elif char == "#" and not quoted and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line


def _own_words(text: str) -> str:
    """The command line up to what the shell does with its output (`| jq ...`, `2>&1`)."""
    lexer = shlex.shlex(text, posix=False)
    lexer.whitespace_split = True
    lexer.commenters = ""
    words: list[str] = []
    for word in lexer:
        if _SHELL.fullmatch(word):
            break
        words.append(word)
    return " ".join(words)


def main(root: Path) -> None:
    commit = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    seen: dict[str, str] = {}
    count = 0
    for where, line in command_lines(root):
        count += 1
        seen.setdefault(line, where)
    print("# The `prodigy ...` command lines of the original prodigy's book, book/src/**/*.md")
    print(f"# of iepathos/prodigy at {commit}:")
    print(f"# each distinct one of its {count} once ({len(seen)}), after where it first appears.")
    print("# Made by tests/corpus/book_commands.py; tests/unit/test_original_commands.py")
    print("# parses each with prodigy's command line.")
    for line, where in seen.items():
        print(f"{where}\t{line}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
