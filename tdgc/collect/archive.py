"""Archives: a revision's full description, written and checked before it is deleted.

A deleted revision's content is gone for good; the archive is what `tdgc restore` registers again.
One JSON document per revision: DIR/ACCOUNT/REGION/FAMILY/REVISION.json, or the same under
s3://BUCKET/PREFIX/ (the account and region keep many targets' archives apart).
The document is DescribeTaskDefinition's answer (`taskDefinition` and `tags`) plus a `tdgc` header.

Writes are atomic and idempotent: two runs may archive the same revision at once (each with its own
`archived_at`), and each accepts what it reads back if it is the same revision, whichever landed last
(`same_revision`). A folder's write goes through a `.tmp-*.json` file beside the document; a run killed
mid-write leaves one, which the next run's `check` removes once it is older than STALE_TEMP.
`check` also proves, before any mutation, that the archive can be written: a probe written and read back.

An archive can hold secrets in plain text (a task definition's `environment` often does), so it is kept
private: a folder's documents are files only their owner may read (0600) in folders only their owner may
enter (0700); in S3, every call names the account that must own the bucket and every write asks for
server-side encryption (`tdgc.aws.s3.S3Protection`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import botocore.exceptions
import structlog

from tdgc import TOOL, __version__
from tdgc.aws.errors import error_text
from tdgc.aws.s3 import S3Access, probe_prefix
from tdgc.aws.s3url import is_s3, s3_location
from tdgc.errors import UsageError
from tdgc.model import parse_arn

log = structlog.get_logger("tdgc.archive")
FORMAT = 1
TEMP_PREFIX, TEMP_SUFFIX = ".tmp-", ".json"
# A temporary file lives for one write and its fsync: well under a second, a stalled network filesystem
# some seconds. One older than this was left by a run that was killed, not one still writing (a margin wide
# enough for some clock skew between hosts that share the folder).
STALE_TEMP = 15 * 60.0
# Fields of a revision that change after it is registered: two runs may describe it a moment apart, before
# and after one of them deletes it. What a restore registers is the rest.
_LIFECYCLE_FIELDS = frozenset({"status", "deregisteredAt"})
_PROBE = b'{"tdgc": "write probe"}\n'
PRIVATE_FOLDER = 0o700  # documents hold secrets: only the owner may list or enter; files are 0600 (mkstemp's)


class Archive(Protocol):
    def check(self) -> None:
        """Fail before any mutation if the archive cannot be written."""

    def write(self, arn: str, description: Mapping[str, Any], region: str) -> str:
        """Write the document, check it is there, and return where it is."""


def document(arn: str, description: Mapping[str, Any], region: str) -> bytes:
    body = {
        "tdgc": {
            "format": FORMAT,
            "tool": TOOL,
            "version": __version__,
            "region": region,
            "arn": arn,
            "archived_at": datetime.now(UTC).isoformat(),
        },
        **description,
    }
    return (json.dumps(body, indent=2, sort_keys=True, default=_json_default) + "\n").encode()


def same_revision(written: bytes, body: bytes) -> bool:
    """Whether `written` (read back from the archive) archives the same revision as `body` (what this run
    wrote): the same ARN and task definition, apart from the header (`archived_at`, the tool's version),
    the revision's lifecycle fields, and its tags (TagResource changes them after registration). Two runs'
    describes a moment apart differ there at most, and each is a true copy: whichever landed last is fine.
    Anything else (truncated, not JSON, another revision) is not."""
    try:
        theirs, ours = json.loads(written), json.loads(body)
    except ValueError:
        return False
    if not isinstance(theirs, dict) or not isinstance(theirs.get("tdgc"), dict):
        return False
    if not isinstance(theirs.get("taskDefinition"), dict):
        return False
    return bool(theirs["tdgc"].get("arn") == ours["tdgc"]["arn"]) and _content(theirs) == _content(ours)


def _content(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc["taskDefinition"].items() if k not in _LIFECYCLE_FIELDS}


def relative_key(arn: str) -> str:
    family, revision = parse_arn(arn)
    parts = arn.split(":")
    region, account = (parts[3], parts[4]) if len(parts) > 5 else ("unknown-region", "unknown-account")
    return f"{account}/{region}/{family}/{revision}.json"


class DirectoryArchive:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def check(self) -> None:
        """Prove the folder writable (a probe written as a document is: temporary file, fsync; read back and
        removed), then remove what killed runs left."""
        try:
            _private_folders(self.root)
            tmp = self._write_temp(self.root, _PROBE)
            try:
                readable = Path(tmp).read_bytes() == _PROBE
                now = os.stat(tmp).st_mtime
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            raise UsageError(f"--archive {self.root}: cannot write there ({exc.strerror or exc})") from None
        if not readable:
            raise UsageError(f"--archive {self.root}: a file written there does not read back as written")
        self.remove_stale(now)

    def remove_stale(self, now: float) -> int:
        """Remove the temporary files older than STALE_TEMP that killed runs left; how many.

        `now` is the mtime of a file just written: the clock that stamped the leftovers too (a network
        filesystem's server's), whatever this host's says. Only where writes put them (the root, for the
        probe, and each ACCOUNT/REGION/FAMILY folder) and only `.tmp-*.json`, nothing else. A younger one
        may be a concurrent run's, mid-write: it is left alone.
        """
        cutoff = now - STALE_TEMP
        removed = 0
        for folder in self._folders():
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue  # gone meanwhile, or not ours to read: leftovers there stay, harmless
            for entry in entries:
                if not (entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX)):
                    continue
                try:
                    if not entry.is_file(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_mtime > cutoff:
                        continue
                    os.unlink(entry.path)
                    removed += 1
                except FileNotFoundError:
                    continue  # a concurrent run removed it first
                except OSError as exc:
                    log.warning("stale temporary file not removed", path=entry.path, error=exc.strerror)
        if removed:
            log.info("stale temporary files removed", archive=str(self.root), count=removed)
        return removed

    def _folders(self) -> Iterator[str]:
        """The root and the folders three levels under it (ACCOUNT/REGION/FAMILY): where writes happen."""
        level = [str(self.root)]
        yield from level
        for _ in range(3):
            below = []
            for folder in level:
                try:
                    below += [e.path for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
                except OSError:
                    continue
            yield from below
            level = below

    def write(self, arn: str, description: Mapping[str, Any], region: str) -> str:
        """Atomically and durably: temp file, fsync, rename, fsync the folder; then read back.

        What is read back may be a concurrent run's document of the same revision, renamed over ours after
        ours: accepted (`same_revision`). The temporary file never outlives a failure of this call.
        """
        path = self.root / relative_key(arn)
        _private_folders(path.parent)
        body = document(arn, description, region)
        tmp = self._write_temp(path.parent, body)
        try:
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        if not same_revision(path.read_bytes(), body):
            raise OSError(f"{path} does not read back as written")
        return str(path)

    @staticmethod
    def _write_temp(folder: Path, body: bytes) -> str:
        """`body` in a new `.tmp-*.json` file in `folder`, flushed to disk; removed again if that fails.

        mkstemp creates it readable and writable by its owner alone (0600), whatever the umask, and the rename
        keeps that: the document is never readable by others, not even for a moment."""
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return tmp


def _private_folders(folder: Path) -> None:
    """`folder` and any missing folder above it, each made 0700. Path.mkdir(parents=True) would make the
    parents with the default mode (0755 under the usual umask): ACCOUNT/REGION readable by all. Folders that
    exist already are left as they are: not tdgc's to change."""
    missing = []
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=PRIVATE_FOLDER)
        except FileExistsError:
            if not path.is_dir():  # a file in the way: say so as mkdir would
                raise
            # a concurrent run made it first (with the same mode)


class S3Archive:
    def __init__(self, url: str, s3: S3Access) -> None:
        bucket, prefix = s3_location(url, "--archive")
        self.url, self.bucket, self.prefix = url, bucket, prefix.strip("/")
        self.protection = s3.protection
        self._s3 = s3.client()

    def _key(self, arn: str) -> str:
        return f"{self.prefix}/{relative_key(arn)}" if self.prefix else relative_key(arn)

    def check(self) -> None:
        probe_prefix(self._s3, self.bucket, self.prefix, f"--archive {self.url}", self.protection)

    def write(self, arn: str, description: Mapping[str, Any], region: str) -> str:
        """PutObject (atomic in S3: a reader sees a whole object, ours or another's), then read it back.

        What is read back may be a concurrent run's document of the same revision, put after ours: accepted
        (`same_revision`), as in a folder. Read whole (a few kB), since its length alone cannot tell ours
        from theirs nor either from another revision. Both calls carry the bucket's owner, the write its
        encryption: no call more per revision.
        """
        body = document(arn, description, region)
        key = self._key(arn)
        p = self.protection
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", **p.writes)
            written = self._s3.get_object(Bucket=self.bucket, Key=key, **p.reads)["Body"].read()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise OSError(f"s3://{self.bucket}/{key}: {error_text(exc)}") from None
        if not same_revision(written, body):
            raise OSError(f"s3://{self.bucket}/{key} does not read back as written")
        return f"s3://{self.bucket}/{key}"


def open_archive(spec: str, s3: S3Access | None) -> Archive:
    """The archive `spec` names: a folder, or an S3 prefix reached through `s3` (the caller's)."""
    if is_s3(spec):
        if s3 is None:
            raise UsageError(f"--archive {spec}: S3 needs an AWS connection")
        return S3Archive(spec, s3)
    return DirectoryArchive(spec)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        # In UTC: botocore gives local time, and two runs on hosts in different zones must write the same.
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"cannot archive a {type(value).__name__}")
