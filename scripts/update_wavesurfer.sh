#!/usr/bin/env bash
# Vendor wavesurfer.js for the review desk (callscribe serve's web UI): the UMD build, the regions and timeline
# plugins, its LICENSE and its version, from the npm registry. Nothing is loaded from a CDN at run time.
#
#   scripts/update_wavesurfer.sh [VERSION]     # default: the newest 7.x
#
# Writes src/callscribe/server/ui/static/wavesurfer/ (replaced as a whole once everything is in place).
set -euo pipefail
SPEC="wavesurfer.js@${1:-7}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/src/callscribe/server/ui/static/wavesurfer"
command -v npm >/dev/null || { echo "update_wavesurfer.sh: npm is needed (apt-get install npm)" >&2; exit 2; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "$SPEC" >/dev/null && tar xzf wavesurfer.js-*.tgz)
PKG="$WORK/package"
VERSION="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$PKG/package.json")"
LICENSE_ID="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["license"])' "$PKG/package.json")"
NEW="$WORK/wavesurfer"
mkdir -p "$NEW/plugins"
for f in wavesurfer.min.js plugins/regions.min.js plugins/timeline.min.js; do
  [ -s "$PKG/dist/$f" ] || { echo "update_wavesurfer.sh: $SPEC has no dist/$f" >&2; exit 1; }
  cp "$PKG/dist/$f" "$NEW/$f"
done
cp "$PKG/LICENSE" "$NEW/LICENSE"
printf 'wavesurfer.js %s (%s), from the npm registry (%s)\n' "$VERSION" "$LICENSE_ID" "$SPEC" > "$NEW/VERSION"
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.old"
[ -d "$DEST" ] && mv "$DEST" "$DEST.old"
mv "$NEW" "$DEST"
rm -rf "$DEST.old"
echo "wavesurfer.js $VERSION -> ${DEST#"$ROOT"/}"
