#!/usr/bin/env bash
# Makes a private CA and certificates for a test or small deployment:
# the collector's server certificate and one client certificate per agent
# (for mutual TLS). Uses openssl only. Existing files are kept, so the
# script can be run again to add agents.
#
#   deploy/make-certs.sh DIR COLLECTOR_NAME [AGENT_ID ...]
#
#   COLLECTOR_NAME  what agents dial: a DNS name or an IP address
#   AGENT_ID        one client certificate per agent (CN = the agent id)
#
# Writes DIR/ca.pem (give it to agents: agent.ca_file, and to the collector:
# tls.client_ca_file), DIR/ca.key (keep it offline), DIR/collector.pem and
# DIR/collector.key (tls.cert_file, tls.key_file), DIR/agent-ID.pem and
# DIR/agent-ID.key (agent.cert_file, agent.key_file). Keys are mode 600.
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,16p' "$0" >&2
    exit 2
fi
dir=$1
name=$2
shift 2
days=${WATCHPOST_CERT_DAYS:-825}
mkdir -p "$dir"
cd "$dir"
umask 077
if [ ! -s ca.pem ]; then
    openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=Watchpost private CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout ca.key -out ca.pem 2>/dev/null
    echo "made ca.pem"
fi
issue() { # issue NAME CN EXT
    local out=$1 cn=$2 ext=$3
    [ -s "$out.pem" ] && { echo "kept $out.pem"; return; }
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" -keyout "$out.key" -out "$out.csr" 2>/dev/null
    printf '%s\n' "$ext" > "$out.ext"
    openssl x509 -req -in "$out.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" \
        -extfile "$out.ext" -out "$out.pem" 2>/dev/null
    rm -f "$out.csr" "$out.ext"
    echo "made $out.pem"
}
if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then san="IP:$name"; else san="DNS:$name"; fi
issue collector "$name" "subjectAltName=$san
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
for id in "$@"; do
    issue "agent-$id" "$id" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
done
chmod 644 ./*.pem
