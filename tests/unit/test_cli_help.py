"""The help a newcomer reads: every command listed once and in full, every option explained, an example each."""

from __future__ import annotations

import io
import re
from typing import Any

import click
import pytest

from tdgc.cli import cli
from tdgc.cli.review import what_apply_does
from tdgc.cli.terminal import Terminal
from tdgc.collect.run import RunOptions
from tdgc.policy import Overrides, load_policy
from tdgc.report.model import Summary
from tests.helpers import at_a_terminal

COMMANDS = ["init", "plan", "apply", "restore", "register", "usage", "demo"]


def test_the_command_list_names_each_command_once_and_in_full(tdgc: Any) -> None:
    ran = tdgc("--help")
    assert ran.code == 0 and ran.err == ""
    listed = ran.out.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in listed] == COMMANDS
    assert not any(line.rstrip().endswith("...") for line in listed), "a summary cut off"
    for name in COMMANDS:
        assert len(re.findall(rf"^  {name} ", ran.out, re.MULTILINE)) == 1, name
    assert "tdgc plan policy.toml" in ran.out


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help_and_every_command_an_example(name: str, tdgc: Any) -> None:
    command = cli.commands[name]
    unexplained = [p.name for p in command.params if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert unexplained == []
    assert command.epilog and f"tdgc {name}" in command.epilog
    ran = tdgc(name, "--help")
    assert ran.code == 0 and f"tdgc {name}" in ran.out.split("Example", 1)[1]


def test_apply_help_says_it_asks_needs_yes_off_a_terminal_and_what_cannot_be_undone(tdgc: Any) -> None:
    text = " ".join(tdgc("apply", "--help").out.split())
    assert "shows the plan and asks before changing anything" in text
    assert "it needs --yes" in text
    assert "A revision deleted without --archive cannot be brought back" in text
    assert "--dry-run makes it `tdgc plan`" in text
    assert "--time-budget 14min" in text


def test_log_format_is_explained(tdgc: Any) -> None:
    text = " ".join(tdgc("plan", "--help").out.split())
    assert "--log-format [console|json] Logs on stderr: console, for people, or json" in text


def test_a_question_is_asked_again_until_answered_and_is_no_by_default() -> None:
    err = io.StringIO()
    terminal = Terminal(stdin=io.StringIO("perhaps\nYes\n"), stderr=err, stdin_isatty=True, stderr_isatty=True)
    assert terminal.interactive and terminal.confirm("Go?") is True
    assert err.getvalue() == "Go? [y/N]: Error: invalid input\nGo? [y/N]: "
    assert at_a_terminal("y\n").interactive and not Terminal().interactive
    assert Terminal(stdin=io.StringIO("\n"), stderr=io.StringIO()).confirm("Go?") is False
    with pytest.raises(click.Abort):  # Ctrl-D: no answer at all
        Terminal(stdin=io.StringIO(""), stderr=io.StringIO()).confirm("Go?")


@pytest.mark.parametrize(
    ("counts", "archive", "max_actions", "said"),
    [
        (
            (2, 3),
            None,
            None,
            "tdgc apply will deregister 2 and delete 3 of the revisions above.\n"
            "They are not archived (no --archive): a deleted revision cannot be brought back.",
        ),
        (
            (2, 3),
            "s3://b/a",
            2,
            "tdgc apply will deregister 2 and delete 3 of the revisions above.\n"
            "At most 2 in this run (max_actions); the rest is left to the next.\n"
            "Each is archived to s3://b/a before it is deleted; `tdgc restore` brings it back.",
        ),
        ((4, 0), None, 10, "tdgc apply will deregister 4 of the revisions above and delete none."),
    ],
)
def test_the_confirmation_says_what_apply_will_do(
    counts: tuple[int, int], archive: str | None, max_actions: int | None, said: str
) -> None:
    policy = load_policy(None, Overrides(max_actions=max_actions))
    options = RunOptions(policy, apply=True, archive=archive)
    assert what_apply_does(Summary(deregister=counts[0], delete=counts[1]), options) == said
