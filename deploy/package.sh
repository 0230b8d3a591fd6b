#!/usr/bin/env bash
# Builds Watchpost's packages from a clean clone, into target/packages/:
#
#   deploy/package.sh deb      [--arch x86_64|aarch64]   .deb for collector, agent, watchpostctl
#   deploy/package.sh rpm      [--arch x86_64|aarch64]   .rpm for openEuler / Kylin (rpmbuild)
#   deploy/package.sh binaries [--arch x86_64|aarch64]   a .tar.gz of the binaries, configs and units
#   deploy/package.sh all                                every artefact for both architectures
#
# The binaries are glibc binaries built against glibc 2.28 (Debian 10, UOS
# 20, openEuler 20.03, Kylin V10 and newer): cargo-zigbuild with zig as the
# linker targets `<arch>-unknown-linux-gnu.2.28`, and the script refuses a
# binary that needs a newer glibc symbol (objdump -T). The tools are
# installed at pinned versions into target/deploy-tools: cargo-zigbuild
# from crates.io, zig from PyPI (ziglang), the Rust target through rustup.
#
# --bins DIR packages binaries already built in DIR instead (the package
# test uses the debug binaries of the test run); their glibc is whatever
# they were built against, and the check is skipped. WATCHPOST_PACKAGE_OUT
# names another output folder.
set -euo pipefail
# Failures inside $(...) stop the script too.
shopt -s inherit_errexit
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

ZIGBUILD_VERSION=0.24.1
ZIG_VERSION=0.15.2
GLIBC_BASELINE=2.28
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
MAINTAINER="Watchpost developers <watchpost@example.org>"

what="${1:-}"
shift || true
arch=x86_64
bins=""
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) arch="$2"; shift 2 ;;
        --bins) bins="$(cd "$2" && pwd)"; shift 2 ;;
        *) echo "package.sh: unknown argument $1 (see the top of deploy/package.sh)" >&2; exit 2 ;;
    esac
done
case "$arch" in
    x86_64) deb_arch=amd64 ;;
    aarch64) deb_arch=arm64 ;;
    *) echo "package.sh: --arch $arch: x86_64 or aarch64" >&2; exit 2 ;;
esac

out="${WATCHPOST_PACKAGE_OUT:-$root/target/packages}"
tools="$root/target/deploy-tools"
mkdir -p "$out" "$tools"
# Reproducible dates: the last commit's.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

need_tools() {
    if [ ! -x "$tools/venv/bin/python" ] || ! "$tools/venv/bin/python" -m ziglang version 2>/dev/null | grep -q "^$ZIG_VERSION"; then
        python3 -m venv "$tools/venv"
        "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==$ZIG_VERSION"
    fi
    if [ ! -x "$tools/bin/cargo-zigbuild" ] || ! "$tools/bin/cargo-zigbuild" --version | grep -q "$ZIGBUILD_VERSION"; then
        cargo install --quiet --locked --root "$tools" "cargo-zigbuild@$ZIGBUILD_VERSION"
    fi
    rustup target list --installed | grep -qx "$arch-unknown-linux-gnu" \
        || rustup target add "$arch-unknown-linux-gnu"
}

# Builds the three binaries for $arch against glibc $GLIBC_BASELINE; prints their folder.
build() {
    if [ -n "$bins" ]; then
        echo "$bins"
        return
    fi
    need_tools >&2
    local triple="$arch-unknown-linux-gnu"
    PATH="$tools/bin:$tools/venv/bin:$PATH" CARGO_ZIGBUILD_PYTHON_PATH="$tools/venv/bin/python" \
        cargo zigbuild --locked --profile dist --target "$triple.$GLIBC_BASELINE" \
        -p watchpost-collector-main -p watchpostctl >&2
    # The agent with its own profile (whole-program LTO, no unwinding):
    # 1.4 MiB less resident than with dist (watchpost-bench agent).
    PATH="$tools/bin:$tools/venv/bin:$PATH" CARGO_ZIGBUILD_PYTHON_PATH="$tools/venv/bin/python" \
        cargo zigbuild --locked --profile agent --target "$triple.$GLIBC_BASELINE" \
        -p watchpost-agent --bin watchpost-agent >&2
    local dir="$root/target/$triple/dist"
    install -m 0755 "$root/target/$triple/agent/watchpost-agent" "$dir/watchpost-agent"
    for b in watchpost-collector watchpost-agent watchpostctl; do
        check_glibc "$dir/$b" >&2
    done
    echo "$dir"
}

# Fails if $1 needs a glibc symbol newer than the baseline.
check_glibc() {
    local newest
    newest="$(objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)"
    if [ -z "$newest" ]; then
        echo "package.sh: $1 names no glibc symbol version: not a glibc binary?" >&2
        exit 1
    fi
    if [ "$(printf '%s\n%s\n' "$newest" "$GLIBC_BASELINE" | sort -V | tail -1)" != "$GLIBC_BASELINE" ]; then
        echo "package.sh: $1 needs glibc $newest, newer than the baseline $GLIBC_BASELINE" >&2
        exit 1
    fi
    echo "$(basename "$1"): newest glibc symbol GLIBC_$newest (baseline $GLIBC_BASELINE)"
}

# Lays out the files of package $1 under $2 (a root folder), from the
# binaries in $3, for $format (deb or rpm).
format=deb
stage() {
    local pkg="$1" dest="$2" dir="$3"
    local doc="$dest/usr/share/doc/$pkg"
    install -d "$dest/usr/bin" "$doc"
    case "$pkg" in
        watchpost-collector)
            install -m 0755 "$dir/watchpost-collector" "$dest/usr/bin/"
            strip_it "$dest/usr/bin/watchpost-collector"
            install -d "$dest/etc/watchpost/rules.d" "$dest/usr/share/watchpost/rules" \
                "$dest/usr/share/watchpost/calendars" "$dest/lib/systemd/system" "$doc/examples"
            # 0644 as shipped; postinst makes them root:watchpost 0640 (secrets go in them).
            install -m 0644 deploy/etc/collector.toml "$dest/etc/watchpost/collector.toml"
            install -m 0644 examples/oncall.toml "$dest/etc/watchpost/oncall.toml"
            install -m 0644 examples/inspections.toml "$dest/etc/watchpost/inspections.toml"
            install -m 0644 deploy/etc/rules.d/local.toml "$dest/etc/watchpost/rules.d/local.toml"
            install -m 0644 examples/rules/*.toml "$dest/usr/share/watchpost/rules/"
            install -m 0644 examples/calendars/*.toml "$dest/usr/share/watchpost/calendars/"
            install -m 0755 deploy/make-certs.sh "$dest/usr/share/watchpost/make-certs.sh"
            install -m 0644 deploy/systemd/watchpost-collector.service "$dest/lib/systemd/system/"
            install -m 0644 examples/collector.toml "$doc/examples/collector.toml"
            install -m 0644 deploy/INSTALL.md "$doc/INSTALL.md"
            if [ "$format" = deb ]; then
                install -d "$dest/usr/share/lintian/overrides"
                install -m 0644 deploy/lintian/watchpost-collector "$dest/usr/share/lintian/overrides/watchpost-collector"
            fi
            ;;
        watchpost-agent)
            install -m 0755 "$dir/watchpost-agent" "$dest/usr/bin/"
            strip_it "$dest/usr/bin/watchpost-agent"
            install -d "$dest/etc/watchpost" "$dest/usr/share/watchpost/snmp-profiles" \
                "$dest/lib/systemd/system" "$doc/examples"
            install -m 0644 deploy/etc/agent.toml "$dest/etc/watchpost/agent.toml"
            install -m 0644 examples/snmp-profiles/*.toml "$dest/usr/share/watchpost/snmp-profiles/"
            install -m 0644 deploy/systemd/watchpost-agent.service "$dest/lib/systemd/system/"
            install -m 0644 examples/agent.toml "$doc/examples/agent.toml"
            install -m 0644 deploy/INSTALL.md "$doc/INSTALL.md"
            ;;
        watchpostctl)
            install -m 0755 "$dir/watchpostctl" "$dest/usr/bin/"
            strip_it "$dest/usr/bin/watchpostctl"
            ;;
    esac
}

# Binaries built here come stripped (profile dist); --bins ones may not.
strip_it() {
    if [ -n "$bins" ]; then
        strip --strip-unneeded --remove-section=.comment "$1"
    fi
}

summary() {
    case "$1" in
        watchpost-collector) echo "infrastructure monitoring collector: rules, fault records, deadlines" ;;
        watchpost-agent) echo "infrastructure monitoring agent: host, SNMP, Modbus, probes" ;;
        watchpostctl) echo "command-line client of the Watchpost collector" ;;
    esac
}

description() {
    case "$1" in
        watchpost-collector) cat <<'EOF'
 Watchpost (哨所) collects host, network and storage metrics streamed by its
 agents over gRPC, evaluates threshold rules around the clock, opens fault
 records with response and resolve deadlines on a working calendar, and
 notifies the on-call staff by e-mail, webhook, DingTalk, WeCom or Feishu.
 It keeps daily inspection records, monthly service statistics, backups,
 and ships samples to Prometheus-compatible stores with remote_write.
EOF
        ;;
        watchpost-agent) cat <<'EOF'
 The Watchpost agent reads this host's CPU, memory, filesystems, disks and
 network, polls switches, routers and UPSes over SNMP (and receives their
 traps), reads machine-room sensors over Modbus TCP, runs ping, TCP and
 HTTP probes, and streams everything to a Watchpost collector, spooling to
 disk while the collector cannot be reached.
EOF
        ;;
        watchpostctl) cat <<'EOF'
 watchpostctl talks to a Watchpost collector's HTTP API: faults and their
 deadlines, on-call rosters, maintenance windows, change requests, daily
 inspections, reports, users, tokens, agent enrolment and backups.
EOF
        ;;
    esac
}

# The maintainer scripts of $1 (collector or agent: a service; ctl: none).
maintainer_scripts() {
    local pkg="$1" d="$2" unit="$1.service" state kept
    state="/var/lib/watchpost/${pkg#watchpost-}"
    case "$pkg" in
        watchpost-collector) kept="the fault records and the history" ;;
        *) kept="the spool of unacknowledged samples and the credential" ;;
    esac
    [ "$pkg" = watchpostctl ] && return
    cat > "$d/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
    if ! getent passwd watchpost >/dev/null; then
        adduser --system --group --home /var/lib/watchpost --no-create-home --quiet watchpost
    fi
    install -d -o watchpost -g watchpost -m 0750 /var/lib/watchpost $state
    for f in /etc/watchpost/*.toml; do
        [ -f "\$f" ] && chgrp watchpost "\$f" && chmod 0640 "\$f"
    done
fi
if [ "\$1" = configure ] || [ "\$1" = abort-upgrade ] || [ "\$1" = abort-deconfigure ] || [ "\$1" = abort-remove ]; then
    deb-systemd-helper unmask '$unit' >/dev/null || true
    if deb-systemd-helper --quiet was-enabled '$unit'; then
        deb-systemd-helper enable '$unit' >/dev/null || true
    else
        deb-systemd-helper update-state '$unit' >/dev/null || true
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        if [ -n "\$2" ]; then
            deb-systemd-invoke try-restart '$unit' >/dev/null || true
        fi
    fi
fi
EOF
    cat > "$d/prerm" <<EOF
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "\$1" = remove ]; then
    deb-systemd-invoke stop '$unit' >/dev/null || true
fi
EOF
    cat > "$d/postrm" <<EOF
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "\$1" = remove ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "\$1" = purge ]; then
    if [ -x "/usr/bin/deb-systemd-helper" ]; then
        deb-systemd-helper purge '$unit' >/dev/null || true
        deb-systemd-helper unmask '$unit' >/dev/null || true
    fi
    if [ -d $state ]; then
        echo "$pkg: $state is kept ($kept); delete it yourself when it is no longer needed" >&2
    fi
fi
EOF
    chmod 0755 "$d/postinst" "$d/prerm" "$d/postrm"
}

deb() {
    format=deb
    command -v dpkg-deb >/dev/null || { echo "package.sh: dpkg-deb is needed (Debian package dpkg)" >&2; exit 1; }
    local dir
    dir="$(build)"
    local date
    date="$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
    for pkg in watchpost-collector watchpost-agent watchpostctl; do
        local s
        s="$(mktemp -d)"
        stage "$pkg" "$s" "$dir"
        local doc="$s/usr/share/doc/$pkg"
        cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: watchpost
Source: https://github.com/watchpost/watchpost

Files: *
Copyright: 2026 Watchpost developers
License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
        printf '%s (%s) unstable; urgency=medium\n\n  * Built by deploy/package.sh from the Watchpost source tree.\n\n -- %s  %s\n' \
            "$pkg" "$VERSION" "$MAINTAINER" "$date" | gzip -9n > "$doc/changelog.gz"
        install -d "$s/DEBIAN"
        maintainer_scripts "$pkg" "$s/DEBIAN"
        if [ -d "$s/etc" ]; then
            (cd "$s" && find etc -type f | sort | sed 's|^|/|') > "$s/DEBIAN/conffiles"
        fi
        local depends="libc6 (>= $GLIBC_BASELINE), libgcc-s1 | libgcc1"
        local extra=""
        case "$pkg" in
            watchpost-collector)
                depends="$depends, adduser"
                extra="Recommends: fonts-wqy-microhei | fonts-noto-cjk"$'\n'"Suggests: watchpostctl" ;;
            watchpost-agent)
                depends="$depends, adduser"
                extra="Suggests: smartmontools" ;;
        esac
        local size
        size="$(du -sk --exclude=DEBIAN "$s" | cut -f1)"
        {
            echo "Package: $pkg"
            echo "Version: $VERSION"
            echo "Architecture: $deb_arch"
            echo "Maintainer: $MAINTAINER"
            echo "Installed-Size: $size"
            echo "Depends: $depends"
            [ -n "$extra" ] && echo "$extra"
            echo "Section: admin"
            echo "Priority: optional"
            echo "Homepage: https://github.com/watchpost/watchpost"
            echo "Description: $(summary "$pkg")"
            description "$pkg"
        } > "$s/DEBIAN/control"
        (cd "$s" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) \
            > "$s/DEBIAN/md5sums"
        find "$s" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
        local file="$out/${pkg}_${VERSION}_${deb_arch}.deb"
        dpkg-deb --root-owner-group -Zxz --build "$s" "$file" >/dev/null
        rm -rf "$s"
        echo "$file ($(du -h "$file" | cut -f1))"
    done
}

rpm_pkg() {
    format=rpm
    command -v rpmbuild >/dev/null || { echo "package.sh: rpmbuild is needed (Debian package rpm, or rpm-build)" >&2; exit 1; }
    local dir
    dir="$(build)"
    local top
    top="$(mktemp -d)"
    local s="$top/stage"
    for pkg in watchpost-collector watchpost-agent watchpostctl; do
        stage "$pkg" "$s" "$dir"
    done
    # RPM distributions keep units under /usr/lib/systemd/system.
    install -d "$s/usr/lib/systemd"
    mv "$s/lib/systemd/system" "$s/usr/lib/systemd/system"
    rm -rf "$s/lib"
    rpmbuild -bb --quiet \
        --define "_topdir $top" \
        --define "_rpmdir $out" \
        --define "_build_id_links none" \
        --define "stage $s" \
        --define "version $VERSION" \
        --define "source_date_epoch_from_changelog 0" \
        --define "use_source_date_epoch_as_buildtime 1" \
        --target "$arch-linux" \
        deploy/rpm/watchpost.spec >/dev/null
    rm -rf "$top"
    for f in "$out/$arch"/watchpost*-"$VERSION"-1.*"$arch".rpm; do
        echo "$f ($(du -h "$f" | cut -f1))"
    done
}

binaries() {
    local dir
    dir="$(build)"
    local name="watchpost-$VERSION-$arch-linux-gnu"
    local s
    s="$(mktemp -d)/$name"
    install -d "$s/bin" "$s/etc" "$s/share/rules" "$s/share/calendars" "$s/share/snmp-profiles" "$s/systemd"
    for b in watchpost-collector watchpost-agent watchpostctl; do
        install -m 0755 "$dir/$b" "$s/bin/"
        strip_it "$s/bin/$b"
    done
    install -m 0644 deploy/etc/*.toml examples/oncall.toml examples/inspections.toml "$s/etc/"
    install -m 0644 examples/rules/*.toml "$s/share/rules/"
    install -m 0644 examples/calendars/*.toml "$s/share/calendars/"
    install -m 0644 examples/snmp-profiles/*.toml "$s/share/snmp-profiles/"
    install -m 0644 deploy/systemd/*.service "$s/systemd/"
    install -m 0755 deploy/make-certs.sh "$s/share/"
    install -m 0644 deploy/INSTALL.md README.md "$s/"
    local file="$out/$name.tar.gz"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        -C "$(dirname "$s")" -czf "$file" "$name"
    rm -rf "$(dirname "$s")"
    echo "$file ($(du -h "$file" | cut -f1))"
}

case "$what" in
    deb) deb ;;
    rpm) rpm_pkg ;;
    binaries) binaries ;;
    all)
        for a in x86_64 aarch64; do
            arch=$a
            case "$a" in x86_64) deb_arch=amd64 ;; aarch64) deb_arch=arm64 ;; esac
            deb
            rpm_pkg
            binaries
        done
        ;;
    *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
