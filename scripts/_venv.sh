# shellcheck shell=bash
# Sourced by scripts/test, scripts/demo and scripts/bench: make a venv hold the project
# (editable) and exactly the versions of a requirements file, rebuilding it from scratch
# only when that file or pyproject.toml changed. Leaves the working directory at the
# repository root. Set before sourcing, all optional:
#   SF_VENV          the venv's folder (default .venv)
#   SF_PYTHON        the interpreter that makes it (default python3)
#   SF_REQUIREMENTS  the pinned versions (default requirements/dev.txt, refreshed by
#                    scripts/lock); "latest" installs the newest versions pyproject.toml
#                    allows, with the dev extra, every time

cd "$(dirname "${BASH_SOURCE[0]}")/.."

_sf_venv="${SF_VENV:-.venv}"
_sf_requirements="${SF_REQUIREMENTS:-requirements/dev.txt}"
_sf_stamp="$_sf_venv/.streamflow-installed"

if [ "$_sf_requirements" = latest ]; then
    [ -x "$_sf_venv/bin/python" ] || "${SF_PYTHON:-python3}" -m venv "$_sf_venv"
    "$_sf_venv/bin/pip" install -q --upgrade --upgrade-strategy eager -e '.[dev]'
else
    _sf_hash="$(cat pyproject.toml requirements/build.txt "$_sf_requirements" | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$_sf_stamp" ] || [ "$(cat "$_sf_stamp")" != "$_sf_hash" ]; then
        echo "installing $_sf_requirements into $_sf_venv ..." >&2
        rm -rf "$_sf_venv"
        "${SF_PYTHON:-python3}" -m venv "$_sf_venv"
        "$_sf_venv/bin/pip" install -q -r requirements/build.txt
        "$_sf_venv/bin/pip" install -q -r "$_sf_requirements"
        "$_sf_venv/bin/pip" install -q --no-deps --no-build-isolation -e .
        printf '%s\n' "$_sf_hash" > "$_sf_stamp"
    fi
    unset _sf_hash
fi
unset _sf_venv _sf_requirements _sf_stamp
