"""Archives: a revision's full description, written and flushed before it is deleted.

A deleted revision's content is gone for good; the archive is what `tdgc restore` (a later issue) registers
again. One JSON file per revision: DIR/FAMILY/REVISION.json.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tdgc import TOOL, __version__
from tdgc.errors import UsageError
from tdgc.model import parse_arn

FORMAT = 1


class DirectoryArchive:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def check(self) -> None:
        """Fail before any mutation if the archive cannot be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as exc:
            raise UsageError(f"--archive {self.root}: cannot write there ({exc.strerror})") from None

    def path_for(self, arn: str) -> Path:
        family, revision = parse_arn(arn)
        return self.root / family / f"{revision}.json"

    def write(self, arn: str, description: Mapping[str, Any], region: str) -> Path:
        """Write atomically and durably (temp file, fsync, rename, fsync dir); return the path."""
        path = self.path_for(arn)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "tdgc": {"format": FORMAT, "tool": TOOL, "version": __version__, "region": region,
                     "arn": arn, "archived_at": datetime.now(UTC).isoformat()},
            **description,
        }  # fmt: skip
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=2, sort_keys=True, default=_json_default)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return path


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot archive a {type(value).__name__}")
