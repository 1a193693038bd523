"""`tdgc demo`: a plan against a built-in simulated account."""

from __future__ import annotations

import logging

import click

from tdgc.cli.terminal import Terminal
from tdgc.logs import configure
from tdgc.report.writers import FORMATS

EXAMPLE = """\b
Examples:
  tdgc demo
  tdgc demo --output json --seed 3
"""


@click.command(epilog=EXAMPLE, short_help="Plan against a built-in simulated account.")
@click.option("--output", type=click.Choice(FORMATS), default="table", show_default=True, help="The report's format.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the simulated account.")
@click.pass_obj
def demo(terminal: Terminal, /, output: str, seed: int) -> int:
    """Plan against a built-in simulated account: no AWS account, no network."""
    from tdgc.local.demo import run_demo

    configure("console", level=logging.WARNING)
    return run_demo(output, seed, terminal.stdout, terminal.stderr)
