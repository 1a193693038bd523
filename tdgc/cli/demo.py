"""`tdgc demo`: a plan against a built-in simulated account, or that account served to try the rest on."""

from __future__ import annotations

import logging

import click

from tdgc.cli.terminal import Terminal
from tdgc.errors import UsageError
from tdgc.logs import configure
from tdgc.report.writers import FORMATS

EXAMPLE = """\b
Examples:
  tdgc demo                 the summary, the largest actions, notes and a legend
  tdgc demo --full          the whole table, as plan prints it
  tdgc demo --serve         the same account over HTTP, for tdgc plan, apply and restore
"""


@click.command(epilog=EXAMPLE, short_help="Plan against a built-in simulated account.")
@click.option("--output", type=click.Choice(FORMATS), help="The report's format (default: table).")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the simulated account.")
@click.option("--full", is_flag=True, help="The whole table, as plan prints it (default: the largest actions).")
@click.option(
    "--serve",
    is_flag=True,
    help="Serve the simulated account over HTTP until Ctrl-C, to try plan, apply and restore on it by hand; "
    "prints the environment to use.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5000,  # moto's server's own
    show_default=True,
    metavar="N",
    help="The port --serve listens on, on 127.0.0.1 (0: any free one).",
)
@click.pass_obj
def demo(terminal: Terminal, /, output: str | None, seed: int, full: bool, serve: bool, port: int) -> int:
    """Plan against a built-in simulated account: no AWS account, no network."""
    from tdgc.local.demo import run_demo, serve_demo

    configure("console", level=logging.WARNING)
    if serve:
        if output or full:
            raise UsageError("--serve prints no report: --output and --full go without it")
        return serve_demo(seed, port, terminal.stdout, terminal.stderr)
    if click.get_current_context().get_parameter_source("port") is not click.core.ParameterSource.DEFAULT:
        raise UsageError("--port goes with --serve")
    return run_demo(output or "table", seed, terminal.stdout, terminal.stderr, full=full)
