# shellcheck shell=bash
# Sourced by scripts/test and scripts/demo: make .venv hold the project
# (editable, with the dev extra), reinstalling only when pyproject.toml changed.
# Leaves the working directory at the repository root.

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi

_streamflow_stamp=.venv/.streamflow-installed
_streamflow_hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$_streamflow_stamp" ] || [ "$(cat "$_streamflow_stamp")" != "$_streamflow_hash" ]; then
    .venv/bin/pip install -q -e '.[dev]'
    printf '%s\n' "$_streamflow_hash" > "$_streamflow_stamp"
fi
unset _streamflow_stamp _streamflow_hash
