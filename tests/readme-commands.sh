#!/bin/bash
# tests/readme-commands.sh — the README's two commands, from a checkout that
# only root can enter (issue 7: the pool and nginx's workers run as nobody
# and must never need to reach the checkout).
#
#   tests/readme-commands.sh run    copies this checkout into a new
#                                   `mktemp -d` under /root (mode 0700), as
#                                   "bulk enroll+run" (a space and a plus:
#                                   unusual but legal); there starts
#                                   `tests/stack.sh run` in the background
#                                   on a free BULK_RUN_PORT, waits for
#                                   /healthz, runs the demo POST exactly as
#                                   `run` printed it (expects 202 or 201),
#                                   `tests/stack.sh stop`, and checks that
#                                   none of the stack's processes is left
#   tests/readme-commands.sh test   copies this checkout into such a
#                                   directory, as "bulk-enroll", and runs
#                                   `tests/stack.sh test` there (.ci/run)
#
# The copy is the working tree as git sees it (tracked and untracked files,
# minus what .gitignore ignores: no build/, no .stack), so uncommitted
# changes are tested too.  Everything is bounded in time; the copy is
# removed at the end (kept, with its path printed, when something failed).
# Exit status 0 only when the check passed.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=/usr/bin/python3
# where the copies go: root's home on Debian, whatever $HOME says
COPY_BASE=/root
RUN_UP_SECONDS=600 # install (none in CI: .ci/run did it), build, stack up
POST_SECONDS=60

say() { printf 'readme-commands: %s\n' "$*" >&2; }
die() { printf 'readme-commands: error: %s\n' "$*" >&2; exit 1; }

# new_root_only_dir: a fresh directory under $COPY_BASE that only root can
# enter, checked from nobody's side (what the pool and nginx's workers are).
new_root_only_dir() {
	local d
	d=$(mktemp -d "$COPY_BASE/bulk-enroll-readme.XXXXXX") || die "mktemp under $COPY_BASE failed"
	chmod 0700 "$d"
	if setpriv --reuid=nobody --regid=nogroup --clear-groups -- test -x "$d"; then
		rm -rf -- "$d"
		die "nobody can enter $d: this check needs a directory only root can enter"
	fi
	printf '%s\n' "$d"
}

# copy_checkout DEST: the working tree as git sees it, into DEST.
copy_checkout() {
	local dest=$1
	mkdir -p "$dest"
	git -c safe.directory="$SRC_DIR" -C "$SRC_DIR" ls-files -z --cached --others --exclude-standard |
		(cd "$SRC_DIR" && while IFS= read -r -d '' f; do
			# a tracked file deleted in the working tree is not copied
			if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
		done) |
		tar -C "$SRC_DIR" --null --no-recursion -T - -cf - | tar -C "$dest" -xf - ||
		die "copying the checkout into $dest failed"
	# A repository (nothing committed), so that git sees the copy as it saw
	# this tree, and a copy made from the copy works the same way.
	git -C "$dest" init -q || die "git init in $dest failed"
}

# session_members SID...: pids of live processes in any of these sessions
# (everything tests/stack.sh starts is a session leader, started by setsid).
# Zombies do not count: an exited orphan waits for init to reap it, and a
# container's init may be slow to, or never do.
session_members() {
	local sid
	for sid in "$@"; do
		ps -e -o pid=,sid=,stat= | awk -v s="$sid" '$2 == s && $3 !~ /^Z/ { print $1 }'
	done
}

cmd_run() {
	local top clone port log runpid stack_dir code i out sids=() pidfile left
	top=$(new_root_only_dir)
	clone="$top/bulk enroll+run"
	copy_checkout "$clone"
	port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
	log=$top/run.log
	say "tests/stack.sh run from $clone (BULK_RUN_PORT=$port)"
	(cd "$clone" && BULK_RUN_PORT=$port exec setsid tests/stack.sh run) </dev/null >"$log" 2>&1 &
	runpid=$!
	# On any failure below: stop what the copy started, keep the copy.
	RUN_CLONE=$clone RUN_PID=$runpid RUN_TOP=$top
	trap 'rc=$?; if [ "$rc" -ne 0 ]; then (cd "$RUN_CLONE" && tests/stack.sh stop) >/dev/null 2>&1 || true;
		kill -KILL -- "-$RUN_PID" 2>/dev/null || true; say "kept for inspection: $RUN_TOP"; fi' EXIT

	for ((i = 0; i < RUN_UP_SECONDS; i++)); do
		grep -q '^bulk-enroll is running' "$log" && break
		kill -0 "$runpid" 2>/dev/null || { tail -n 30 "$log" >&2; die "tests/stack.sh run exited before the stack was up"; }
		sleep 1
	done
	grep -q '^bulk-enroll is running' "$log" ||
		{ tail -n 30 "$log" >&2; die "the stack was not up within $RUN_UP_SECONDS s"; }
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$port/healthz" || true)
	[ "$code" = 200 ] || die "GET /healthz answered $code, not 200"

	# The demo POST exactly as `run` printed it: from its `curl -i -X POST`
	# line to the endpoint's URL, backslash-continued.
	local cmd
	cmd=$(sed -n '/^ *curl -i -X POST/,/enroll_learners_in_courses\/$/p' "$log")
	[ -n "$cmd" ] || die "run printed no demo POST"
	out=$(timeout "$POST_SECONDS" bash -c "${cmd/curl -i/curl -s -i --max-time $POST_SECONDS}") ||
		die "the printed demo POST failed"
	code=$(printf '%s\n' "$out" | head -n 1 | awk '{print $2}')
	case $code in
	201 | 202) say "demo POST answered $code" ;;
	*) printf '%s\n' "$out" >&2; die "the demo POST answered $code, not 202 or 201" ;;
	esac

	# What must be gone after `stop`: every session the stack started.
	stack_dir=$(readlink "$clone/.stack")
	case $stack_dir in
	/tmp/bulk-enroll-run.*) ;;
	*) die "$clone/.stack does not link to a runtime directory under /tmp (it is: '$stack_dir')" ;;
	esac
	for pidfile in nginx/nginx.ours.pid pool/master.pid db/mariadbd.ours.pid receivers/receivers.ours.pid; do
		[ -s "$stack_dir/$pidfile" ] || die "the stack recorded no $pidfile"
		sids+=("$(cat "$stack_dir/$pidfile")")
	done
	sids+=("$runpid")
	(cd "$clone" && timeout 120 tests/stack.sh stop) || die "tests/stack.sh stop failed"
	for ((i = 0; i < 100; i++)); do
		left=$(session_members "${sids[@]}")
		[ -z "$left" ] && break
		sleep 0.1
	done
	if [ -n "$left" ]; then
		ps -o pid,sid,args -p "$(printf '%s\n' "$left" | paste -sd,)" >&2 || true
		die "left running after stop: $(printf '%s\n' "$left" | paste -sd' ')"
	fi
	wait "$runpid" || true
	if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/healthz"; then
		die "something still answers on port $port after stop"
	fi

	trap - EXIT
	rm -rf -- "$top" "$stack_dir"
	say "ok: run, /healthz, demo POST, stop, nothing left (from a directory only root can enter)"
}

cmd_test() {
	local top rc=0
	top=$(new_root_only_dir)
	copy_checkout "$top/bulk-enroll"
	say "tests/stack.sh test from $top/bulk-enroll"
	(cd "$top/bulk-enroll" && tests/stack.sh test) || rc=$?
	if [ "$rc" -eq 0 ]; then
		rm -rf -- "$top"
	else
		say "kept for inspection: $top"
	fi
	return "$rc"
}

[ "$(id -u)" -eq 0 ] || die "run as root (like the README's commands)"
case ${1:-} in
run) cmd_run ;;
test) cmd_test ;;
*)
	sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
