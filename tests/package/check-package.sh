#!/bin/bash
# tests/package/check-package.sh: the Debian package, tested rather than only
# built (issue 11).  Run as root on a Debian 12 machine (CI: .ci/run); it
# installs what it needs with apt-get, and touches the system only through
# dpkg (install, then purge) and processes it starts and stops itself.
#
#  1. build the .deb from a clean clone of this repository's HEAD;
#  2. lintian: no error or warning (overrides, each with its reason, live in
#     packaging/debian/bulk-enroll.lintian-overrides);
#  3. dpkg -i; check the files, user, group and modes README.md promises,
#     and that debian/copyright carries LICENSE verbatim;
#  4. systemd-analyze verify on the installed units, and systemd-analyze
#     security on the service: exposure at most 2.0;
#  5. a throwaway MariaDB with the LMS stand-in schema, the installed
#     migration and the demo data; the installed daemon started the way
#     systemd would: on a listening socket systemd-socket-activate passes
#     as standard input at /run/bulk-enroll/fcgi.sock, as the package's
#     user, with the installed configuration (only db.socket pointed at the
#     throwaway server); nginx with the installed snippet in front;
#  6. GET /healthz answers 200 and a real enrollment is written, through
#     nginx;
#  7. dpkg --purge; nothing of the package is left but its system user,
#     which Debian policy keeps.
#
# BULK_PACKAGE_KEEP=1 keeps the work directory (printed) for a post-mortem.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
PKG=bulk-enroll
SOCK=/run/bulk-enroll/fcgi.sock
CONF=/etc/bulk-enroll/bulk-enroll.conf
NEEDED=(git ca-certificates build-essential debhelper dh-autoreconf autoconf automake pkg-config
	libfcgi-dev libyajl-dev libmariadb-dev libmariadb-dev-compat libcurl4-openssl-dev
	libssl-dev libcmocka-dev lintian systemd adduser mariadb-server mariadb-client nginx-light
	curl python3 util-linux)

say() { printf 'package: %s\n' "$*"; }
die() { printf 'package: FAILED: %s\n' "$*" >&2; exit 1; }
checks=0
ok() { checks=$((checks + 1)); printf 'package: ok   %s\n' "$*"; }

[ "$(id -u)" = 0 ] || die "run as root (it installs and purges the package)"
dpkg -s "$PKG" >/dev/null 2>&1 && die "$PKG is installed already; purge it first"

WORK=$(mktemp -d /tmp/bulk-enroll-package.XXXXXX)
chmod 0711 "$WORK"
PIDS=()
cleanup() {
	local rc=$? pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if dpkg -s "$PKG" >/dev/null 2>&1; then
		rm -f /etc/bulk-enroll/db-password /etc/bulk-enroll/jwt-secret
		dpkg --purge "$PKG" >/dev/null 2>&1 || true
	fi
	rm -rf /run/bulk-enroll
	if [ "$rc" != 0 ] || [ "${BULK_PACKAGE_KEEP:-0}" = 1 ]; then
		say "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback TCP port.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
	local t=$(( $1 * 10 ))
	shift
	while ! "$@" >/dev/null 2>&1; do
		t=$((t - 1))
		[ "$t" -gt 0 ] || return 1
		sleep 0.1
	done
}

# --- 0. what the test needs ---------------------------------------------
missing=()
for p in "${NEEDED[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	say "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 1. the .deb from a clean clone -------------------------------------
say "building the package from a clean clone of $(git -C "$SRC_DIR" rev-parse --short HEAD)"
git clone --quiet --no-hardlinks "$SRC_DIR" "$WORK/src"
(cd "$WORK/src" && ./autogen.sh >"$WORK/autogen.log" 2>&1) || die "autogen.sh (see $WORK/autogen.log)"
mkdir "$WORK/src/build"
(cd "$WORK/src/build" && ../configure >"$WORK/configure.log" 2>&1) || die "configure (see $WORK/configure.log)"
# The unit tests ran in tests/stack.sh test already: not again here.
DEB_BUILD_OPTIONS="nocheck parallel=2" "$WORK/src/packaging/build-deb.sh" "$WORK/src/build" \
	>"$WORK/build-deb.log" 2>&1 || { tail -n 30 "$WORK/build-deb.log" >&2; die "build-deb.sh"; }
DEB=$(ls "$WORK"/src/build/deb/${PKG}_*.deb)
ok "built $(basename "$DEB")"

# --- 2. lintian -----------------------------------------------------------
# From here on the unprivileged users (nobody, bulk-enroll) run commands: keep
# them out of the checkout, which may sit where only root can enter (/root).
cd "$WORK"
# As an ordinary user (lintian advises against root); -I shows info tags
# too, so an unused override or a new info tag is seen in the log.
chmod 0755 "$WORK/src" "$WORK/src/build" "$WORK/src/build/deb"
chmod 0644 "$DEB"
if ! runuser -u nobody -- env HOME=/tmp lintian --fail-on error,warning -I --tag-display-limit 0 \
	"$DEB" >"$WORK/lintian.log" 2>&1; then
	cat "$WORK/lintian.log" >&2
	die "lintian reports errors or warnings"
fi
[ ! -s "$WORK/lintian.log" ] || { cat "$WORK/lintian.log" >&2; die "lintian reports tags an override does not cover"; }
ok "lintian: no tags beyond the justified overrides"

# --- 3. install, files, user, modes --------------------------------------
dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log" >&2; die "dpkg -i"; }
dpkg -L "$PKG" | sort >"$WORK/files"
ok "dpkg -i"

# mode owner group path: what README.md's "Debian package" section promises.
expect_stat() {
	local want="$1 $2 $3" path=$4 got
	got=$(stat -c '%a %U %G' "$path" 2>/dev/null) || die "missing: $path"
	[ "$got" = "$want" ] || die "$path is $got, expected $want"
	ok "$path $want"
}
expect_stat 755 root root /usr/sbin/bulk-enrolld
expect_stat 640 root bulk-enroll "$CONF"
expect_stat 644 root root /lib/systemd/system/bulk-enroll.socket
expect_stat 644 root root /lib/systemd/system/bulk-enroll.service
expect_stat 644 root root /etc/nginx/snippets/bulk-enroll.conf
expect_stat 644 root root /usr/share/bulk-enroll/sql/003-bulk-enroll-outbox.sql
for t in subject.txt body.txt body.html; do
	expect_stat 644 root root "/usr/share/bulk-enroll/templates/$t"
done
expect_stat 644 root root /usr/share/man/man8/bulk-enrolld.8.gz
expect_stat 644 root root /usr/share/doc/bulk-enroll/copyright
grep -q '^/etc/bulk-enroll/bulk-enroll.conf$' <(dpkg-query --showformat='${Conffiles}\n' --show "$PKG" | awk '{print $1}') ||
	die "$CONF is not a conffile"
ok "$CONF is a conffile"
man -l /usr/share/man/man8/bulk-enrolld.8.gz 2>/dev/null | grep -q 'outbox requeue' ||
	die "the man page does not document outbox requeue"
ok "man page documents the outbox commands"

IFS=: read -r _ _ uid gid _ home shell < <(getent passwd bulk-enroll) || die "no user bulk-enroll"
[ "$uid" -lt 1000 ] || die "bulk-enroll is not a system user (uid $uid)"
[ "$(getent group bulk-enroll | cut -d: -f3)" = "$gid" ] || die "bulk-enroll's group is not bulk-enroll"
if [ "$home" != /nonexistent ] || [ -e /nonexistent ]; then die "bulk-enroll's home: $home"; fi
case "$shell" in */nologin|/bin/false) ;; *) die "bulk-enroll's shell: $shell" ;; esac
ok "system user and group bulk-enroll ($uid:$gid), no home, no shell"

# debian/copyright holds LICENSE verbatim (the Debian form of its lines).
sed -n '/^ The full text of the license follows\.$/,$p' /usr/share/doc/bulk-enroll/copyright |
	tail -n +3 | sed -e 's/^ //' -e 's/^\.$//' | cmp -s - "$SRC_DIR/LICENSE" ||
	die "the copyright file's license text differs from LICENSE"
ok "copyright: machine-readable, with LICENSE (AGPL-3.0-or-later) verbatim"

# --- 4. the units -------------------------------------------------------
# verify loads the units as systemd would (syntax, the executables exist,
# the socket and service match); offline, no running systemd needed.
systemd-analyze verify /lib/systemd/system/bulk-enroll.socket \
	/lib/systemd/system/bulk-enroll.service >"$WORK/verify.log" 2>&1 ||
	{ cat "$WORK/verify.log" >&2; die "systemd-analyze verify"; }
[ ! -s "$WORK/verify.log" ] || { cat "$WORK/verify.log" >&2; die "systemd-analyze verify warns"; }
ok "systemd-analyze verify: clean"
systemd-analyze security --offline=true /lib/systemd/system/bulk-enroll.service \
	>"$WORK/security.log" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for bulk-enroll.service: \([0-9.]*\).*/\1/p' "$WORK/security.log")
[ -n "$exposure" ] || { cat "$WORK/security.log" >&2; die "no exposure level from systemd-analyze security"; }
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || { cat "$WORK/security.log" >&2; die "exposure $exposure > 2.0"; }
ok "systemd-analyze security: exposure $exposure (at most 2.0)"

# --- 5. a throwaway MariaDB, the installed daemon, nginx -----------------
DBDIR=$WORK/db
mkdir -p "$DBDIR/data" "$DBDIR/run"
chown -R mysql:mysql "$DBDIR"
chmod 0755 "$DBDIR" "$DBDIR/run"
mariadb-install-db --no-defaults --user=mysql --datadir="$DBDIR/data" --auth-root-authentication-method=socket \
	--skip-test-db >"$WORK/db-install.log" 2>&1 || { cat "$WORK/db-install.log" >&2; die "mariadb-install-db"; }
DBSOCK=$DBDIR/run/mysqld.sock
setsid mariadbd --no-defaults --user=mysql --datadir="$DBDIR/data" --socket="$DBSOCK" \
	--skip-networking --pid-file="$DBDIR/run/mysqld.pid" --log-error="$DBDIR/error.log" \
	--innodb-buffer-pool-size=32M </dev/null >/dev/null 2>&1 &
PIDS+=($!)
db() { mariadb --no-defaults --socket="$DBSOCK" -uroot "$@"; }
wait_for 60 db -e 'SELECT 1' || { cat "$DBDIR/error.log" >&2; die "MariaDB did not start"; }
DBPASS=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
db -e "CREATE DATABASE edxapp CHARACTER SET utf8mb4;
	CREATE USER 'bulk_enroll'@'localhost' IDENTIFIED BY '$DBPASS';
	GRANT SELECT, INSERT, UPDATE, DELETE ON edxapp.* TO 'bulk_enroll'@'localhost';"
# The LMS stand-in (the real LMS owns these tables), then the migration as
# the package installed it, then the demo enterprise, learners, courses.
if [ -f "$SRC_DIR/tests/fixtures/lms/lms-tables.sql" ]; then
	db edxapp <"$SRC_DIR/tests/fixtures/lms/lms-tables.sql"
else
	for f in "$SRC_DIR"/sql/00[12]-*.sql; do db edxapp <"$f"; done
fi
for f in /usr/share/bulk-enroll/sql/*.sql; do db edxapp <"$f"; done
db edxapp <"$SRC_DIR/tests/fixtures/demo.sql"
ok "throwaway MariaDB with the installed migration"

# The operator's part: the secrets the installed configuration names.
JWT_SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
install -m 0640 -o root -g bulk-enroll /dev/null /etc/bulk-enroll/db-password
install -m 0640 -o root -g bulk-enroll /dev/null /etc/bulk-enroll/jwt-secret
printf '%s\n' "$DBPASS" >/etc/bulk-enroll/db-password
printf '%s\n' "$JWT_SECRET" >/etc/bulk-enroll/jwt-secret
setpriv --reuid=bulk-enroll --regid=bulk-enroll --init-groups env BULK_ENROLL_DB_SOCKET="$DBSOCK" \
	/usr/sbin/bulk-enrolld --config "$CONF" --check-config >/dev/null ||
	die "the installed configuration does not pass --check-config as bulk-enroll"
ok "--check-config as bulk-enroll with the installed configuration"

# What bulk-enroll.socket does: the directory, then the socket for
# www-data (SocketGroup=www-data, SocketMode=0660), passed on stdin.
install -d -m 0755 /run/bulk-enroll
(exec setsid systemd-socket-activate --inetd -l "$SOCK" \
	-E BULK_ENROLL_DB_SOCKET="$DBSOCK" \
	setpriv --reuid=bulk-enroll --regid=bulk-enroll --init-groups \
	/usr/sbin/bulk-enrolld --config "$CONF") </dev/null >"$WORK/daemon.log" 2>&1 &
PIDS+=($!)
wait_for 10 test -S "$SOCK" || { cat "$WORK/daemon.log" >&2; die "no socket at $SOCK"; }
chgrp www-data "$SOCK"
chmod 0660 "$SOCK"
[ "$(stat -c '%a %G' "$SOCK")" = "660 www-data" ] || die "socket mode: $(stat -c '%a %G' "$SOCK")"

PORT=$(free_port)
NGX=$WORK/nginx
mkdir -p "$NGX/tmp"
chown www-data "$NGX/tmp"
chmod 0755 "$NGX"
cp /etc/nginx/fastcgi_params "$NGX/"
cat >"$NGX/nginx.conf" <<EOF
user www-data;
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/error.log;
events { worker_connections 64; }
http {
	access_log $NGX/access.log;
	client_body_temp_path $NGX/tmp/body;
	fastcgi_temp_path $NGX/tmp/fastcgi;
	proxy_temp_path $NGX/tmp/proxy;
	uwsgi_temp_path $NGX/tmp/uwsgi;
	scgi_temp_path $NGX/tmp/scgi;
	server {
		listen 127.0.0.1:$PORT;
		include /etc/nginx/snippets/bulk-enroll.conf;
	}
}
EOF
nginx -t -q -p "$NGX" -c "$NGX/nginx.conf" || die "nginx refuses the installed snippet"
setsid nginx -p "$NGX" -c "$NGX/nginx.conf" -g 'daemon off;' </dev/null >/dev/null 2>&1 &
PIDS+=($!)
URL=http://127.0.0.1:$PORT
wait_for 10 curl -s -o /dev/null "$URL/healthz" || die "nginx did not come up"

# --- 6. /healthz and a real enrollment through nginx ----------------------
status=$(curl -s -o "$WORK/healthz.json" -w '%{http_code}' --max-time 20 "$URL/healthz")
[ "$status" = 200 ] || { cat "$WORK/healthz.json" "$WORK/daemon.log" >&2; die "/healthz answered $status"; }
ok "GET /healthz through nginx -> 200 $(cat "$WORK/healthz.json")"
ps -o user= -p "$(pgrep -f -n '^/usr/sbin/bulk-enrolld --config' || echo 1)" | grep -qx bulk-enroll ||
	die "the daemon does not run as bulk-enroll"
ok "the daemon runs as bulk-enroll"

issuer=$(sed -n 's/^jwt\.issuer *= *//p' "$CONF")
audience=$(sed -n 's/^jwt\.audience *= *//p' "$CONF")
TOKEN=$(JWT_SECRET=$JWT_SECRET ISS=$issuer AUD=$audience python3 - <<'EOF'
import base64, hashlib, hmac, json, os, time
def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"iss": os.environ["ISS"], "aud": os.environ["AUD"], "iat": now,
                       "exp": now + 300, "preferred_username": "package-test",
                       "administrator": True,
                       "roles": ["enterprise_openedx_operator:*"]}).encode())
sig = hmac.new(os.environ["JWT_SECRET"].encode(), (head + "." + body).encode(), hashlib.sha256)
print(head + "." + body + "." + b64(sig.digest()))
EOF
)
ENTERPRISE=e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b
status=$(curl -s -o "$WORK/enroll.json" -w '%{http_code}' --max-time 30 -X POST \
	-H "Authorization: JWT $TOKEN" -H 'Content-Type: application/json' \
	--data '{"enrollments_info": [{"user_id": 2, "course_run_key": "course-v1:edX+DemoX+2026",
		"license_uuid": "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"}]}' \
	"$URL/enterprise/api/v1/enterprise-customer/$ENTERPRISE/enroll_learners_in_courses/")
[ "$status" = 201 ] || { cat "$WORK/enroll.json" "$WORK/daemon.log" >&2; die "the enrollment answered $status"; }
grep -q '"created": *true' "$WORK/enroll.json" || die "not created: $(cat "$WORK/enroll.json")"
rows=$(db -N edxapp -e "SELECT COUNT(*) FROM student_courseenrollment
	WHERE user_id = 2 AND course_id = 'course-v1:edX+DemoX+2026' AND is_active = 1")
[ "$rows" = 1 ] || die "no enrollment row in the database"
ok "POST enroll_learners_in_courses through nginx -> 201, row written"

for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PIDS=()
rm -rf /run/bulk-enroll      # tmpfs under systemd: gone at reboot

# --- 7. purge -------------------------------------------------------------
# The operator's secret files are theirs to remove (dpkg never owned them).
rm -f /etc/bulk-enroll/db-password /etc/bulk-enroll/jwt-secret
dpkg --purge "$PKG" >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log" >&2; die "dpkg --purge"; }
left=()
while read -r f; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	# Directories other packages share (/usr/share/man/man8, ...) stay.
	[ -d "$f" ] && [ ! -L "$f" ] && dpkg -S "$f" >/dev/null 2>&1 && continue
	[ -d "$f" ] && [ -n "$(ls -A "$f")" ] && continue
	left+=("$f")
done <"$WORK/files"
[ "${#left[@]}" = 0 ] || die "left after purge: ${left[*]}"
for f in /etc/bulk-enroll /usr/share/bulk-enroll /usr/share/doc/bulk-enroll \
	/etc/systemd/system/sockets.target.wants/bulk-enroll.socket \
	/etc/systemd/system/multi-user.target.wants/bulk-enroll.service \
	/var/lib/systemd/deb-systemd-helper-enabled/bulk-enroll.socket.dsh-also \
	/var/lib/systemd/deb-systemd-helper-enabled/bulk-enroll.service.dsh-also; do
	[ ! -e "$f" ] || die "left after purge: $f"
done
! dpkg-statoverride --list "$CONF" >/dev/null 2>&1 || die "the statoverride of $CONF is left"
getent passwd bulk-enroll >/dev/null || die "the system user is gone (policy keeps it)"
ok "purged: no file, unit link or statoverride left; the system user stays (Debian policy)"

say "$checks checks passed"
