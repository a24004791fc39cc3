#!/usr/bin/env bash
# Re-vendor the front-end files we serve (no CDN): fetch packages from the npm registry
# with `npm pack`, and copy only the built files and their licences into app/static/vendor.
set -euo pipefail
cd "$(dirname "$0")/.."
PICO_VERSION=${PICO_VERSION:-2.1.1}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@picocss/pico@${PICO_VERSION}" >/dev/null && tar -xzf picocss-pico-*.tgz)
dest=app/static/vendor/pico
mkdir -p "$dest"
cp "$work/package/css/pico.min.css" "$dest/pico.min.css"
cp "$work/package/LICENSE.md" "$dest/LICENSE.md"
cat > "$dest/VENDORED.md" <<NOTE
@picocss/pico ${PICO_VERSION} from the npm registry (MIT licence, see LICENSE.md).
Files: css/pico.min.css (the default build, not classless) and LICENSE.md.
Fetched with: npm pack @picocss/pico@${PICO_VERSION} (extracted in a temporary directory).
Reproduce with: scripts/vendor-frontend.sh (PICO_VERSION=x.y.z to change the version).
NOTE
echo "vendored @picocss/pico ${PICO_VERSION} into $dest"
