"""`tdgc init`: a starter policy to plan with, so that the first real plan needs no reading first."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from tdgc.cli.terminal import Terminal
from tdgc.errors import EXIT_OK, UsageError
from tdgc.policy import load_policy

STARTER = "starter_policy.toml"
EXAMPLE = """\b
Examples:
  tdgc init                        writes policy.toml here
  tdgc init ops/tdgc.toml
  tdgc plan policy.toml --region eu-west-1
"""


def starter_text() -> str:
    return (resources.files("tdgc") / STARTER).read_text(encoding="utf-8")


@click.command(epilog=EXAMPLE, short_help="Write a starter policy (policy.toml) to plan with.")
@click.argument("path", default="policy.toml", metavar="[PATH]")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists (default: refuse).")
@click.pass_obj
def init(terminal: Terminal, /, path: str, force: bool) -> int:
    """Write a starter policy to PATH (default: policy.toml): keep the newest 5 revisions of each family,
    deregister older ones after 30 days and delete them 180 days later, never touch `tdgc:keep=true`, and
    never delete without an archive. Every key is commented; the README's Policy section has them all."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{path}: is a directory; name the file to write")
    if target.exists() and not force:
        raise UsageError(f"{path}: exists; --force overwrites it")
    try:
        target.write_text(starter_text(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from None
    load_policy(str(target))  # what was written must be a policy tdgc takes: a packaging slip shows here
    terminal.err(f"wrote {path}. Next: tdgc plan {path} --region REGION (changes nothing, and says why)")
    return EXIT_OK
