"""Before apply changes anything: plan, show it, and have a person confirm it or a reviewed plan file match it.

What is confirmed is the most that is done: the run is given the confirmed actions (`RunOptions.approved`), and
a decision made since the question is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from tdgc.cli.progress import progress_for
from tdgc.cli.terminal import Terminal
from tdgc.collect.run import RunOptions, run
from tdgc.errors import GuardError, UsageError
from tdgc.model import Action, Decision, Outcome
from tdgc.report.model import REPORT_VERSION, Report, Summary, Writer
from tdgc.report.writers import TableWriter

Actions = dict[str, Action]  # revision ARN -> what is done to it


class ActionCollector(Writer):
    """Remembers the actions of a plan, so that apply does no more than what a person confirmed."""

    def __init__(self) -> None:
        self.actions: Actions = {}

    def add(self, decisions: Sequence[Decision], outcomes: Sequence[Outcome]) -> None:
        self.actions.update((d.revision.arn, d.action) for d in decisions if d.action is not Action.KEEP)

    def finish(self, report: Report) -> None:
        pass


def review(options: RunOptions, terminal: Terminal, *, reviewed: Actions | None, ask: bool) -> Actions | None:
    """Plan first; check it against a reviewed plan file and/or ask a person. The actions to apply, or None."""
    if ask and not terminal.interactive:
        raise UsageError("apply changes the account: pass --yes, or run it on a terminal to confirm")
    planned = ActionCollector()
    writers: list[Writer] = [TableWriter(terminal.stderr, review=True), planned] if ask else [planned]
    summary = run(replace(options, apply=False), writers, progress=progress_for(terminal, "table")).summary
    if reviewed is not None and planned.actions != reviewed:
        raise GuardError(difference(reviewed, planned.actions))
    if not (summary.deregister or summary.delete):
        terminal.err("Nothing to do.")
        return None
    if ask:
        terminal.err("\n" + what_apply_does(summary, options))
        if not terminal.confirm(f"Deregister {summary.deregister:,} and delete {summary.delete:,} revisions?"):
            terminal.err("Nothing was changed.")
            return None
    return planned.actions


def what_apply_does(summary: Summary, options: RunOptions) -> str:
    """The confirmation screen's last word before the question: what a yes does, and whether it can be undone."""
    if summary.delete:
        said = f"tdgc apply will deregister {summary.deregister:,} and delete {summary.delete:,} of the revisions above"
    else:
        said = f"tdgc apply will deregister {summary.deregister:,} of the revisions above and delete none"
    said += "."
    limit = options.policy.safety.max_actions
    if limit is not None and summary.deregister + summary.delete > limit:
        said += f"\nAt most {limit:,} in this run (max_actions); the rest is left to the next."
    if summary.delete and options.archive:
        said += f"\nEach is archived to {options.archive} before it is deleted; `tdgc restore` brings it back."
    elif summary.delete:
        said += "\nThey are not archived (no --archive): a deleted revision cannot be brought back."
    return said


def load_plan(path: str) -> Actions:
    """The actions of a `tdgc plan --output json` report."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        if doc.get("version") != REPORT_VERSION or doc.get("mode") != "plan":
            raise ValueError(f"not a version {REPORT_VERSION} plan report")
        return {d["arn"]: Action(d["action"]) for d in doc["decisions"] if d["action"] != Action.KEEP.value}
    except FileNotFoundError:
        raise UsageError(f"--plan {path}: no such file") from None
    except RecursionError:
        raise UsageError(f"--plan {path}: not a plan from `tdgc plan --output json` (nested too deeply)") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"--plan {path}: not a plan from `tdgc plan --output json` ({exc})") from None


def difference(reviewed: Actions, planned: Actions) -> str:
    added = sorted(set(planned.items()) - set(reviewed.items()))
    gone = sorted(set(reviewed.items()) - set(planned.items()))
    first = f"; first: {added[0][1].value} {added[0][0]}" if added else f"; first gone: {gone[0][1].value} {gone[0][0]}"
    return (
        f"the plan differs from the reviewed one: {len(added)} action(s) new, {len(gone)} no longer planned"
        f"{first}. Nothing was changed; plan again and review."
    )
