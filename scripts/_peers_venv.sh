# shellcheck shell=bash
# Sourced by scripts/bench: make .venv-peers hold the peer systems pinned in
# scripts/bench_peers.txt (dramatiq, dramatiq-workflow, Celery, py-spy),
# reinstalling only when that file changed. The project venv never imports them.
# Leaves the working directory at the repository root.

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv-peers/bin/python ]; then
    python3 -m venv .venv-peers
fi

_peers_stamp=.venv-peers/.peers-installed
_peers_hash="$(sha256sum scripts/bench_peers.txt | cut -d' ' -f1)"
if [ ! -f "$_peers_stamp" ] || [ "$(cat "$_peers_stamp")" != "$_peers_hash" ]; then
    echo "installing the benchmark peers into .venv-peers ..." >&2
    .venv-peers/bin/pip install -q -r scripts/bench_peers.txt
    printf '%s\n' "$_peers_hash" > "$_peers_stamp"
fi
unset _peers_stamp _peers_hash
