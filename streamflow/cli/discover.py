"""``streamflow worker pkg``: find a package's App and import its ``tasks`` modules, so
that every actor they define is registered before the worker starts (what a shell loop
over ``find -name tasks.py`` does by hand)."""

from __future__ import annotations

import fnmatch
import importlib
import os
import pkgutil
import sys
from types import ModuleType

from streamflow.api.app import App
from streamflow.cli.common import load_app

#: The modules imported by default: every module or package named ``tasks``.
DEFAULT_PATTERN = "*.tasks"


def load_worker_app(spec: str, pattern: str | None) -> tuple[App, list[str]]:
    """The App a worker runs, and the modules discovered for it.

    ``spec`` is ``module:attribute`` (discovery only with a ``pattern``), or a package
    name: its App is its attribute ``app``, else the one App among its attributes, and
    every module under it matching ``pattern`` (default ``*.tasks``) is imported.

    Raises:
        SystemExit: the spec names no App, or several, or is not a package to discover.
    """
    module_name, colon, _ = spec.partition(":")
    if not module_name:
        raise SystemExit(f"expected a package or module:app (got {spec!r})")
    sys.path.insert(0, os.getcwd())
    module = _import(module_name)
    if colon:
        app = load_app(spec)
        return app, discover(module_name, pattern) if pattern else []
    app = find_app(module)
    return app, discover(module_name, pattern or DEFAULT_PATTERN)


def find_app(module: ModuleType) -> App:
    """``module``'s attribute ``app``, else the one App among its attributes.

    Raises:
        SystemExit: no App, or several, naming what was found.
    """
    name = module.__name__
    named = getattr(module, "app", None)
    if isinstance(named, App):
        return named
    if named is not None and not isinstance(named, ModuleType):
        raise SystemExit(
            f"{name}.app is not a streamflow App (got {type(named).__name__}): "
            f"name the App as {name}:attribute"
        )
    found = {id(value): key for key, value in vars(module).items() if isinstance(value, App)}
    apps = sorted(found.values())
    if len(apps) == 1:
        app: App = getattr(module, apps[0])
        return app
    if apps:
        raise SystemExit(
            f"{name} has several streamflow Apps ({', '.join(apps)}): name one, as {name}:{apps[0]}"
        )
    raise SystemExit(
        f"{name} has no streamflow App (no attribute 'app', and no attribute is an App): "
        f"name it as module:attribute"
    )


def discover(package_name: str, pattern: str) -> list[str]:
    """Import every module under ``package_name`` whose name (or an enclosing package's)
    matches the glob ``pattern``; returns their names, in the order imported.

    Raises:
        SystemExit: ``package_name`` is a module, not a package.
        ImportError: a module under it failed to import (never skipped silently).
    """
    package = importlib.import_module(package_name)
    path = getattr(package, "__path__", None)
    if path is None:
        raise SystemExit(
            f"--discover imports modules under a package, and {package_name} is a module "
            f"({package.__file__})"
        )

    def failed(name: str) -> None:  # a package walk_packages could not import
        raise ImportError(f"{name} could not be imported: {sys.exc_info()[1]}")

    imported: list[str] = []
    for info in pkgutil.walk_packages(path, prefix=f"{package_name}.", onerror=failed):
        if _matches(info.name, package_name, pattern):
            _import(info.name)
            imported.append(info.name)
    return imported


def _import(name: str) -> ModuleType:
    """Import ``name``; whatever its code raises (a SyntaxError, a missing dependency)
    becomes an ImportError naming it, which the command says in one line.

    Raises:
        ImportError: the module is missing, or its code failed.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:  # the module itself: its own message names it
            raise
        raise ImportError(f"{name} could not be imported: {exc}") from exc
    except Exception as exc:
        raise ImportError(f"{name} could not be imported: {type(exc).__name__}: {exc}") from exc


def _matches(name: str, package_name: str, pattern: str) -> bool:
    """Whether ``name`` or a package enclosing it (below ``package_name``) matches: the
    modules of a ``tasks`` package are tasks modules too."""
    parts = name.split(".")
    for end in range(package_name.count(".") + 2, len(parts) + 1):
        candidate = ".".join(parts[:end])
        if fnmatch.fnmatchcase(candidate, pattern) or candidate.rpartition(".")[2] == pattern:
            return True
    return False
