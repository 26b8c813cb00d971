from __future__ import annotations

import json

import pytest

from prodigyd.engine.mask import MASK, Masker

GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5" * 4
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


def test_mask_constant() -> None:
    assert MASK == "***"


def test_literal_secrets_are_masked_everywhere() -> None:
    masker = Masker(["hunter22", "s3cr3t-value"])
    text = "pw=hunter22; again hunter22 and s3cr3t-value!"
    assert masker.mask(text) == "pw=***; again *** and ***!"


def test_added_secret_is_masked_from_then_on() -> None:
    masker = Masker()
    assert masker.mask("key=abcd1234") == "key=abcd1234"
    masker.add("abcd1234")
    assert masker.mask("key=abcd1234") == "key=***"


def test_longest_secret_masked_first() -> None:
    masker = Masker(["pass", "password123"])
    assert masker.mask("password123 pass") == "*** ***"


def test_every_non_empty_secret_is_masked_however_short() -> None:
    # env.py refuses secrets shorter than MIN_SECRET_LENGTH; none is ever shown in clear
    masker = Masker(["", "on", "dev"])
    assert masker.mask("deploy on dev: ok") == "deploy *** ***: ok"


def test_each_line_of_a_multi_line_secret_is_masked_on_its_own() -> None:
    key = "-----BEGIN KEY-----\n  Zq7vL2mX8pR4tY6w\nab\nKp3nB5cD9fG1hJ0e\n-----END KEY-----\n"
    masker = Masker()
    masker.add(key, name="KEY")
    assert masker.mask(f"whole: {key}") == "whole: ***"
    shown = "\n".join(masker.mask(line) for line in key.splitlines())
    assert shown == "***\n  ***\nab\n***\n***"  # "ab": under MIN_SECRET_LENGTH
    assert masker.restore(masker.protect({"v": key})) == {"v": key}
    assert masker.protect("Zq7vL2mX8pR4tY6w") == "***"  # a line alone: masked, not protected


def test_regex_characters_in_secrets_are_literal() -> None:
    masker = Masker(["a.b*c(d)"])
    assert masker.mask("x a.b*c(d) aXbbc(d)") == "x *** aXbbc(d)"


def test_text_without_secrets_is_unchanged() -> None:
    masker = Masker()
    text = "cargo test --all\nBasic usage of the Bearer authentication scheme\n"
    assert masker.mask(text) == text
    assert masker.mask("") == ""


CREDENTIALS = [
    (f"token {GITHUB_TOKEN} end", "token *** end"),
    ("gho_abcdefghij1234567890 x", "*** x"),
    ("ghs_0123456789abcdef", "***"),
    ("github_pat_11ABCDEFG0123456789_abcdefXYZ", "***"),
    ("key AKIAIOSFODNN7EXAMPLE.", "key ***."),
    ("ANTHROPIC_API_KEY=sk-ant-api03-AbC_dEf-0123456789xyz", "ANTHROPIC_API_KEY=***"),
    ("oauth sk-ant-oat01-0123456789abcdefABCDEF done", "oauth *** done"),
    ("sk-proj-0123456789abcdefghij", "***"),
    ("slack xoxb-1234567890-abcdefghij", "slack ***"),
    (f"jwt={JWT};", "jwt=***;"),
    ("Authorization: Bearer abc123.def-456", "Authorization: Bearer ***"),
    ("authorization: bearer Zm9vYmFyMTIz", "authorization: bearer ***"),
    ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
]


@pytest.mark.parametrize(("text", "expected"), CREDENTIALS)
def test_credential_shapes_are_masked(text: str, expected: str) -> None:
    assert Masker().mask(text) == expected


@pytest.mark.parametrize(("text", "expected"), CREDENTIALS)
def test_every_shape_match_holds_its_anchor(text: str, expected: str) -> None:
    """Text without an anchor is never searched for shapes: each match must hold one, or
    that shape would go unmasked."""
    from prodigyd.engine.mask import _ANCHORS_ONLY, _SHAPES_ONLY

    matches = list(_SHAPES_ONLY.finditer(text))
    assert matches and all(_ANCHORS_ONLY.search(match.group(0)) for match in matches)


def test_an_event_without_secrets_is_copied_as_it_is() -> None:
    masker = Masker(["s3cret-value"])
    event = {"step": "1", "display": "shell: make", "exit_code": 0, "ok": True, "n": None}
    masked = masker.mask_obj(event)
    assert masked == event and masked is not event
    nested = {"a": {"b": ["x s3cret-value", 1.5]}, "c": ("s3cret-value",)}
    assert masker.mask_obj(nested) == {"a": {"b": ["x ***", 1.5]}, "c": ("***",)}


@pytest.mark.parametrize(
    "text",
    [
        "Basic usage is documented",
        "Bearer authentication.",
        "bearer token-based auth",
        "ghp_short",
        "AKIA1234",
        "sk-ant-short",
        "risk-ant-0123456789abcdefghij",
        "xoxb-short",
        "eyJ only",
    ],
)
def test_lookalikes_are_not_masked(text: str) -> None:
    assert Masker().mask(text) == text


def test_mask_obj_masks_nested_values_not_keys() -> None:
    masker = Masker(["topsecret"])
    obj = {
        "topsecret": "value topsecret",
        "list": ["topsecret", 1, None, ("topsecret", True)],
        "nested": {"deep": [{"v": f"x {GITHUB_TOKEN}"}]},
    }
    masked = masker.mask_obj(obj)
    assert masked == {
        "topsecret": "value ***",
        "list": ["***", 1, None, ("***", True)],
        "nested": {"deep": [{"v": "x ***"}]},
    }
    assert obj["list"][0] == "topsecret"


def test_a_cut_never_splits_a_secret():
    masker = Masker(["s3cret-token-value"])
    text = "head s3cret-token-value tail"
    assert masker.cut(text, 100) == text
    assert masker.cut(text, 10) == "head "  # would have kept "s3cre"
    assert masker.cut(text, 23) == "head s3cret-token-value"  # the whole secret fits
    assert masker.cut(text, 3) == "hea"
    assert masker.cut("ghp_" + "a" * 30, 8) == ""  # a token recognised by its shape too


def test_a_masker_made_from_its_secrets_elsewhere_masks_and_restores_alike() -> None:
    """A map agent run in another process gets the session's masker as data."""
    masker = Masker(["plain-value"])
    masker.add("tok-Vb3nQ8rT2wL6yP0s", name="API_TOKEN")
    copy = Masker.of(json.loads(json.dumps(masker.secrets())))
    text = "plain-value and tok-Vb3nQ8rT2wL6yP0s"
    assert copy.mask(text) == masker.mask(text) == "*** and ***"
    assert copy.protect(text) == masker.protect(text) == "*** and «secret:API_TOKEN»"
    assert copy.restore(masker.protect(text)) == "*** and tok-Vb3nQ8rT2wL6yP0s"
