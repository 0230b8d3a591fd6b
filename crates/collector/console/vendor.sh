#!/usr/bin/env bash
# Fetches the console's third-party scripts from the npm registry, each at
# an exact version, checks its SHA-256 and writes it into assets/. The
# files are committed, so a clone builds offline; run this only to change
# a version (then update the sums below from a fetch you trust).
#
#   crates/collector/console/vendor.sh          fetch and check
#   crates/collector/console/vendor.sh --check  only check the committed files
set -euo pipefail
cd "$(dirname "$0")"

# package  version  file in the package  file in assets/  sha256 of that file
pins=(
    "htmx.org 2.0.11 package/dist/htmx.min.js htmx.min.js d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
    "echarts 6.1.0 package/dist/echarts.min.js echarts.min.js b66b25aeb4df84e33199dc21694014d336d222cbd9deb0e5a7c14bd6aa0d0fd0"
)

check() {
    local file="$1" want="$2" got
    got="$(sha256sum "$file" | cut -d' ' -f1)"
    if [ "$got" != "$want" ]; then
        echo "vendor.sh: $file has SHA-256 $got, expected $want" >&2
        exit 1
    fi
}

for pin in "${pins[@]}"; do
    read -r pkg version inner out sum <<<"$pin"
    if [ "${1:-}" != "--check" ]; then
        tmp="$(mktemp -d)"
        curl -fsSL "https://registry.npmjs.org/$pkg/-/${pkg##*/}-$version.tgz" -o "$tmp/p.tgz"
        tar -xzf "$tmp/p.tgz" -C "$tmp" "$inner" package/LICENSE
        cp "$tmp/$inner" "assets/$out"
        # The licence travels with the file (htmx: 0BSD, ECharts: Apache-2.0).
        cp "$tmp/package/LICENSE" "assets/$out.LICENSE"
        rm -rf "$tmp"
    fi
    check "assets/$out" "$sum"
    echo "assets/$out: $pkg $version, SHA-256 ok"
done
