#!/bin/bash
# tests/bench/bench.sh — how fast the enrollment endpoint is, end to end:
# the figures B1-B4 of issue 9, both sides of every ratio from one run.
#
#   tests/bench/bench.sh [bench.py options]     e.g. --only B1,B2
#
# Runs `tests/stack.sh bench`: the same stack as the tests (MariaDB, the
# bulk-enrolld pool of 2 responders under spawn-fcgi, nginx with the shipped
# snippet) in a temporary directory on free loopback ports, without a
# dispatcher, with MariaDB durable (innodb_flush_log_at_trx_commit=1, the
# production setting; the test stack uses 2), then tests/bench/bench.py
# against it; tears everything down and exits.  Nothing listens beyond
# 127.0.0.1; every loop is bounded; it stops by itself (about 2-3 minutes).
#
# bench.py prints (see its docstring for the exact shapes):
#   B1  10,000 items (1,000 learners x 10 courses, half unknown e-mails)
#       vs the SQL floor: the same rows, read back from the tables after B1,
#       as multi-row upserts through the mariadb client, same server, same run
#   B1 re-sent vs B1
#   B2  one-item requests (wrk, 16 connections, distinct unknown e-mails)
#       vs tests/bench/trivial_responder.c behind the same nginx, same
#       number of processes; p99 of both; and vs B2's SQL floor (B2's rows,
#       one transaction a request, 16 mariadb clients)
#   B3  100,000 items vs B1; peak RSS (VmHWM) of the responder serving it
#   B4  16 x 625-item requests from 4 clients (on the tables emptied and
#       seeded again after B3): items/s vs B1's
# with the issue's targets next to them (printed, never asserted).
#
# Before/after: BULK_BENCH_SAVE=FILE writes the figures as JSON;
# BULK_BENCH_BASELINE=FILE (a file saved earlier) adds the old ratios.
#
# Environment:
#   BULK_BUILD_DIR    build with src/bulk-enrolld (default: <src>/build)
#   BULK_BENCH_SAVE, BULK_BENCH_BASELINE   see above
#   BULK_BENCH_KEEP=1 keep the stack directory (logs) after the run
#   BULK_BENCH_MARIADBD_ARGS  extra mariadbd options, for profiling, e.g.
#                     "--slow-query-log --long-query-time=0
#                      --log-slow-verbosity=query_plan,explain"
#                     (the log lands in the kept stack's db/data)
#   BULK_STACK_DIR    instead of a new stack, use the running one described
#                     by $BULK_STACK_DIR/stack.env (e.g. `tests/stack.sh run`,
#                     BULK_STACK_DIR=<src>/.stack); its data is RESET first,
#                     as the integration tests do, and its MariaDB keeps its
#                     own durability setting (bench.py warns when it is not 1)
#
# Needs root (MariaDB and nginx run as in tests/stack.sh, nginx's workers
# and the pool as nobody), wrk, a C compiler and the packages
# tests/stack.sh installs.  Run it with nothing else heavy on the machine:
# the figures are wall times.
set -euo pipefail
# Appended after the stack's own --innodb-flush-log-at-trx-commit=2: the
# last one wins.
export BULK_BENCH_MARIADBD_ARGS="--innodb-flush-log-at-trx-commit=1 ${BULK_BENCH_MARIADBD_ARGS:-}"
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/stack.sh" bench "$@"
