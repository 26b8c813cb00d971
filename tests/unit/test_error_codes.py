"""The error code registry (prodigyd/errorcodes.py) is whole and the one home of the codes:
well-formed unique codes, docs/errors.md generated from it, no code spelled anywhere else,
and the JSON-RPC errors carrying one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prodigyd import errorcodes, protocol
from prodigyd.errors import ProdigyError

ROOT = Path(__file__).parents[2]
CODE = re.compile(r"^E[0-6]\d{3}$")


def test_codes_are_well_formed_unique_and_explained():
    assert len(errorcodes.REGISTRY) >= 40
    for code, entry in errorcodes.REGISTRY.items():
        assert CODE.match(code) and entry.code == code, code
        assert entry.title and entry.help.endswith("."), code
    with pytest.raises(ValueError, match="E1002 is registered twice"):
        errorcodes._code("E1002", "again", "A second meaning.")
    assert len(errorcodes.REGISTRY) == len({e.title for e in errorcodes.REGISTRY.values()})


def test_docs_list_every_code_as_the_registry_has_it():
    doc = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    listed = re.findall(r"^### (E\d{4}): ", doc, flags=re.MULTILINE)
    assert listed == list(errorcodes.REGISTRY), "run: python -m prodigyd.errorcodes"
    assert doc == errorcodes.docs_text(doc), "run: python -m prodigyd.errorcodes"


def test_no_code_is_spelled_outside_the_registry():
    """Raise sites name codes by their constant (errorcodes.MERGE_DIRTY), so a typo is an
    AttributeError mypy finds, not an unregistered code in a user's terminal."""
    literal = re.compile(r"[\"']E\d{4}[\"']")
    for package in ("prodigyd", "prodigyctl"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name != "errorcodes.py":
                assert not literal.search(path.read_text(encoding="utf-8")), path


def test_every_json_rpc_error_carries_a_code():
    for rpc_code in (protocol.PARSE_ERROR, protocol.METHOD_NOT_FOUND, protocol.INTERNAL_ERROR):
        reply = protocol.error(1, rpc_code, "x")
        assert reply["error"]["data"]["code"] in errorcodes.REGISTRY
    exc = ProdigyError("boom", code=errorcodes.MERGE_CONFLICT)
    data = protocol.error(1, protocol.PRODIGY_ERROR, exc.message, exc.to_dict())["error"]["data"]
    assert (data["code"], data["kind"], data["message"]) == ("E3005", "error", "boom")
    assert ProdigyError("plain").to_dict()["code"] == errorcodes.ERROR
