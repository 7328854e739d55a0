"""Hostile and careless scenario files: what is read, what is refused, what is echoed.

A scenario file is a regular file of at most `MAX_SCENARIO_BYTES`, UTF-8 (a
byte-order mark is fine), TOML nested at most `MAX_DEPTH` deep; anything else
is one `ScenarioError` naming the file, never a traceback or a hang. `extends`
stays inside the folder of the file named on the command line unless allowed,
and an error never shows what a file that is no scenario holds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from twin.errors import ScenarioError
from twin.scenario import MAX_DEPTH, MAX_SCENARIO_BYTES, load_scenario


def write(directory: Path, name: str, content: str | bytes) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def error_of(path: Path, *overrides: str, allow_outside: bool = False) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, overrides, allow_outside=allow_outside)
    return caught.value


def one_line(error: ScenarioError) -> str:
    text = str(error)
    assert "\n" not in text
    return text


# --- what a scenario file may be -----------------------------------------------------


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.toml", b"\xef\xbb\xbf[hall]\nrows = 2\n")
    assert load_scenario(path).hall.rows == 2


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe[\x00h\x00", b"[hall]\nrows = 2 # caf\xe9\n", bytes(range(256))],
    ids=["utf-16", "latin-1", "binary"],
)
def test_a_file_that_is_not_utf8_is_refused_naming_it(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, "odd.toml", content)
    message = one_line(error_of(path))
    assert message.startswith(f"{path}: expected a scenario file in UTF-8 (byte ")


def test_a_binary_file_that_decodes_is_refused_as_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "nul.toml", b"\x00\x01\x02 = 3\n")
    assert one_line(error_of(path)).startswith(f"{path}: expected valid TOML (")


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 5000 + "]" * 5000,  # deeper than the parser can recurse
        "a = " + "[" * 300 + "]" * 300,  # parses, but deeper than any scenario
        "a = " + "{b = " * 50 + "1" + "}" * 50,
        "[" + ".".join(["t"] * 40) + "]\nx = 1\n",
    ],
    ids=["arrays-5000", "arrays-300", "inline-tables-50", "dotted-table-40"],
)
def test_deeply_nested_toml_is_refused_naming_the_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "deep.toml", text)
    assert one_line(error_of(path)) == f"{path}: expected TOML nested at most {MAX_DEPTH} deep"


def test_a_deeply_nested_set_value_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "s.toml", "")
    for value in ("[" * 5000 + "]" * 5000, "[" * 20 + "]" * 20):
        error = error_of(path, f"hall.rows={value}")
        assert (error.source, error.key) == ("--set", "hall.rows")
        assert "nested at most" in one_line(error)


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    path = write(tmp_path, "big.toml", "# " + "x" * MAX_SCENARIO_BYTES + "\n")
    assert one_line(error_of(path)) == (
        f"{path}: expected a scenario file of at most {MAX_SCENARIO_BYTES:,} bytes"
    )


def test_an_empty_file_is_the_empty_scenario(tmp_path: Path) -> None:
    assert load_scenario(write(tmp_path, "empty.toml", "")).systems == 1020


def test_a_folder_or_a_fifo_is_refused_and_never_opened(tmp_path: Path) -> None:
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    assert "expected a scenario file that is a regular file" in one_line(error_of(folder))
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    assert "expected a scenario file that is a regular file" in one_line(error_of(fifo))
    child = write(tmp_path, "child.toml", 'extends = "fifo.toml"\n')
    error = error_of(child)
    assert (error.source, error.key, error.got) == (str(child), "extends", "fifo.toml")
    assert "expected a base scenario file that is a regular file" in one_line(error)


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs /proc")
@pytest.mark.parametrize("special", ["/proc/self/mem", "/proc/kmsg", "/proc/self/environ"])
def test_pseudo_files_are_refused_without_being_read(tmp_path: Path, special: str) -> None:
    # /proc/self/mem fails with EIO when read, /proc/kmsg blocks (and consumes the log)
    if not Path(special).exists():
        pytest.skip(f"no {special}")
    message = one_line(error_of(Path(special)))
    assert message == (
        f"{special}: expected a scenario file that is a regular file "
        "(not a pseudo-file of /proc or /sys)"
    )
    child = write(tmp_path, "child.toml", f'extends = "{special}"\n')
    assert error_of(child).key == "extends"  # outside the folder
    error = error_of(child, allow_outside=True)
    assert (error.source, error.key) == (str(child), "extends")
    assert "not a pseudo-file" in one_line(error)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "locked.toml", "[hall]\nrows = 2\n")
    path.chmod(0)
    assert one_line(error_of(path)) == (
        f"{path}: expected a readable scenario file (Permission denied)"
    )


# --- extends stays in the scenario's folder tree --------------------------------------


def test_extends_of_a_secret_outside_the_folder_shows_nothing_of_it(tmp_path: Path) -> None:
    write(tmp_path, "secret.toml", 'password = "hunter2"\n')
    child = write(tmp_path, "site/x.toml", 'extends = "../secret.toml"\n')
    assert "hunter2" not in str(error_of(child))
    assert error_of(child).key == "extends"
    # even when allowed: a base that is no scenario is refused whole, unread in the error
    error = error_of(child, allow_outside=True)
    assert one_line(error) == (
        f"{(tmp_path / 'secret.toml').resolve()}: expected a scenario file "
        "(none of its keys is a scenario key)"
    )


def test_the_value_of_an_unknown_key_is_never_echoed(tmp_path: Path) -> None:
    write(tmp_path, "base.toml", '[hall]\nrows = 2\napi_token = "hunter2"\n')
    child = write(tmp_path, "child.toml", 'extends = "base.toml"\n')
    error = error_of(child)
    assert error.key == "hall.api_token" and error.got is None
    assert "hunter2" not in str(error)


def test_a_long_offending_value_is_cut_short(tmp_path: Path) -> None:
    path = write(tmp_path, "long.toml", f'[system]\npower = "{"x" * 5000}"\n')
    message = one_line(error_of(path))
    assert message.endswith("...") and len(message) < 400


# --- text that reaches a terminal -------------------------------------------------------


@pytest.mark.parametrize(
    ("assignment", "key"),
    [
        ('name="\\u001b[2J\\u001b[31mred"', "name"),  # clears the screen, turns it red
        ('name="a\\nb"', "name"),
        ('name="evil\\u202egnp.exe"', "name"),  # a right-to-left override
        ('description="\\u0007bell"', "description"),
        ('components.psu.part="p\\u0000"', "components.psu.part"),
    ],
)
def test_control_characters_in_names_and_text_are_refused(
    tmp_path: Path, assignment: str, key: str
) -> None:
    path = write(tmp_path, "s.toml", "")
    error = error_of(path, assignment)
    assert error.key == key
    message = one_line(error)
    assert "expected text without control characters (\\" in message
    assert all(c.isprintable() for c in message)


def test_a_multi_line_description_is_fine(tmp_path: Path) -> None:
    path = write(tmp_path, "s.toml", 'description = """two\n\tlines"""\n')
    assert load_scenario(path).description == "two\n\tlines"


def test_a_control_character_in_a_key_is_shown_escaped(tmp_path: Path) -> None:
    path = write(tmp_path, "s.toml", '[components."f\\u001bn"]\ncount = 1\n')
    error = error_of(path)
    assert error.key.startswith("components.f\\x1bn")
    assert "\x1b" not in str(error)


@pytest.mark.parametrize(
    "assignment",
    ["hall.rows=3\nhall.racks_per_row=1", 'name="a\nb"', "name=a\rb", "name=tab\there"],
)
def test_a_set_with_a_newline_or_control_character_is_refused_not_cut(
    tmp_path: Path, assignment: str
) -> None:
    path = write(tmp_path, "s.toml", "")
    error = error_of(path, assignment)
    assert error.source == "--set"
    assert "expected one line of text without control characters" in one_line(error)


def test_a_toml_error_in_a_base_says_where_but_quotes_nothing(tmp_path: Path) -> None:
    write(tmp_path, "base.toml", "[ghp_secret_token]\n[ghp_secret_token]\n")
    child = write(tmp_path, "child.toml", 'extends = "base.toml"\n')
    message = one_line(error_of(child))
    assert message == f"{tmp_path / 'base.toml'}: expected valid TOML (error at line 2, column 18)"
    named = one_line(error_of(tmp_path / "base.toml"))  # the file named may say more
    assert "Cannot declare" in named


@pytest.mark.parametrize(
    "base", ["a\\u0000b", "", "a\\nb", "x" * 5000], ids=["nul", "empty", "newline", "long"]
)
def test_an_extends_path_that_is_no_path_is_one_short_line(tmp_path: Path, base: str) -> None:
    child = write(tmp_path, "child.toml", f'extends = "{base}"\n')
    error = error_of(child)
    assert (error.source, error.key) == (str(child), "extends")
    assert len(one_line(error)) < 400


def test_extends_to_a_binary_file_names_the_extending_file_and_key(tmp_path: Path) -> None:
    write(tmp_path, "blob.toml", bytes(range(128, 256)))
    child = write(tmp_path, "child.toml", 'extends = "blob.toml"\n')
    error = error_of(child)
    assert one_line(error) == (
        f"{child}: extends: expected a base scenario file in UTF-8 (byte 0 is not UTF-8), "
        "got 'blob.toml'"
    )
