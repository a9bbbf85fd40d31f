#!/usr/bin/python3
"""Runs every integration test (tests/integration/test_*.py) against the
stack that tests/stack.sh started, and reports counts.

    tests/integration/run.py [--summary FILE] [--reset] [-k PATTERN] [-q]

--summary FILE writes "PASSED FAILED" (failures + errors + unexpected
successes count as failed; skips count as neither) for tests/stack.sh.
Exit status 0 only when nothing failed and at least one test ran.
"""

import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--summary", help="write 'PASSED FAILED' to this file")
    parser.add_argument("-k", dest="patterns", action="append",
                        help="only tests whose name contains this (repeatable)")
    parser.add_argument("-q", dest="quiet", action="store_true", help="less output")
    parser.add_argument("--reset", action="store_true",
                        help="reset the stack's data (stack.reset_data) before the tests")
    args = parser.parse_args()

    sys.path.insert(0, HERE)
    if args.reset:
        import stack
        stack.reset_data()
    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = ["*%s*" % p for p in args.patterns]
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    runner = unittest.TextTestRunner(verbosity=1 if args.quiet else 2, stream=sys.stdout)
    result = runner.run(suite)

    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print("integration: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    if args.summary:
        with open(args.summary, "w") as f:
            f.write("%d %d\n" % (passed, failed))
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
