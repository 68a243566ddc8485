"""Command-line options derived from a local entrypoint's signature."""

from __future__ import annotations

from typing import Optional

import pytest

from skiff._entrypoint import options_for, parse_options, usage_text
from skiff.exception import UsageError


def main(n: int = 200, name: str = "x", flag: bool = False, ratio: float = 0.5):
    """Do things."""


def needs(count: int, label: str, verbose: bool):
    pass


def test_defaults_left_to_function():
    assert parse_options(main, []) == {}


def test_types_are_parsed():
    got = parse_options(main, ["--n", "50", "--name", "y", "--flag", "--ratio", "2.5"])
    assert got == {"n": 50, "name": "y", "flag": True, "ratio": 2.5}
    assert isinstance(got["n"], int) and isinstance(got["ratio"], float)


def test_equals_form_negative_numbers_and_no_flag():
    got = parse_options(main, ["--n=-3", "--no-flag", "--name=a=b"])
    assert got == {"n": -3, "flag": False, "name": "a=b"}
    assert parse_options(main, ["--flag=false"]) == {"flag": False}


def test_underscores_and_dashes():
    def f(max_items: int = 1, dry_run: bool = False):
        pass

    assert parse_options(f, ["--max-items", "4", "--dry-run"]) == {"max_items": 4, "dry_run": True}
    assert parse_options(f, ["--max_items", "5", "--no-dry-run"]) == {"max_items": 5, "dry_run": False}


def test_bad_int_names_the_option():
    with pytest.raises(UsageError) as ei:
        parse_options(main, ["--n", "abc"])
    assert "--n" in str(ei.value) and "'abc'" in str(ei.value) and "integer" in str(ei.value)


def test_bad_float_and_bool():
    with pytest.raises(UsageError, match="--ratio"):
        parse_options(main, ["--ratio", "fast"])
    with pytest.raises(UsageError, match="--flag"):
        parse_options(main, ["--flag=maybe"])


def test_required_options():
    with pytest.raises(UsageError, match="missing option --count"):
        parse_options(needs, ["--label", "a", "--verbose"])
    with pytest.raises(UsageError, match="--verbose"):
        parse_options(needs, ["--label", "a", "--count", "1"])
    assert parse_options(needs, ["--count", "1", "--label", "a", "--no-verbose"]) == {
        "count": 1, "label": "a", "verbose": False,
    }


def test_unknown_option_and_positional():
    with pytest.raises(UsageError, match="no such option: --bogus"):
        parse_options(main, ["--bogus", "1"])
    with pytest.raises(UsageError, match="unexpected argument"):
        parse_options(main, ["50"])
    with pytest.raises(UsageError, match="needs a value"):
        parse_options(main, ["--n"])


def test_string_annotations_optional_and_unannotated():
    def f(a: "int" = 1, b: Optional[float] = None, c=3, d=None):
        pass

    assert parse_options(f, ["--a", "2", "--b", "1.5", "--c", "4", "--d", "x"]) == {
        "a": 2, "b": 1.5, "c": 4, "d": "x",
    }


def test_unsupported_parameters():
    def f(*args):
        pass

    def g(x: list = []):  # noqa: B006
        pass

    with pytest.raises(UsageError):
        options_for(f)
    with pytest.raises(UsageError, match="list"):
        options_for(g)


def test_usage_text_lists_options():
    text = usage_text("skiff run f.py::main", main)
    assert "--n INT" in text and "--flag/--no-flag" in text and "Do things." in text
