"""The one name check: every name that becomes a path component is 1-100 of [A-Za-z0-9_.-],
not '.' or '..', not a folder the results layout uses; refusals name the value and what is expected."""

import pytest

from tdw.errors import ConfigError
from tdw.names import UnsafeNameError, check_name


@pytest.mark.parametrize("name", ["sweep", "p113_seed0_frac0.5", "b0.9-0.98", "a" * 100, "x.yaml", "-", "Compare2"])
def test_safe_names_pass_unchanged(name):
    assert check_name(name, "config name") == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "'' is empty"),
        ("..", "'..' is a relative folder"),
        (".", "'.' is a relative folder"),
        ("../etc", "'../etc' has the character '/'"),
        ("/etc/passwd", "'/etc/passwd' has the character '/'"),
        ("a b\\c", "'a b\\\\c' has the characters ' ', '\\\\'"),
        ("é", "'é' has the character 'é'"),
        ("compare", "'compare' is a folder or file the results layout uses"),
        ("Sweeps", "'Sweeps' is a folder or file the results layout uses"),
        ("logs", "'logs' is a folder or file the results layout uses"),
        ("storage.json", "'storage.json' is a folder or file the results layout uses"),
        ("a" * 101, f"{'a' * 40 + '...'!r} has 101 characters"),
    ],
)
def test_unsafe_names_are_refused_naming_the_value(name, problem):
    with pytest.raises(UnsafeNameError) as err:
        check_name(name, "config name")
    expected = "expected 1 to 100 of the characters A-Z a-z 0-9 _ . - (not '.' or '..', nor one of "
    assert str(err.value) == (f"config name {problem}; {expected}['compare', 'logs', 'replaced', 'storage.json', 'sweeps'])")
    assert isinstance(err.value, ConfigError) and isinstance(err.value, ValueError)  # caught where config errors are


def test_a_name_that_is_no_text_is_refused():
    with pytest.raises(UnsafeNameError, match=r"^family None: expected a text name of 1 to 100"):
        check_name(None, "family")
