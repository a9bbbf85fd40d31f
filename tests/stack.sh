#!/bin/bash
# tests/stack.sh — the real bulk-enroll stack, for a person and for CI.
#
#   tests/stack.sh run     install what is missing, build, start MariaDB,
#                          the bulk-enrolld pool (spawn-fcgi) and nginx on
#                          127.0.0.1:8080 (BULK_RUN_PORT overrides it), in a
#                          new /tmp/bulk-enroll-run.* directory that ./.stack
#                          links to; print curl commands; stay in the
#                          foreground until Ctrl-C
#   tests/stack.sh stop    stop a stack started by `run` (another terminal)
#   tests/stack.sh test    install, build, `make check`, then the same stack
#                          in a temporary directory on free ports, every
#                          integration test, `run`/`stop` from a copy only
#                          root can enter (tests/readme-commands.sh run), a
#                          sanitizer build's `make check`; every integration
#                          test again on a stack whose database is the full
#                          LMS dump (BULK_LMS_SCHEMA=full); tear down; exit
#                          non-zero if anything failed
#   tests/stack.sh bench   the benchmark (tests/bench/bench.py) on such a
#                          stack without a dispatcher (tests/bench/bench.sh)
#
# Internal commands, used by tests/integration/stack.py on a running stack
# (BULK_STACK_DIR names it): db-stop, db-start, db-kill (SIGKILL, as a crash
# would), pool-stop, pool-start, pool-restart; and `packages`, which prints the package list (.ci/run).
#
# Everything this script starts runs in its own session (setsid) with its pid
# recorded under the stack directory; teardown stops exactly those processes
# (and their process groups), never anything found by name.
#
# A stack never runs out of the checkout: the pool (nobody:nogroup) and
# nginx's workers (nobody) may not be able to enter it (a clone under /root,
# mode 0700).  Each stack lives in its own runtime directory under /tmp
# (mktemp, root, 0711), which holds everything they must reach: a copy of
# the daemon binary (bin/), its configuration and secrets (group nogroup,
# 0640/0750), the FastCGI and MariaDB sockets' directories (0710, group
# nogroup) and nginx's temporary files.  The checkout is never chmod'ed.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BULK_BUILD_DIR:-$SRC_DIR/build}
ASAN_BUILD_DIR=${BULK_ASAN_BUILD_DIR:-$SRC_DIR/build-asan}
# `run` links ./.stack to its runtime directory (stack.py and `stop` find
# the stack through it); set while a `run` stack is being started.
RUN_STACK_LINK=$SRC_DIR/.stack
RUN_STACK_DIR=
# Where stacks' runtime directories go: world-traversable on every Debian.
RUNTIME_BASE=/tmp
# Debian's python3, which has python3-jwt and python3-pymysql, even when a
# pyenv or virtualenv python3 comes first in PATH.
PYTHON=/usr/bin/python3

# The one list of what the stack needs on Debian 12: build dependencies,
# the database, the web server, the FastCGI spawner, the test tools.
PACKAGES=(
	build-essential autoconf automake pkg-config
	libfcgi-dev libyajl-dev libmariadb-dev libmariadb-dev-compat
	libcurl4-openssl-dev libssl-dev libcmocka-dev
	mariadb-server mariadb-client
	nginx-light spawn-fcgi
	python3 python3-jwt python3-pymysql python3-cryptography
	curl ca-certificates util-linux procps valgrind git
)

# Demo enterprise (tests/fixtures/demo.sql) and the JWT the dev stack trusts.
DEMO_ENTERPRISE=e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b
JWT_ISSUER=http://127.0.0.1:8000/oauth2
JWT_AUDIENCE=bulk-enroll-dev

say() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- install

missing_packages() {
	local p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || printf '%s\n' "$p"
	done
}

ensure_packages() {
	local missing
	missing=$(missing_packages)
	[ -z "$missing" ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing packages (run as root to install): $(echo $missing)"
	say "installing: $(echo $missing)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
}

# ---------------------------------------------------------------- build

# build DIR [configure args...]: out-of-tree build; configure only once.
build() {
	local dir=$1
	shift
	if [ ! -x "$SRC_DIR/configure" ]; then
		say "generating configure (autogen.sh)"
		"$SRC_DIR/autogen.sh"
	fi
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ]; then
		say "configuring $dir"
		# configure refuses an absolute source path with a space in it,
		# but takes a relative one.
		local rel
		rel=$(realpath --relative-to="$dir" "$SRC_DIR")
		(cd "$dir" && "$rel/configure" --enable-werror "$@" >configure.out) ||
			{ cat "$dir/configure.out" >&2; die "configure failed in $dir"; }
	fi
	say "building in $dir"
	make -C "$dir" -j2 >"$dir/make.out" 2>&1 ||
		{ tail -n 60 "$dir/make.out" >&2; die "build failed in $dir (log: $dir/make.out)"; }
}

# unit_counts DIR: after `make check`, prints "PASSED FAILED", counting the
# cmocka cases inside each test program's log (a program whose log has no
# cmocka summary, e.g. a crash or a data-driven script, counts as one).
unit_counts() {
	local dir=$1 passed=0 failed=0 trs log p f result
	while IFS= read -r trs; do
		log=${trs%.trs}.log
		p=$(grep -Eo '^\[  PASSED  \] [0-9]+ test' "$log" 2>/dev/null | awk '{s+=$4} END {print s+0}' || true)
		f=$(grep -Eo '^\[  FAILED  \] [0-9]+ test' "$log" 2>/dev/null | awk '{s+=$4} END {print s+0}' || true)
		result=$(sed -n 's/^:test-result: //p' "$trs" | head -n 1)
		if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
			case $result in
			PASS | XFAIL) p=1 ;;
			SKIP) ;;
			*) f=1 ;;
			esac
		elif [ "$result" != PASS ] && [ "$f" -eq 0 ]; then
			f=1 # the cases passed but the program failed (leak, exit code)
		fi
		passed=$((passed + p))
		failed=$((failed + f))
	done < <(find "$dir" -name '*.trs' | sort)
	echo "$passed $failed"
}

# make_check DIR LABEL [MAKE ARGS...]: runs `make check` and records its
# counts in the global SUMMARY lines and totals.
make_check() {
	local dir=$1 label=$2 rc=0 counts
	shift 2
	find "$dir" -name '*.trs' -delete
	say "make check ($label)"
	# tests/db/* use the stack's MariaDB (a database and an account of their
	# own, over the socket) when one is up, and skip (exit 77) otherwise.
	# Their account (db_accounts) gets its password through MYSQL_PWD, which
	# Connector/C and the mariadb client read when none is given.
	if [ -n "${BULK_DB_SOCKET:-}" ] && [ -S "$BULK_DB_SOCKET" ]; then
		BULK_TEST_DB_SOCKET=$BULK_DB_SOCKET BULK_TEST_DB_NAME=$BULK_TEST_DB_NAME \
			BULK_TEST_DB_USER=$BULK_TEST_DB_USER MYSQL_PWD=$BULK_TEST_DB_PASSWORD \
			make -C "$dir" -j2 check "$@" >"$dir/check.out" 2>&1 || rc=$?
	else
		make -C "$dir" -j2 check "$@" >"$dir/check.out" 2>&1 || rc=$?
	fi
	counts=$(unit_counts "$dir")
	if [ "$rc" -ne 0 ]; then
		grep -E '^(FAIL|ERROR|XPASS):' "$dir/check.out" >&2 || tail -n 40 "$dir/check.out" >&2
		[ -f "$dir/test-suite.log" ] && say "details: $dir/test-suite.log"
		# make failed but no case was counted failed: count the run as one failure
		[ "${counts#* }" -eq 0 ] && counts="${counts% *} 1"
	fi
	record "$label" ${counts}
}

TOTAL_PASSED=0
TOTAL_FAILED=0
SUMMARY=()
record() {
	SUMMARY+=("$1: $2 passed, $3 failed")
	TOTAL_PASSED=$((TOTAL_PASSED + $2))
	TOTAL_FAILED=$((TOTAL_FAILED + $3))
}

# ---------------------------------------------------------------- helpers

free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# shell_quote STRING: STRING in single quotes, for stack.env (read by the
# shell and by stack.py, with shlex).
shell_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# as_pool_user COMMAND...: runs COMMAND as the pool and nginx's workers do
# (nobody:nogroup, no other groups), to check what they can reach.
as_pool_user() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }

# new_runtime_dir KIND: creates and prints a fresh runtime directory,
# $RUNTIME_BASE/bulk-enroll-KIND.XXXXXX (root, 0711: the unprivileged
# processes may pass through it, not list it).
new_runtime_dir() {
	local dir
	dir=$(mktemp -d "$RUNTIME_BASE/bulk-enroll-$1.XXXXXX") || die "mktemp in $RUNTIME_BASE failed"
	chmod 0711 "$dir"
	printf '%s\n' "$dir"
}

# runtime_subdir DIR: a directory of the stack that only root and group
# nogroup (the pool, nginx's workers) may pass through, not list.
runtime_subdir() {
	mkdir -p "$1"
	chown root:nogroup "$1"
	chmod 0710 "$1"
}

# stop_pid PIDFILE SIGNAL SECONDS: signals the process, waits for it to go,
# then SIGKILLs whatever is left of its process group (it is a session
# leader, started with setsid, so the group is exactly what we started).
stop_pid() {
	local pidfile=$1 sig=$2 secs=$3 pid i
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if alive "$pid"; then
		kill "-$sig" "$pid" 2>/dev/null || true
		for ((i = 0; i < secs * 10; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
	fi
	kill -KILL -- "-$pid" 2>/dev/null || true
	rm -f "$pidfile"
}

load_env() {
	local dir=$1
	[ -f "$dir/stack.env" ] || die "no stack in $dir (stack.env missing)"
	set -a
	# shellcheck disable=SC1091
	. "$dir/stack.env"
	set +a
}

# ---------------------------------------------------------------- MariaDB

db_client() {
	mariadb --no-defaults --socket="$BULK_DB_SOCKET" -uroot "$@"
}

db_start() {
	local d=$BULK_STACK_DIR/db i
	# the daemon (nobody:nogroup) connects to the socket in here
	runtime_subdir "$d"
	if [ ! -d "$d/data/mysql" ]; then
		# --skip-name-resolve --force: a fresh root may have no /etc/hosts,
		# and the install script refuses to run when it cannot resolve the
		# host name; the grants it writes are for the socket anyway.
		mariadb-install-db --no-defaults --datadir="$d/data" --user=root \
			--auth-root-authentication-method=socket --skip-test-db \
			--skip-name-resolve --force >"$d/install.log" 2>&1 ||
			{ cat "$d/install.log" >&2; die "mariadb-install-db failed"; }
	fi
	rm -f "$BULK_DB_SOCKET"
	setsid mariadbd --no-defaults --datadir="$d/data" --socket="$BULK_DB_SOCKET" \
		--port="$BULK_DB_PORT" --bind-address=127.0.0.1 --user=root --skip-log-bin \
		--pid-file="$d/mariadbd.pid" --log-error="$d/mariadbd.err" \
		--skip-name-resolve --innodb-buffer-pool-size=64M \
		--innodb-flush-log-at-trx-commit=2 ${BULK_BENCH_MARIADBD_ARGS:-} \
		</dev/null >/dev/null 2>&1 &
	echo $! >"$d/mariadbd.ours.pid"
	for ((i = 0; i < 300; i++)); do
		if [ -S "$BULK_DB_SOCKET" ] &&
			mariadb-admin --no-defaults --socket="$BULK_DB_SOCKET" -uroot ping >/dev/null 2>&1; then
			return 0
		fi
		alive "$(cat "$d/mariadbd.ours.pid")" || break
		sleep 0.1
	done
	tail -n 30 "$d/mariadbd.err" >&2 || true
	die "MariaDB did not start (log: $d/mariadbd.err)"
}

db_stop() {
	stop_pid "$BULK_STACK_DIR/db/mariadbd.ours.pid" TERM 60
}

# db_kill: SIGKILL of the recorded mariadbd, as a crash would end it (no
# shutdown, no flush); returns once it is gone.  db-start recovers it.
db_kill() {
	local pidfile=$BULK_STACK_DIR/db/mariadbd.ours.pid pid i
	[ -f "$pidfile" ] || die "no MariaDB pid recorded in $pidfile"
	pid=$(cat "$pidfile")
	alive "$pid" || die "MariaDB (pid $pid) is not running"
	kill -KILL "$pid"
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	rm -f "$pidfile"
}

# db_accounts: the databases (utf8, as the LMS's is created), and one account per kind of client, each with
# only what it needs (none has a global privilege, so `SET GLOBAL read_only
# = 1` binds them all; root, over the socket, is for migrations, schema
# loads and fault tests):
#   BULK_DB_USER          the daemon, as in production: SELECT, INSERT,
#                         UPDATE, DELETE on the LMS database, nothing else
#   BULK_DB_HARNESS_USER  the integration tests' own connections
#                         (stack.db(): fixtures, TRUNCATE, LOCK TABLES): all
#                         privileges on the LMS database
#   BULK_TEST_DB_USER     tests/db: all privileges on their own database only
db_accounts() {
	db_client <<-SQL
		CREATE DATABASE IF NOT EXISTS \`$BULK_DB_NAME\` CHARACTER SET utf8 COLLATE utf8_general_ci;
		CREATE DATABASE IF NOT EXISTS \`$BULK_TEST_DB_NAME\` CHARACTER SET utf8 COLLATE utf8_general_ci;
		CREATE USER IF NOT EXISTS '$BULK_DB_USER'@'localhost' IDENTIFIED BY '$BULK_DB_PASSWORD';
		CREATE USER IF NOT EXISTS '$BULK_DB_USER'@'127.0.0.1' IDENTIFIED BY '$BULK_DB_PASSWORD';
		GRANT SELECT, INSERT, UPDATE, DELETE ON \`$BULK_DB_NAME\`.* TO '$BULK_DB_USER'@'localhost';
		GRANT SELECT, INSERT, UPDATE, DELETE ON \`$BULK_DB_NAME\`.* TO '$BULK_DB_USER'@'127.0.0.1';
		CREATE USER IF NOT EXISTS '$BULK_DB_HARNESS_USER'@'localhost' IDENTIFIED BY '$BULK_DB_HARNESS_PASSWORD';
		GRANT ALL PRIVILEGES ON \`$BULK_DB_NAME\`.* TO '$BULK_DB_HARNESS_USER'@'localhost';
		CREATE USER IF NOT EXISTS '$BULK_TEST_DB_USER'@'localhost' IDENTIFIED BY '$BULK_TEST_DB_PASSWORD';
		GRANT ALL PRIVILEGES ON \`$BULK_TEST_DB_NAME\`.* TO '$BULK_TEST_DB_USER'@'localhost';
	SQL
}

# Creates the databases and accounts (db_accounts); loads the LMS tables as
# root over the socket: the real DDL from tests/fixtures/lms/ (never a
# migration: production has these tables already), the 33-table stand-in
# or, with BULK_LMS_SCHEMA=full, the whole LMS dump; then applies our own
# migrations in sql/ in lexical order (twice in test mode: each must be safe
# to apply again), empties the tables the service writes and loads the demo
# data.  Records the schema in stack.env.
db_init() {
	local passes=$1 f pass schema
	case ${BULK_LMS_SCHEMA:-tables} in
	tables) schema=$SRC_DIR/tests/fixtures/lms/lms-tables.sql ;;
	full) schema=$SRC_DIR/tests/fixtures/lms/lms-full.sql ;;
	*) die "BULK_LMS_SCHEMA must be tables or full, not ${BULK_LMS_SCHEMA}" ;;
	esac
	db_accounts || die "creating the databases and accounts failed"
	db_client "$BULK_DB_NAME" <"$schema" || die "loading the LMS tables ($(basename "$schema")) failed"
	grep -q '^BULK_LMS_SCHEMA=' "$BULK_STACK_DIR/stack.env" ||
		echo "BULK_LMS_SCHEMA=${BULK_LMS_SCHEMA:-tables}" >>"$BULK_STACK_DIR/stack.env"
	shopt -s nullglob
	local migrations=("$SRC_DIR"/sql/*.sql)
	shopt -u nullglob
	[ ${#migrations[@]} -gt 0 ] || say "warning: no migrations in $SRC_DIR/sql"
	for ((pass = 1; pass <= passes; pass++)); do
		for f in "${migrations[@]}"; do
			db_client "$BULK_DB_NAME" <"$f" ||
				die "migration $(basename "$f") failed (pass $pass)"
		done
	done
	for f in empty demo; do
		db_client "$BULK_DB_NAME" <"$SRC_DIR/tests/fixtures/$f.sql" ||
			die "tests/fixtures/$f.sql failed"
	done
}

# ---------------------------------------------------------------- the pool

# pool_start: spawn-fcgi binds the FastCGI socket (owned by nobody:nogroup,
# 0660, so nginx's workers can connect and nobody else), drops to
# nobody:nogroup and execs bulk-enrolld in the foreground (-n), so the pid
# we record is the master's.  A wrapper subshell waits for the master and
# writes its exit status, which the SIGTERM test reads.  Extra BULK_ENROLL_*
# variables in the environment reach the daemon (stack.py restart_pool).
# The daemon runs from its copy in the stack's bin/, installed afresh from
# the build at every start (so a restart runs what was last built).
pool_start() {
	local d=$BULK_STACK_DIR/pool i
	runtime_subdir "$d"
	install_daemon
	rm -f "$BULK_FCGI_SOCKET" "$d/master.pid" "$d/exit-status"
	(
		setsid spawn-fcgi -n -s "$BULK_FCGI_SOCKET" -M 0660 -U nobody -G nogroup \
			-u nobody -g nogroup -- "$BULK_DAEMON" --config "$BULK_CONFIG" \
			</dev/null >>"$BULK_DAEMON_LOG" 2>&1 &
		pid=$!
		echo "$pid" >"$d/master.pid"
		rc=0
		wait "$pid" || rc=$?
		echo "$rc" >"$d/exit-status"
	) </dev/null >/dev/null 2>&1 &
	for ((i = 0; i < 50; i++)); do
		[ -s "$d/master.pid" ] && [ -S "$BULK_FCGI_SOCKET" ] && return 0
		[ -f "$d/exit-status" ] && break
		sleep 0.1
	done
	tail -n 30 "$BULK_DAEMON_LOG" >&2 || true
	die "bulk-enrolld did not start (log: $BULK_DAEMON_LOG)"
}

# install_daemon: copies the built daemon to $BULK_DAEMON (the stack's
# bin/), where the pool's user can run it wherever the checkout is.
install_daemon() {
	[ -x "$BULK_BUILT_DAEMON" ] || die "$BULK_BUILT_DAEMON was not built"
	mkdir -p "${BULK_DAEMON%/*}"
	chmod 0711 "${BULK_DAEMON%/*}"
	install -m 0755 "$BULK_BUILT_DAEMON" "$BULK_DAEMON" ||
		die "cannot install $BULK_BUILT_DAEMON as $BULK_DAEMON"
}

# pool_stop: SIGTERM (drain), then SIGKILL of the whole group after 20 s.
pool_stop() {
	local d=$BULK_STACK_DIR/pool i
	[ -f "$d/master.pid" ] || return 0
	cp "$d/master.pid" "$d/master.pid.stopping"
	stop_pid "$d/master.pid.stopping" TERM 20
	# let the wrapper record the exit status before the next start
	for ((i = 0; i < 20; i++)); do
		[ -f "$d/exit-status" ] && break
		sleep 0.1
	done
	rm -f "$d/master.pid"
}

# ---------------------------------------------------------------- nginx

write_nginx_conf() {
	local d=$BULK_STACK_DIR/nginx
	# nginx's workers (nobody) pass through to their temporary files
	runtime_subdir "$d"
	runtime_subdir "$d/tmp"
	cp /etc/nginx/fastcgi_params "$d/fastcgi_params"
	# the snippet exactly as shipped, pointed at this stack's socket
	sed "s#unix:/run/bulk-enroll/fcgi.sock#unix:$BULK_FCGI_SOCKET#g" \
		"$SRC_DIR/nginx/bulk-enroll.conf" >"$d/bulk-enroll.conf"
	cat >"$d/nginx.conf" <<-EOF
		# generated by tests/stack.sh
		user nobody nogroup;
		worker_processes 2;
		daemon off;
		pid $d/nginx.pid;
		error_log $d/error.log info;
		events { worker_connections 512; }
		http {
		    default_type application/octet-stream;
		    log_format bulk '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent '
		                    'rid=\$bulk_enroll_request_id rt=\$request_time urt=\$upstream_response_time';
		    access_log $d/access.log bulk;
		    client_body_temp_path $d/tmp/client_body;
		    fastcgi_temp_path $d/tmp/fastcgi;
		    proxy_temp_path $d/tmp/proxy;
		    uwsgi_temp_path $d/tmp/uwsgi;
		    scgi_temp_path $d/tmp/scgi;
		    server_tokens off;
		    server {
		        listen 127.0.0.1:$BULK_HTTP_PORT;
		        server_name localhost;
		        include $d/bulk-enroll.conf;
		        # not this service's: still a JSON answer
		        location / {
		            default_type application/json;
		            return 404 '{"detail": "Not found."}';
		        }
		    }
		}
	EOF
}

nginx_start() {
	local d=$BULK_STACK_DIR/nginx
	nginx -t -q -c "$d/nginx.conf" -p "$d" 2>"$d/configtest.out" ||
		{ cat "$d/configtest.out" >&2; die "nginx configuration test failed"; }
	setsid nginx -c "$d/nginx.conf" -p "$d" </dev/null >>"$d/error.log" 2>&1 &
	echo $! >"$d/nginx.ours.pid"
}

nginx_stop() {
	stop_pid "$BULK_STACK_DIR/nginx/nginx.ours.pid" QUIT 10
}

# wait_healthy SECONDS: until nginx → pool → MariaDB answers /healthz 200.
wait_healthy() {
	local secs=$1 i code
	for ((i = 0; i < secs * 5; i++)); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BULK_URL/healthz" || true)
		[ "$code" = 200 ] && return 0
		sleep 0.2
	done
	say "GET /healthz never answered 200 (last: $code)"
	tail -n 20 "$BULK_DAEMON_LOG" >&2 || true
	tail -n 10 "$BULK_STACK_DIR/nginx/error.log" >&2 || true
	return 1
}

# ---------------------------------------------------------------- the stack

# stack_up DIR HTTP_PORT MODE: everything from an empty directory.
stack_up() {
	local dir=$1 http_port=$2 mode=$3 max_body passes
	# Only stack.env names the checkout (quoted); everything the stack's
	# processes are configured with lies under $dir (mktemp: plain names).
	case $SRC_DIR$BUILD_DIR in *$'\n'*) die "the checkout's path must not contain a newline" ;; esac
	# The runtime directory (new_runtime_dir: root, 0711): nginx's workers
	# (nobody) must reach the FastCGI socket; the daemon (nobody:nogroup)
	# runs its copy in bin/ and reads its configuration and secrets through
	# group nogroup.
	chmod 0711 "$dir"
	runtime_subdir "$dir/pool"
	mkdir -p "$dir/secrets"
	chown root:nogroup "$dir/secrets"
	chmod 0750 "$dir/secrets"
	local log_level=debug dispatchers=1
	if [ "$mode" = test ]; then
		max_body=1048576 # small, so the 413 test stays quick; nginx allows 32m
		passes=2
	else
		max_body=33554432
		passes=1
	fi
	if [ "$mode" = bench ]; then
		# The benchmark measures the request path: no dispatcher competing
		# for the two cores (the outbox rows are written all the same), and
		# no per-request debug lines.
		log_level=info
		dispatchers=0
	fi
	cat >"$dir/stack.env" <<-EOF
		BULK_STACK_DIR=$dir
		BULK_SRC_DIR=$(shell_quote "$SRC_DIR")
		BULK_MODE=$mode
		BULK_URL=http://127.0.0.1:$http_port
		BULK_HTTP_PORT=$http_port
		BULK_DB_SOCKET=$dir/db/mysqld.sock
		BULK_DB_PORT=$(free_port)
		BULK_DB_NAME=edxapp
		BULK_TEST_DB_NAME=edxapp_test
		BULK_DB_USER=bulk_enroll
		BULK_DB_PASSWORD=$(random_hex 12)
		BULK_DB_HARNESS_USER=bulk_enroll_harness
		BULK_DB_HARNESS_PASSWORD=$(random_hex 12)
		BULK_TEST_DB_USER=bulk_enroll_dbtest
		BULK_TEST_DB_PASSWORD=$(random_hex 12)
		BULK_JWT_ISSUER=$JWT_ISSUER
		BULK_JWT_AUDIENCE=$JWT_AUDIENCE
		BULK_JWT_SECRET=$(random_hex 24)
		BULK_MAX_BODY_BYTES=$max_body
		BULK_WORKERS=2
		BULK_ORDER_PORT=$(free_port)
		BULK_SMTP_PORT=$(free_port)
		BULK_BUILT_DAEMON=$(shell_quote "$BUILD_DIR/src/bulk-enrolld")
		BULK_DAEMON=$dir/bin/bulk-enrolld
		BULK_CONFIG=$dir/bulk-enroll.conf
		BULK_DAEMON_LOG=$dir/pool/bulk-enrolld.log
		BULK_FCGI_SOCKET=$dir/pool/fcgi.sock
		BULK_DEMO_ENTERPRISE=$DEMO_ENTERPRISE
	EOF
	chmod 0600 "$dir/stack.env"
	load_env "$dir"

	printf '%s' "$BULK_DB_PASSWORD" >"$dir/secrets/db-password"
	printf '%s' "$BULK_JWT_SECRET" >"$dir/secrets/jwt-secret"
	printf '%s' "dev-order-token-$(random_hex 8)" >"$dir/secrets/order-token"
	cat >"$BULK_CONFIG" <<-EOF
		# bulk-enrolld configuration generated by tests/stack.sh ($mode stack)
		workers = $BULK_WORKERS
		db.socket = $BULK_DB_SOCKET
		db.user = $BULK_DB_USER
		db.password_file = $dir/secrets/db-password
		db.name = $BULK_DB_NAME
		jwt.issuer = $BULK_JWT_ISSUER
		jwt.audience = $BULK_JWT_AUDIENCE
		jwt.secret_file = $dir/secrets/jwt-secret
		# side effects go to local receivers (tests start them on these ports)
		order.url = http://127.0.0.1:$BULK_ORDER_PORT
		order.token_file = $dir/secrets/order-token
		mail.url = smtp://127.0.0.1:$BULK_SMTP_PORT
		mail.from = bulk-enroll@example.com
		mail.lms_root_url = http://localhost:18000
		mail.learner_portal_url = http://localhost:8734
		outbox.retry_base_ms = 200
		outbox.dispatchers = $dispatchers
		limits.max_body_bytes = $max_body
		log.level = $log_level
	EOF
	chown root:nogroup "$BULK_CONFIG" "$dir"/secrets/*
	chmod 0640 "$BULK_CONFIG" "$dir"/secrets/*

	install_daemon

	say "starting MariaDB in $dir/db"
	db_start
	db_init "$passes"
	# --check-config connects to the database and checks its schema
	# (src/schema.h), so it runs once the database is there; as the pool
	# will run: as nobody:nogroup, from the stack's copy.
	as_pool_user "$BULK_DAEMON" --config "$BULK_CONFIG" --check-config >"$dir/check-config.out" 2>&1 ||
		{ cat "$dir/check-config.out" >&2; die "bulk-enrolld --check-config, run as nobody:nogroup, refused the configuration or the database"; }
	say "starting bulk-enrolld (spawn-fcgi, $BULK_WORKERS responders)"
	pool_start
	as_pool_user test -w "$BULK_FCGI_SOCKET" ||
		die "nginx's workers (nobody) cannot reach $BULK_FCGI_SOCKET"
	say "starting nginx on 127.0.0.1:$BULK_HTTP_PORT"
	write_nginx_conf
	nginx_start
	wait_healthy 30
}

# stack_down DIR: stops what the stack started, in reverse order; safe to
# call twice or on a half-built stack.
stack_down() {
	local dir=$1
	[ -f "$dir/stack.env" ] || return 0
	load_env "$dir"
	nginx_stop
	pool_stop
	receivers_stop
	db_stop
}

# The dev stack's stand-ins for the order service and the mail server
# (tests/integration/receivers.py), so the dispatcher's deliveries can be
# watched in receivers.log.  The test stack starts its own per test.
receivers_start() {
	local d=$BULK_STACK_DIR/receivers
	mkdir -p "$d"
	setsid "$PYTHON" "$SRC_DIR/tests/integration/receivers.py" --order-port "$BULK_ORDER_PORT" \
		--smtp-port "$BULK_SMTP_PORT" </dev/null >>"$d/receivers.log" 2>&1 &
	echo $! >"$d/receivers.ours.pid"
}

receivers_stop() {
	stop_pid "$BULK_STACK_DIR/receivers/receivers.ours.pid" TERM 10
}

# A token the dev stack accepts, valid for a day, for the printed curl.
dev_token() {
	"$PYTHON" - <<-'EOF'
		import os, time, jwt
		now = int(time.time())
		print(jwt.encode({"iss": os.environ["BULK_JWT_ISSUER"], "aud": os.environ["BULK_JWT_AUDIENCE"],
		                  "iat": now, "exp": now + 86400, "preferred_username": "ops",
		                  "administrator": True, "roles": ["enterprise_openedx_operator:*"]},
		                 os.environ["BULK_JWT_SECRET"], algorithm="HS256"))
	EOF
}

# A request body made of the demo data actually loaded: two existing
# learners and one unknown e-mail (a pending enrollment) in one course.
demo_body() {
	local course emails
	# an open, paid (verified) run, so the enrollments also make orders
	course=$(db_client -N -B "$BULK_DB_NAME" -e \
		"SELECT c.id FROM course_overviews_courseoverview c
		 JOIN course_modes_coursemode m ON m.course_id = c.id AND m.mode_slug = 'verified'
		 WHERE c.invitation_only = 0
		   AND (c.enrollment_end IS NULL OR c.enrollment_end > UTC_TIMESTAMP())
		 ORDER BY c.id LIMIT 1" 2>/dev/null || true)
	[ -n "$course" ] || course=$(db_client -N -B "$BULK_DB_NAME" -e \
		"SELECT id FROM course_overviews_courseoverview ORDER BY id LIMIT 1" 2>/dev/null || true)
	emails=$(db_client -N -B "$BULK_DB_NAME" -e \
		"SELECT email FROM auth_user WHERE is_active = 1 AND is_staff = 0 ORDER BY id LIMIT 2" \
		2>/dev/null || true)
	COURSE=${course:-course-v1:edX+DemoX+Demo_Course} EMAILS=$emails "$PYTHON" - <<-'EOF'
		import json, os, uuid
		emails = [e for e in os.environ["EMAILS"].split("\n") if e] + ["new.learner@example.com"]
		print(json.dumps({"enrollments_info": [
		    {"email": e, "course_run_key": os.environ["COURSE"], "license_uuid": str(uuid.uuid4())}
		    for e in emails], "notify": True}))
	EOF
}

print_instructions() {
	local token body
	token=$(dev_token)
	body=$(demo_body)
	cat <<-EOF

		bulk-enroll is running: nginx on $BULK_URL → bulk-enrolld ($BULK_WORKERS responders) → MariaDB
		  stack directory: $BULK_STACK_DIR
		  daemon log:      $BULK_DAEMON_LOG
		  nginx logs:      $BULK_STACK_DIR/nginx/{access,error}.log
		  deliveries:      $BULK_STACK_DIR/receivers/receivers.log (orders and e-mails the dispatcher sent)
		  database:        mariadb --socket=$BULK_DB_SOCKET -uroot $BULK_DB_NAME

		Health:
		  curl -i $BULK_URL/healthz

		Enroll the demo learners (token valid for 24 hours):
		  curl -i -X POST \\
		    -H 'Authorization: JWT $token' \\
		    -H 'Content-Type: application/json' \\
		    --data '$body' \\
		    $BULK_URL/enterprise/api/v1/enterprise-customer/$BULK_DEMO_ENTERPRISE/enroll_learners_in_courses/

		Stop: Ctrl-C here, or \`tests/stack.sh stop\` from another terminal.
	EOF
}

# ---------------------------------------------------------------- commands

# run_stack_dir: the runtime directory of this checkout's `run` stack (where
# ./.stack links to; a .stack directory of an older layout counts too), or
# nothing.
run_stack_dir() {
	if [ -L "$RUN_STACK_LINK" ]; then
		readlink "$RUN_STACK_LINK"
	elif [ -d "$RUN_STACK_LINK" ]; then
		printf '%s\n' "$RUN_STACK_LINK"
	fi
}

# forget_run_stack: stops what is left of the previous `run` stack and
# removes its directory and the link (only a directory `run` made).
forget_run_stack() {
	local old
	old=$(run_stack_dir)
	if [ -n "$old" ]; then
		stack_down "$old" 2>/dev/null || true
		case $old in
		"$RUNTIME_BASE"/bulk-enroll-run.* | "$RUN_STACK_LINK") rm -rf -- "$old" ;;
		esac
	fi
	rm -rf -- "$RUN_STACK_LINK"
}

cmd_run() {
	[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and runs nginx)"
	local old
	old=$(run_stack_dir)
	if [ -n "$old" ] && [ -f "$old/run.pid" ] && alive "$(cat "$old/run.pid")"; then
		die "a stack is already running (pid $(cat "$old/run.pid")); stop it with: tests/stack.sh stop"
	fi
	ensure_packages
	build "$BUILD_DIR"
	forget_run_stack
	RUN_STACK_DIR=$(new_runtime_dir run)
	ln -s "$RUN_STACK_DIR" "$RUN_STACK_LINK"
	echo $$ >"$RUN_STACK_DIR/run.pid"
	trap 'trap - INT TERM EXIT; say "stopping"; stack_down "$RUN_STACK_DIR"; rm -f "$RUN_STACK_DIR/run.pid"; exit 0' INT TERM
	trap 'stack_down "$RUN_STACK_DIR"; rm -f "$RUN_STACK_DIR/run.pid"' EXIT
	stack_up "$RUN_STACK_DIR" "${BULK_RUN_PORT:-8080}" run ||
		die "the stack did not come up; see the logs under $RUN_STACK_DIR"
	receivers_start
	print_instructions
	# Stay in the foreground; `wait` lets the traps run at once.
	while true; do
		sleep 1 &
		wait $! || true
		alive "$(cat "$BULK_STACK_DIR/nginx/nginx.ours.pid" 2>/dev/null)" ||
			{ say "nginx exited; stopping"; exit 1; }
	done
}

cmd_stop() {
	local dir i pid
	dir=$(run_stack_dir)
	[ -n "$dir" ] || { say "no stack to stop ($RUN_STACK_LINK does not exist)"; return 0; }
	if [ -f "$dir/run.pid" ]; then
		pid=$(cat "$dir/run.pid")
		if alive "$pid"; then
			kill -TERM "$pid"
			for ((i = 0; i < 300; i++)); do
				alive "$pid" || break
				sleep 0.1
			done
		fi
	fi
	# whatever is left (the run script was killed hard, say)
	stack_down "$dir"
	rm -f "$dir/run.pid"
	say "stopped"
}

# integration_pass DIR UP LABEL: the integration suite on the stack in DIR
# (loaded with load_env; UP is its set-up's exit status), recorded as LABEL.
integration_pass() {
	local dir=$1 up=$2 label=$3 rc=0
	if [ "$up" -eq 0 ]; then
		say "$label tests"
		(cd "$SRC_DIR" && "$PYTHON" tests/integration/run.py --reset \
			--summary "$dir/integration.counts") || rc=$?
		if [ -f "$dir/integration.counts" ]; then
			record "$label" $(cat "$dir/integration.counts")
		else
			record "$label" 0 1
		fi
	else
		record "$label (stack set-up)" 0 1
	fi
	if [ "$rc" -ne 0 ] || [ "$up" -ne 0 ]; then
		tail -n 40 "$BULK_DAEMON_LOG" 2>/dev/null | sed 's/^/  daemon: /' >&2 || true
	fi
}

# keep_or_remove DIR: a stopped stack's files stay when something failed.
keep_or_remove() {
	if [ "$TOTAL_FAILED" -eq 0 ]; then
		rm -rf "$1"
	else
		say "stack files kept for inspection: $1"
	fi
}

cmd_test() {
	[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and runs nginx)"
	local started=$SECONDS dir up sanitizers=${BULK_STACK_SANITIZERS:-1}
	ensure_packages
	build "$BUILD_DIR"
	[ "$sanitizers" = 0 ] || build "$ASAN_BUILD_DIR" --enable-sanitizers

	dir=$(new_runtime_dir stack)
	STACK_DIR_FOR_TRAP=$dir
	trap 'stack_down "$STACK_DIR_FOR_TRAP"' EXIT
	trap 'exit 130' INT TERM
	# In a subshell so that a failed set-up (die) is counted, not fatal;
	# set +e around it keeps errexit working inside the subshell.
	set +e
	(stack_up "$dir" "$(free_port)" test)
	up=$?
	set -e
	load_env "$dir"

	# Unit and data-driven tests (and tests/db, on the stack's MariaDB).
	make_check "$BUILD_DIR" "unit"

	integration_pass "$dir" "$up" "integration"

	# Every link in the Markdown resolves inside the repository.
	if "$PYTHON" "$SRC_DIR/tests/check-links.py" >"$dir/links.out" 2>&1; then
		record "docs links" 1 0
	else
		sed 's/^/  docs links: /' "$dir/links.out" >&2
		record "docs links" 0 1
	fi

	# The README's `run` and `stop`, from a copy of this checkout that only
	# root can enter, in a clean environment (none of this stack's BULK_*).
	say "readme commands: run, demo POST, stop, from a directory only root can enter"
	if env -i PATH="$PATH" HOME="${HOME:-/root}" LANG=C.UTF-8 \
		"$SRC_DIR/tests/readme-commands.sh" run >"$dir/readme-run.out" 2>&1; then
		record "readme run" 1 0
	else
		tail -n 30 "$dir/readme-run.out" | sed 's/^/  readme run: /' >&2
		record "readme run" 0 1
	fi

	[ "$sanitizers" = 0 ] || make_check "$ASAN_BUILD_DIR" "unit (ASan+UBSan)"
	# The same unit tests under valgrind: leaks and uninitialised reads
	# that ASan does not see.
	[ "$sanitizers" = 0 ] || make_check "$BUILD_DIR" "unit (valgrind)" \
		LOG_COMPILER=valgrind \
		AM_LOG_FLAGS="-q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite"
	stack_down "$dir"
	keep_or_remove "$dir"

	# The same integration suite on a complete LMS database (the full
	# dump + our migration + the demo data), one stack at a time.
	dir=$(new_runtime_dir stack-full)
	STACK_DIR_FOR_TRAP=$dir
	set +e
	(BULK_LMS_SCHEMA=full stack_up "$dir" "$(free_port)" test)
	up=$?
	set -e
	load_env "$dir"
	integration_pass "$dir" "$up" "integration (full LMS dump)"
	stack_down "$dir"
	keep_or_remove "$dir"

	printf '%s\n' "${SUMMARY[@]}"
	say "took $((SECONDS - started)) s"
	echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
	[ "$TOTAL_FAILED" -eq 0 ]
}

# bench [bench.py options]: tests/bench/bench.py against a throwaway stack
# (or, with BULK_STACK_DIR, against that running stack; its data is reset).
cmd_bench() {
	[ "$(id -u)" -eq 0 ] || die "run as root (MariaDB and nginx are started as for the tests)"
	local dir rc=0
	if [ -n "${BULK_STACK_DIR:-}" ]; then
		[ -f "$BULK_STACK_DIR/stack.env" ] || die "no stack.env in $BULK_STACK_DIR"
		load_env "$BULK_STACK_DIR"
		say "benchmarking the running stack in $BULK_STACK_DIR (its data is reset)"
		"$PYTHON" "$SRC_DIR/tests/bench/bench.py" --reset "$@" || rc=$?
		return "$rc"
	fi
	ensure_packages
	build "$BUILD_DIR"
	dir=$(new_runtime_dir bench)
	STACK_DIR_FOR_TRAP=$dir
	trap 'stack_down "$STACK_DIR_FOR_TRAP"; [ "${BULK_BENCH_KEEP:-0}" = 1 ] || rm -rf "$STACK_DIR_FOR_TRAP"' EXIT
	trap 'exit 130' INT TERM
	stack_up "$dir" "$(free_port)" bench || die "the stack did not come up; see the logs under $dir"
	"$PYTHON" "$SRC_DIR/tests/bench/bench.py" --reset "$@" || rc=$?
	[ "${BULK_BENCH_KEEP:-0}" = 1 ] && say "stack files kept: $dir"
	return "$rc"
}

# Internal commands on an existing stack (BULK_STACK_DIR).
internal() {
	[ -n "${BULK_STACK_DIR:-}" ] || die "BULK_STACK_DIR is not set"
	load_env "$BULK_STACK_DIR"
	case $1 in
	db-stop) db_stop ;;
	db-start) db_start ;;
	db-kill) db_kill ;;
	pool-stop) pool_stop ;;
	pool-start) pool_start && wait_healthy 30 ;;
	pool-restart) pool_stop && pool_start && wait_healthy 30 ;;
	esac
}

case ${1:-} in
run) cmd_run ;;
stop) cmd_stop ;;
test) cmd_test ;;
bench)
	shift
	cmd_bench "$@"
	;;
packages) echo "${PACKAGES[*]}" ;;
db-stop | db-start | db-kill | pool-stop | pool-start | pool-restart) internal "$1" ;;
*)
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
