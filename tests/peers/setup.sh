#!/usr/bin/env bash
# Installs the real peers the tests talk to, into target/peers (idempotent):
# - aiosmtpd (PyPI) in a virtualenv: the SMTP server the e-mail tests send to;
# - a private CA and a certificate for 127.0.0.1 (openssl) for its STARTTLS;
# - net-snmp's snmpd and command-line tools (Debian packages snmpd, snmp):
#   the real SNMP agent the SNMP tests poll, and snmptrap to send traps;
# - snmpsim (PyPI) serving the simulated devices written by snmprec.py;
# - pymodbus (PyPI): the Modbus TCP device of the sensor tests;
# - faketime (Debian packages faketime, libfaketime): agents whose clock is wrong;
# - fonts-wqy-microhei (the CJK font PDF reports are set in) and poppler-utils
#   (pdftotext, pdftoppm: the PDF tests read the text back);
# - victoria-metrics and prometheus (Debian packages): the remote_write
#   receivers, and a Prometheus scraping /federate;
# - lintian and rpm (rpmbuild): the package test builds, checks and
#   installs the .deb packages and builds the RPMs;
# - chromium and chromium-driver (Debian packages): the real browser the
#   console tests drive over WebDriver (headless, off the network);
# - mariadb-server, postgresql, redis-server and nginx-light (Debian
#   packages): the databases and middleware the agent watches; the tests
#   start them on loopback ports under temporary directories, not as
#   system services.
# Called by .ci/run and, when target/peers is missing, by the test harness.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
peers="${WATCHPOST_PEERS_DIR:-$root/target/peers}"
mkdir -p "$peers"
exec 9>"$peers/.lock"
flock 9
if [ ! -x /usr/sbin/snmpd ] || ! command -v snmptrap >/dev/null || ! command -v faketime >/dev/null \
    || ! command -v pdftotext >/dev/null || [ ! -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] \
    || [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/victoria-metrics ] \
    || ! command -v lintian >/dev/null || ! command -v rpmbuild >/dev/null \
    || [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] \
    || [ ! -x /usr/sbin/mariadbd ] || [ ! -d /usr/lib/postgresql ] \
    || [ ! -x /usr/bin/redis-server ] || [ ! -x /usr/sbin/nginx ]; then
    apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
    export DEBIAN_FRONTEND=noninteractive
    debs="snmpd snmp faketime fonts-wqy-microhei poppler-utils victoria-metrics prometheus lintian rpm chromium chromium-driver mariadb-server postgresql redis-server nginx-light"
    apt_get install -y -q --no-install-recommends $debs >/dev/null \
        || { apt_get update -q >/dev/null && apt_get install -y -q --no-install-recommends $debs >/dev/null; }
fi
if [ ! -x "$peers/venv/bin/python" ] \
    || ! "$peers/venv/bin/python" -c 'import aiosmtpd, snmpsim, pysmi, pymodbus' 2>/dev/null; then
    python3 -m venv "$peers/venv"
    "$peers/venv/bin/pip" install --quiet --disable-pip-version-check \
        'aiosmtpd==1.4.*' 'snmpsim==1.2.*' 'pysmi==2.0.*' 'pymodbus==3.16.*'
fi
# Simulated SNMP devices (rewritten each time: cheap, and follows the script).
"$peers/venv/bin/python" "$root/tests/peers/snmprec.py" "$peers/snmprec"
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
