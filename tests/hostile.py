"""Workflow files written to hurt the reader, shared by the loader's and the daemon's tests."""

from __future__ import annotations


def billion_laughs(levels: int = 9) -> str:
    """Nine aliases of nine aliases of ...: 9**9 (387 million) strings from 800 bytes, as
    the items of a foreach. The loader refuses it at line 6, column 10 (the first *a4)."""
    lines = ['x0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"x{n}: &a{n} [" + ",".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, levels)]
    return "\n".join(
        [
            *lines,
            "commands:",
            "  - foreach:",
            f"      foreach: *a{levels - 1}",
            "      do:",
            '        - shell: "echo ${item}"',
            "",
        ]
    )
