from __future__ import annotations

import json

import pytest

from prodigyd.workflow.interpolate import (
    MISSING,
    SpaceList,
    UnresolvedVariableError,
    VariableStore,
    interpolate,
    render,
)


def make_store(**values: object) -> VariableStore:
    store = VariableStore()
    store.update(values)
    return store


# --- lookup and scopes -------------------------------------------------------------------------


def test_dotted_flat_key_resolves_directly() -> None:
    store = make_store(**{"shell.output": "hello"})
    assert store.lookup("shell.output") == "hello"
    assert interpolate("say ${shell.output}", store) == "say hello"


def test_nested_access_into_dicts_and_lists() -> None:
    store = make_store(item={"location": {"file": "a.rs"}, "tags": ["x", "y"]})
    store.set("map.results", [{"item_id": "item_0"}, {"item_id": "item_1"}])
    assert store.lookup("item.location.file") == "a.rs"
    assert store.lookup("item.tags[1]") == "y"
    assert interpolate("${map.results[1].item_id}", store) == "item_1"


def test_longest_flat_key_wins_over_walking() -> None:
    store = make_store(map={"results": "walked"})
    store.set("map.results", "flat")
    assert store.lookup("map.results") == "flat"


def test_falls_back_to_shorter_prefix_when_walk_fails() -> None:
    store = make_store(a={"b": {"c": 1}})
    store.set("a.b", {"other": 2})
    assert store.lookup("a.b.c") == 1


def test_flat_key_with_index_suffix() -> None:
    store = make_store(**{"rows[0]": "first"})
    assert store.lookup("rows[0]") == "first"


def test_walks_into_json_text() -> None:
    store = make_store(out='{"count": 3, "items": [{"name": "n0"}]}', plain="not json")
    assert store.lookup("out.count") == 3
    assert store.lookup("out.items[0].name") == "n0"
    assert store.lookup("plain.x") is MISSING


def test_missing_paths() -> None:
    store = make_store(items=["a"], obj={"k": None})
    assert store.lookup("nope") is MISSING
    assert store.lookup("items[5]") is MISSING
    assert store.lookup("items.0") is MISSING
    assert store.lookup("obj.k") is None
    assert store.lookup("#arr[@]") is MISSING
    assert store.lookup("a..b") is MISSING


def test_child_scope_shadows_and_falls_back() -> None:
    parent = make_store(name="parent", shared="p")
    child = parent.child()
    child.set("name", "child")
    assert child.lookup("name") == "child"
    assert child.lookup("shared") == "p"
    assert parent.lookup("name") == "parent"


# --- snapshot ----------------------------------------------------------------------------------


def test_snapshot_merges_scopes_and_skips_unserialisable() -> None:
    parent = make_store(a=1, b="parent", obj=object())
    child = parent.child()
    child.update({"b": "child", "files": SpaceList(["f"])})
    snap = child.snapshot()
    assert snap == {"a": 1, "b": "child", "files": ["f"]}
    json.dumps(snap)


# --- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("as is", "as is"),
        (None, ""),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-3, "-3"),
        (7.0, "7.0"),
        (0.25, "0.25"),
        (["a", "b", "c"], "a, b, c"),
        ([], ""),
        (SpaceList(["x.rs", "y.rs"]), "x.rs y.rs"),
        ([1, "a"], '[1,"a"]'),
        ({"k": "v", "n": [1, 2]}, '{"k":"v","n":[1,2]}'),
        ({"ü": "é"}, '{"ü":"é"}'),
        ((1, 2), "[1,2]"),
    ],
)
def test_render(value: object, text: str) -> None:
    assert render(value) == text


def test_render_dict_is_valid_json() -> None:
    results = [{"item_id": "item_0", "status": "Success"}]
    assert json.loads(render(results)) == results


# --- interpolation syntax ----------------------------------------------------------------------


def test_unbraced_names_and_digits() -> None:
    store = make_store(ARG="spec-1", **{"1": "first"})
    assert interpolate("/implement $ARG now", store) == "/implement spec-1 now"
    assert interpolate("$1-$ARG", store) == "first-spec-1"
    assert interpolate("${ARG}x", store) == "spec-1x"
    assert interpolate("$ARGx", store) == "$ARGx"


def test_unresolved_left_verbatim() -> None:
    store = make_store(file="data.txt")
    script = "echo $HOME ${FOO} ${a.b[0]} && awk '{print $2}' ${file}"
    assert interpolate(script, store) == "echo $HOME ${FOO} ${a.b[0]} && awk '{print $2}' data.txt"


def test_shell_parameter_syntax_untouched() -> None:
    store = make_store(arr="x")
    text = 'echo ${#arr[@]} ${arr/x/y} "$@" $? $'
    assert interpolate(text, store) == text


def test_double_dollar_is_left_alone() -> None:
    store = make_store(HOME="/h", x="v")
    assert interpolate("pid $$ and $$HOME and $${x}", store) == "pid $$ and $$HOME and $${x}"
    assert interpolate("$$$x", store) == "$$v"


def test_unterminated_brace_left_verbatim() -> None:
    store = make_store(x="v")
    assert interpolate("a ${x and $x", store) == "a ${x and v"


def test_default_used_only_when_missing() -> None:
    store = make_store(x="set", empty="")
    assert interpolate("${x:-def}", store) == "set"
    assert interpolate("${nope:-def}", store) == "def"
    assert interpolate("${empty:-def}", store) == ""
    assert interpolate("${nope:-a:b}", store) == "a:b"
    assert interpolate("${nope:-}", store) == ""


def test_default_is_not_reinterpolated_and_may_hold_braces() -> None:
    store = make_store(x="v")
    assert interpolate("${nope:-$x}", store) == "$x"
    assert interpolate("${nope:-${x}}", store) == "${x}"
    assert interpolate("${cfg:-{}}", store) == "{}"


def test_values_are_not_reinterpolated() -> None:
    store = make_store(a="${b}", b="no")
    assert interpolate("${a}", store) == "${b}"


def test_text_without_dollar_is_returned_unchanged() -> None:
    text = "plain text"
    assert interpolate(text, VariableStore()) is text


def test_renders_values_inside_text() -> None:
    store = make_store(n=3, ok=True, lines=["a", "b"], obj={"k": 1}, none=None)
    assert interpolate("$n|$ok|${lines}|${obj}|${none}|", store) == '3|true|a, b|{"k":1}||'


# --- modifiers ---------------------------------------------------------------------------------


def files_store() -> VariableStore:
    return make_store(
        **{"step.files_added": SpaceList(["docs/a.md", "src/lib.rs", "src/deep/x.rs", "README.md"])}
    )


def test_glob_modifier_crosses_directories() -> None:
    store = files_store()
    assert interpolate("${step.files_added:*.md}", store) == "docs/a.md README.md"
    assert interpolate("${step.files_added:src/*}", store) == "src/lib.rs src/deep/x.rs"
    assert interpolate("${step.files_added:src/**/*.rs}", store) == "src/lib.rs src/deep/x.rs"
    assert interpolate("${step.files_added:*.py}", store) == ""


def test_glob_keeps_list_type() -> None:
    store = files_store()
    assert isinstance(store.resolve("step.files_added:*.rs"), SpaceList)
    store.set("plain", ["a.rs", "b.md"])
    assert store.resolve("plain:*.rs") == ["a.rs"]
    assert not isinstance(store.resolve("plain:*.rs"), SpaceList)


def test_join_modifiers() -> None:
    store = files_store()
    assert interpolate("${step.files_added:lines}", store) == (
        "docs/a.md\nsrc/lib.rs\nsrc/deep/x.rs\nREADME.md"
    )
    assert interpolate("${step.files_added:newline}", store).count("\n") == 3
    assert interpolate("${step.files_added:csv}", store) == (
        "docs/a.md,src/lib.rs,src/deep/x.rs,README.md"
    )
    assert interpolate("${step.files_added:comma}", store).count(",") == 3


def test_json_modifier() -> None:
    store = files_store()
    store.update({"s": "text", "n": 5, "empty": []})
    assert json.loads(interpolate("${step.files_added:json}", store))[0] == "docs/a.md"
    assert interpolate("${s:json}", store) == '"text"'
    assert interpolate("${n:json}", store) == "5"
    assert interpolate("${empty}|${empty:json}", store) == "|[]"


def test_modifiers_chain_left_to_right() -> None:
    store = files_store()
    assert interpolate("${step.files_added:*.md:lines}", store) == "docs/a.md\nREADME.md"
    assert interpolate("${step.files_added:src/*:*.rs:csv}", store) == "src/lib.rs,src/deep/x.rs"
    assert interpolate("${step.files_added:*.md:json}", store) == '["docs/a.md","README.md"]'


def test_glob_on_scalar() -> None:
    store = make_store(f="main.rs")
    assert interpolate("[${f:*.rs}]", store) == "[main.rs]"
    assert interpolate("[${f:*.md}]", store) == "[]"


def test_modifier_on_missing_keeps_reference_or_uses_default() -> None:
    store = VariableStore()
    assert interpolate("${nope:json}", store) == "${nope:json}"
    assert interpolate("${nope:*.rs:-none}", store) == "none"


# --- strict mode -------------------------------------------------------------------------------


def test_strict_lists_every_unresolved_reference() -> None:
    store = make_store(known=1, nested={"a": 1})
    with pytest.raises(UnresolvedVariableError) as info:
        interpolate("${a} $B ${a} ${c.d[0]} ${known} ${x:-ok}", store, strict=True)
    err = info.value
    assert err.references == ["${a}", "$B", "${c.d[0]}"]
    assert "${a}, $B, ${c.d[0]}" in err.message
    assert err.details is not None
    assert "known (int)" in err.details
    assert "nested (dict)" in err.details


def test_strict_passes_when_everything_resolves() -> None:
    assert interpolate("${a}-$a", make_store(a="x"), strict=True) == "x-x"
