#!/bin/bash
# tests/bench/bench.sh — how fast the enrollment endpoint is, end to end.
#
#   tests/bench/bench.sh [bench.py options]
#
# Runs `tests/stack.sh bench`: the same stack as the tests (MariaDB, the
# bulk-enrolld pool under spawn-fcgi, nginx with the shipped snippet) in a
# temporary directory on free loopback ports, without a dispatcher, then
# tests/bench/bench.py against it; tears everything down and exits.  Nothing listens beyond
# 127.0.0.1; every loop is bounded; it stops by itself.
#
# bench.py creates its own enterprise, BULK_BENCH_USERS learners (default
# 20000) and a few course runs, then times through nginx:
#   (a) 10k and 50k items of existing learners (all created),
#   (b) the same requests re-sent (all created: false; nothing to write),
#   (c) 10k and 50k items of unknown e-mails (pending), first and re-sent,
#   (d) a mixed request (new, already enrolled, pending, invalid e-mails,
#       unknown user ids and course runs; a 409),
# and prints wall time, items/s, the ratio to the database floor (10,000
# multi-row upserts in one transaction, measured on this machine and the
# nominal 0.1 s), and the peak RSS of the responder that served the biggest
# request (/proc/PID/status VmHWM, and VmRSS sampled during the request).
#
# Before/after: BULK_BENCH_SAVE=FILE writes the figures as JSON;
# BULK_BENCH_BASELINE=FILE (a file saved earlier, e.g. before a change)
# adds a "before" column and the speed-up to every line.
#
# Environment:
#   BULK_BUILD_DIR    build with src/bulk-enrolld (default: <src>/build)
#   BULK_BENCH_USERS  learners to create (default 20000, at least 20000 for
#                     the 50k scenarios' distinct pairs)
#   BULK_BENCH_SAVE, BULK_BENCH_BASELINE   see above
#   BULK_BENCH_KEEP=1 keep the stack directory (logs) after the run
#   BULK_BENCH_MARIADBD_ARGS  extra mariadbd options, for profiling, e.g.
#                     "--slow-query-log --long-query-time=0
#                      --log-slow-verbosity=query_plan,explain"
#                     (the log lands in the kept stack's db/data)
#   BULK_STACK_DIR    instead of a new stack, use the running one described
#                     by $BULK_STACK_DIR/stack.env (e.g. `tests/stack.sh run`,
#                     BULK_STACK_DIR=<src>/.stack); its data is RESET first,
#                     as the integration tests do
#
# Needs root (MariaDB and nginx run as in tests/stack.sh, nginx's workers
# and the pool as nobody) and the packages tests/stack.sh installs.  Run it
# with nothing else heavy on the machine: the figures are wall times.
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/stack.sh" bench "$@"
