"""The Lambda zip: what it holds, that it is byte-for-byte reproducible, and that the handler imports from it
beside only what the Lambda runtime provides.

The builds run the real pip install for Lambda's platform, but from a local wheelhouse instead of the
package index (no test reaches the network): wheels made from the pure-Python distributions installed
here, so pip resolves, selects for the platform and installs exactly as it would from PyPI.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

import tdgc
from tdgc import package

# What the builds below install: tdgc's bundled dependencies, and freezegun, which needs python-dateutil.
WHEELHOUSE = ("click", "structlog", "freezegun", "python-dateutil", "six")


def _rewheel(distribution: str, into: Path) -> None:
    """A wheel of an installed pure-Python distribution, from the files its RECORD lists."""
    dist = importlib.metadata.distribution(distribution)
    assert "Root-Is-Purelib: true" in (dist.read_text("WHEEL") or ""), f"{distribution} is not pure Python"
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    wheel = into / f"{name}-{dist.version}-py3-none-any.whl"
    files = [f for f in dist.files or () if ".." not in f.parts and "__pycache__" not in f.parts]
    record_name = next(str(f) for f in files if f.name == "RECORD")
    rows = []
    with zipfile.ZipFile(wheel, "w") as archive:
        for file in files:
            if str(file) == record_name:
                continue
            data = Path(str(file.locate())).read_bytes()
            archive.writestr(str(file), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{file},sha256={digest},{len(data)}")
        archive.writestr(record_name, "\n".join([*rows, f"{record_name},,"]) + "\n")


@pytest.fixture(scope="module", autouse=True)
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    house = tmp_path_factory.mktemp("wheelhouse")
    for distribution in WHEELHOUSE:
        _rewheel(distribution, house)
    return house


@pytest.fixture(autouse=True)
def offline_pip(wheelhouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip reads its options from the environment, and the builds' pip inherits it."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))


@pytest.fixture(scope="module")
def built(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PIP_NO_INDEX", "1")
        env.setenv("PIP_FIND_LINKS", str(wheelhouse))
        path, _ = package.build(tmp_path_factory.mktemp("dist") / "tdgc-lambda.zip")
    return path


def _names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def _top_level(distribution: str) -> set[str]:
    """The importable names a distribution installed in this environment (`dateutil` for python-dateutil)."""
    files = importlib.metadata.distribution(distribution).files or ()
    return {
        file.parts[0].removesuffix(".py")
        for file in files
        if not file.parts[0].endswith((".dist-info", ".data")) and file.parts[0] != ".."
    } - {"__pycache__"}


def test_zip_holds_tdgc_and_what_the_runtime_lacks(built: Path) -> None:
    names = set(_names(built))
    source = Path(tdgc.__file__).parent
    modules = {f"tdgc/{path.relative_to(source).as_posix()}" for path in source.rglob("*.py")}
    local = {name for name in modules if name.startswith(f"tdgc/{package.LOCAL}/")}
    assert local and not local & names, "the simulator and the demo (moto's users) stay out of the zip"
    assert modules - local <= names, "every other module of the package is in the zip"
    assert {"tdgc/lambda_handler.py", "tdgc/py.typed"} <= names
    tops = {name.split("/")[0] for name in names}
    assert {"click", "structlog"} <= tops
    for distribution in package.RUNTIME_PROVIDED:
        assert not (_top_level(distribution) & tops), f"{distribution} ships with the runtime; bundling it shadows it"
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_zip_bytes_depend_only_on_contents(built: Path, tmp_path: Path) -> None:
    again, _ = package.build(tmp_path / "again.zip")
    assert again.read_bytes() == built.read_bytes()
    with zipfile.ZipFile(built) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == sorted(info.filename for info in infos)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    # Lambda runs the code as a user other than the owner: every file must be world-readable.
    assert all((info.external_attr >> 16) & 0o444 == 0o444 for info in infos)


def _runtime_site(root: Path) -> Path:
    """A stand-in for the runtime's own site-packages: only the distributions the runtime ships."""
    site = root / "runtime"
    site.mkdir()
    for distribution in package.RUNTIME_PROVIDED:
        base = Path(str(importlib.metadata.distribution(distribution).locate_file("")))
        for name in _top_level(distribution):
            found = base / name if (base / name).exists() else base / f"{name}.py"
            (site / found.name).symlink_to(found)
    return site


def test_handler_imports_from_the_zip_beside_only_the_runtime(built: Path, tmp_path: Path) -> None:
    code = tmp_path / "task"
    with zipfile.ZipFile(built) as archive:
        archive.extractall(code)
    runtime = _runtime_site(tmp_path)
    # -S: no site-packages, so nothing of this environment (its click, its tdgc) can stand in for the zip.
    probe = (
        "import sys; sys.path[:0] = sys.argv[1:3];"
        "import tdgc.lambda_handler as h, click, structlog, boto3;"
        "assert callable(h.handler);"
        "print(h.__file__, click.__file__, structlog.__file__, boto3.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(code), str(runtime)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    handler, click_file, structlog_file, boto3_file = done.stdout.split()
    assert Path(handler).is_relative_to(code)
    assert Path(click_file).is_relative_to(code) and Path(structlog_file).is_relative_to(code)
    assert Path(boto3_file).is_relative_to(runtime)


def test_main_prints_path_size_and_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out" / "fn.zip"
    assert package.main(["--output", str(output)]) == 0
    path, size, unit, count, files = capsys.readouterr().out.split()
    assert (path, unit, files) == (str(output), "KB", "files")
    assert int(size) == round(output.stat().st_size / 1024)
    assert int(count) == len(_names(output))


def test_policy_is_packaged_where_tdgc_policy_file_points(tmp_path: Path) -> None:
    policy = tmp_path / "mine.toml"
    policy.write_text('[defaults]\nkeep_last = 3\ndelete_after = "90 days"\n')
    path, _ = package.build(tmp_path / "fn.zip", policy)
    with zipfile.ZipFile(path) as archive:
        assert archive.read(package.POLICY_NAME) == policy.read_bytes()


def test_a_bad_policy_fails_the_build_not_the_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "bad.toml"
    policy.write_text('[defaults]\ndelete_after = "6 moons"\n')
    output = tmp_path / "fn.zip"
    assert package.main(["--output", str(output), "--policy", str(policy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tdgc.package: ") and "moons" in err and err.count("\n") == 1
    assert not output.exists()


def test_without_lambda_wheels_a_local_install_serves_if_pure_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = package._pip_install

    def no_platform_wheels(requirements: Any, target: Path, for_lambda: bool) -> Any:
        if for_lambda:
            (target / "half-installed").write_text("")  # what a failed install may leave behind
            return subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found for click")
        return real(requirements, target, for_lambda)

    monkeypatch.setattr(package, "_pip_install", no_platform_wheels)
    path, _ = package.build(tmp_path / "fn.zip")
    names = _names(path)
    assert any(name.startswith("click/") for name in names)
    assert "half-installed" not in names


def test_a_local_install_with_native_code_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def native(requirements: Any, target: Path, for_lambda: bool) -> Any:
        if for_lambda:
            return subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found for fastthing")
        dist_info = target / "fastthing-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-linux_x86_64\n")
        return subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(package, "_pip_install", native)
    with pytest.raises(package.PackageError, match="fastthing"):
        package.build(tmp_path / "fn.zip")
    assert not (tmp_path / "fn.zip").exists()


def test_what_a_dependency_pulls_in_from_the_runtime_stays_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """freezegun needs python-dateutil (and it six), which the runtime ships: freezegun goes in, they stay out."""
    monkeypatch.setattr(package, "bundled_requirements", lambda: ["freezegun"])
    path, _ = package.build(tmp_path / "fn.zip")
    tops = {name.split("/")[0] for name in _names(path)}
    assert "freezegun" in tops
    assert not [top for top in tops if top.startswith(("dateutil", "python_dateutil", "six"))]
