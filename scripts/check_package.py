"""The release artefacts work where a user gets them: ``python -m build`` makes an sdist
and a wheel (the wheel built from the sdist, so the sdist is complete enough to build);
both carry the Lua scripts, ``py.typed`` and the LICENSE; the wheel installs in a fresh
venv, its dependencies from the index, and there ``streamflow --version`` and
``streamflow demo`` (on the embedded server) run and print what they should; so does the
sdist, in another fresh venv, built there by pip as for a user who installs from it (in
an isolated build environment, with the backend ``[build-system]`` asks for).

Run by ``scripts/test`` after the tests, and by ``scripts/check-package``. The build uses
the backend pinned in requirements/build.txt, the one the project's venv holds
(``--no-isolation``), so the artefacts do not depend on the newest setuptools of the day.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = sorted(path.name for path in (ROOT / "streamflow" / "store" / "lua").glob("*.lua"))
# Lines of `streamflow demo`'s output (its results; tests/test_demo.py checks the same).
DEMO_LINES = ("'t8 got [7, 30, [16, -4]]'", "499500")


class PackageError(Exception):
    """A release artefact is missing something, or does not install and run."""


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``command``; its stdout and stderr, or a `PackageError` showing them."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise PackageError(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout + done.stderr


def expect(names: set[str], wanted: list[str], where: str) -> None:
    """Fail naming every wanted path that ``names`` lacks."""
    missing = [name for name in wanted if name not in names]
    if missing:
        raise PackageError(f"{where} lacks {missing}")


def check_sdist(path: Path, version: str) -> None:
    """The sdist holds the sources a wheel needs and the files a release owes."""
    top = f"streamflow-{version}"
    with tarfile.open(path) as sdist:
        names = set(sdist.getnames())
    wanted = ["LICENSE", "README.md", "pyproject.toml", "streamflow/py.typed"]
    wanted += [f"streamflow/store/lua/{name}" for name in LUA]
    expect(names, [f"{top}/{name}" for name in wanted], path.name)


def check_wheel(path: Path, version: str) -> None:
    """The wheel holds the package's data files and the licence."""
    with zipfile.ZipFile(path) as wheel:
        names = set(wheel.namelist())
    wanted = [f"streamflow/store/lua/{name}" for name in LUA]
    wanted += ["streamflow/py.typed", "streamflow/web/static/index.html"]
    wanted += [f"streamflow-{version}.dist-info/licenses/LICENSE"]
    expect(names, wanted, path.name)


def check_installed(artefact: Path, version: str, work: Path) -> None:
    """A fresh venv of its own takes ``artefact`` (the wheel, or the sdist, which pip
    builds first) and runs the command from it, not from this tree."""
    venv = work / f"venv-{'wheel' if artefact.suffix == '.whl' else 'sdist'}"
    run([sys.executable, "-m", "venv", str(venv)], cwd=work)
    run([str(venv / "bin" / "pip"), "install", "-q", str(artefact)], cwd=work)
    env = {k: v for k, v in os.environ.items() if k not in {"STREAMFLOW_REDIS_URL", "PYTHONPATH"}}
    where = run(
        [str(venv / "bin" / "python"), "-c", "import streamflow; print(streamflow.__file__)"],
        cwd=work,
        env=env,
    )
    if not where.strip().startswith(str(venv)):
        raise PackageError(f"streamflow was imported from {where.strip()}, not from {venv}")
    shown = run([str(venv / "bin" / "streamflow"), "--version"], cwd=work, env=env)
    if shown.strip() != f"streamflow {version}":
        raise PackageError(f"streamflow --version from {artefact.name} printed {shown.strip()!r}")
    output = run([str(venv / "bin" / "streamflow"), "demo"], cwd=work, env=env)
    missing = [line for line in DEMO_LINES if line not in output]
    if missing:
        raise PackageError(
            f"streamflow demo from {artefact.name} did not print {missing}:\n{output}"
        )


def main() -> int:
    """Build, inspect, install and run; 0 when all of it holds."""
    started = time.monotonic()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    with tempfile.TemporaryDirectory(prefix="streamflow-package-") as tmp:
        work = Path(tmp)
        dist = work / "dist"
        command = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist)]
        run([*command, str(ROOT)], cwd=ROOT)
        sdist = dist / f"streamflow-{version}.tar.gz"
        wheel = dist / f"streamflow-{version}-py3-none-any.whl"
        expect({path.name for path in dist.iterdir()}, [sdist.name, wheel.name], str(dist))
        check_sdist(sdist, version)
        check_wheel(wheel, version)
        check_installed(wheel, version, work)
        check_installed(sdist, version, work)
    took = time.monotonic() - started
    print(
        f"package ok: streamflow {version}: sdist and wheel built, each installed in a "
        f"fresh venv and run ({took:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PackageError as error:
        print(f"package check failed: {error}", file=sys.stderr)
        sys.exit(1)
