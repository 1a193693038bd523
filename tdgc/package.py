"""Build the Lambda deployment zip: `python -m tdgc.package [--output PATH] [--policy FILE]`.

The zip holds the tdgc package and the runtime dependencies the Lambda Python runtime does not ship
(click, structlog), installed for the function's runtime and architecture. Its bytes depend only on its
contents (sorted entries, fixed timestamps and modes), so an unchanged build leaves the deployed code
hash unchanged and `sam deploy` / `terraform apply` have nothing to do.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath

import tdgc
from tdgc.errors import TdgcError
from tdgc.policy import load_policy

# The templates in deploy/ deploy this runtime and architecture; the tests hold them to these constants.
PYTHON_VERSION = "3.13"
RUNTIME = f"python{PYTHON_VERSION}"
ARCHITECTURE = "arm64"
PLATFORM = "manylinux2014_aarch64"
DEFAULT_OUTPUT = Path("dist") / "tdgc-lambda.zip"
# Where `--policy` puts its file: set TDGC_POLICY_FILE to this.
POLICY_NAME = "policy.toml"
LOCAL = "local"  # tdgc/local/: kept out of the zip

# The Lambda Python runtimes include boto3 and its dependencies. The deployment package comes first on
# sys.path, so a bundled copy would shadow the runtime's, and AWS warns that this misaligns versions
# (a bundled urllib3 under the runtime's newer botocore). These are therefore left out, python-dateutil
# (botocore's dependency, and tdgc's) included.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"})

# 1980-01-01, the earliest time a zip entry can carry: the same for every build.
_EPOCH = (1980, 1, 1, 0, 0, 0)


class PackageError(TdgcError):
    """The zip cannot be built: the dependencies did not install, or tdgc's metadata is missing."""


def _normalize(name: str) -> str:
    """PEP 503 names: `Python_Dateutil` and `python-dateutil` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not found:
        raise PackageError(f"cannot read the requirement {requirement!r} in tdgc's metadata")
    return _normalize(found.group(1))


def bundled_requirements() -> list[str]:
    """tdgc's runtime requirements (not its extras) that the Lambda runtime lacks, as pip reads them."""
    try:
        requirements = importlib.metadata.requires("tdgc") or []
    except importlib.metadata.PackageNotFoundError:
        raise PackageError("tdgc is not installed, so its dependencies are unknown: pip install -e . first") from None
    return [
        requirement
        for requirement in requirements
        if "extra" not in requirement.partition(";")[2] and _requirement_name(requirement) not in RUNTIME_PROVIDED
    ]


def _pip_install(requirements: Sequence[str], target: Path, for_lambda: bool) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(target)]
    if for_lambda:
        # Wheels for the function's platform and Python, whatever machine builds the zip.
        command += ["--platform", PLATFORM, "--implementation", "cp", "--python-version", PYTHON_VERSION]
        command += ["--only-binary=:all:"]
    return subprocess.run([*command, *requirements], capture_output=True, text=True, check=False)


def _is_pure(dist_info: Path) -> bool:
    wheel = dist_info / "WHEEL"
    return wheel.is_file() and "Root-Is-Purelib: true" in wheel.read_text(encoding="utf-8")


def install_dependencies(requirements: Sequence[str], target: Path) -> None:
    """pip-install the requirements into `target` as built for the Lambda runtime.

    Where a dependency publishes no wheel (an sdist only), pip cannot build it for another platform; a
    local install is then used, but only if everything it installed is pure Python and so runs anywhere.
    """
    if not requirements:
        return
    done = _pip_install(requirements, target, for_lambda=True)
    if done.returncode == 0:
        return
    print(f"tdgc.package: no {PLATFORM} wheels ({_last_line(done.stderr)}); trying a local install", file=sys.stderr)
    for leftover in target.iterdir():
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
    done = _pip_install(requirements, target, for_lambda=False)
    if done.returncode != 0:
        raise PackageError(f"pip could not install {', '.join(requirements)}: {_last_line(done.stderr)}")
    native = [path.name for path in target.glob("*.dist-info") if not _is_pure(path)]
    if native:
        raise PackageError(f"built for this machine, not for Lambda {ARCHITECTURE}: {', '.join(sorted(native))}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _runtime_provided_files(site: Path) -> set[PurePosixPath]:
    """Files pip installed for a distribution the runtime ships (pulled in by a dependency), by RECORD."""
    skipped: set[PurePosixPath] = set()
    for dist_info in site.glob("*.dist-info"):
        distribution = importlib.metadata.PathDistribution(dist_info)
        name = distribution.metadata["Name"]
        if name is None or _normalize(name) not in RUNTIME_PROVIDED:
            continue
        skipped.update(PurePosixPath(str(file)) for file in distribution.files or ())  # its RECORD, itself included
    return skipped


def _walk(root: Path) -> Iterator[tuple[PurePosixPath, Path]]:
    """Every file under root as (name inside root, path), bytecode caches left out: Lambda writes its own."""
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
        for name in files:
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(directory) / name
            yield PurePosixPath(path.relative_to(root).as_posix()), path


def collect(site: Path, policy: Path | None = None) -> dict[str, Path]:
    """Zip entry name -> file: the installed dependencies, the tdgc package, and the policy if given."""
    entries: dict[str, Path] = {}
    skipped = _runtime_provided_files(site)
    for name, path in _walk(site):
        # bin/ holds the dependencies' console scripts: nothing a handler imports.
        if name not in skipped and name.parts[0] != "bin":
            entries[str(name)] = path
    package = Path(tdgc.__file__).parent
    for name, path in _walk(package):
        # tdgc.local (the simulator and the demo) needs moto, which a function never has, and runs nowhere but here.
        if name.parts[0] != LOCAL:
            entries[str(PurePosixPath(package.name) / name)] = path
    if policy is not None:
        entries[POLICY_NAME] = policy
    return entries


def write_zip(entries: dict[str, Path], output: Path) -> None:
    """A zip whose bytes depend only on the entries' names and contents."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")  # never a half-written zip at `output`
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for name in sorted(entries):
                info = zipfile.ZipInfo(name, date_time=_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # Unix, so that the mode below is read on every platform
                info.external_attr = 0o100644 << 16  # a regular file, readable by the Lambda runtime's user
                archive.writestr(info, entries[name].read_bytes(), compresslevel=9)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


def build(output: Path = DEFAULT_OUTPUT, policy: Path | None = None) -> tuple[Path, int]:
    """Build the zip at `output`; returns its path and how many files it holds."""
    if policy is not None:
        load_policy(str(policy))  # a policy that would fail every scheduled run fails the build instead
    with tempfile.TemporaryDirectory(prefix="tdgc-package-") as scratch:
        site = Path(scratch)
        install_dependencies(bundled_requirements(), site)
        entries = collect(site, policy)
        write_zip(entries, output)
    return output, len(entries)


def _parse(argv: Iterable[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tdgc.package", description="Build the Lambda deployment zip.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"the zip (default {DEFAULT_OUTPUT})")
    parser.add_argument(
        "--policy", type=Path, help=f"a policy TOML to include as {POLICY_NAME} (then set TDGC_POLICY_FILE to it)"
    )
    return parser.parse_args(list(argv) if argv is not None else None)


def main(argv: Iterable[str] | None = None) -> int:
    args = _parse(argv)
    try:
        path, count = build(args.output, args.policy)
    except TdgcError as exc:
        print(f"tdgc.package: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"{path} {path.stat().st_size / 1024:.0f} KB {count} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
