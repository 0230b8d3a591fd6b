#!/usr/bin/env bash
# Installs the real peers the tests talk to, into target/peers (idempotent):
# - aiosmtpd (PyPI) in a virtualenv: the SMTP server the e-mail tests send to;
# - a private CA and a certificate for 127.0.0.1 (openssl) for its STARTTLS.
# Called by .ci/run and, when target/peers is missing, by the test harness.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
peers="${WATCHPOST_PEERS_DIR:-$root/target/peers}"
mkdir -p "$peers"
exec 9>"$peers/.lock"
flock 9
if [ ! -x "$peers/venv/bin/python" ] || ! "$peers/venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    python3 -m venv "$peers/venv"
    "$peers/venv/bin/pip" install --quiet --disable-pip-version-check 'aiosmtpd==1.4.*'
fi
if [ ! -s "$peers/tls/server.pem" ]; then
    mkdir -p "$peers/tls"
    cd "$peers/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Watchpost test CA" \
        -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile ext.cnf -out server.pem 2>/dev/null
fi
echo "peers ready in $peers"
