#!/usr/bin/env bash
# Installs the anchors watchpost-bench measures beside the agent (Debian
# packages, idempotent): collectd-core (collectd 5 and its plugins),
# prometheus-node-exporter and prometheus-snmp-exporter (snmp_exporter 0.21).
# None is started as a system service here: the bench starts each in the
# foreground under a temporary directory. Called by `watchpost-bench agent`
# and `watchpost-bench snmp` when one is missing.
set -euo pipefail
if [ -x /usr/sbin/collectd ] && [ -x /usr/bin/prometheus-node-exporter ] \
    && [ -x /usr/bin/prometheus-snmp-exporter ]; then
    exit 0
fi
apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the packages' postinst from starting the services.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ] && [ "$(id -u)" = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1
fi
debs="collectd-core prometheus-node-exporter prometheus-snmp-exporter"
apt_get install -y -q --no-install-recommends $debs >/dev/null \
    || { apt_get update -q >/dev/null && apt_get install -y -q --no-install-recommends $debs >/dev/null; }
[ "$made_policy" = 1 ] && rm -f "$policy"
exit 0
