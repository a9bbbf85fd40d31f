#!/usr/bin/python3
"""Every relative link in the project's Markdown (README.md, docs/, tests/,
packaging/, man/) resolves to a file inside the repository, and no link
leaves it (no ../shared, no absolute path).  Prints one line per broken
link and a closing `N passed, N failed` line; exit status 1 on any."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SKIP_DIRS = {".git", "build", "build-asan", ".stack", "node_modules"}


def markdown_files():
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith("build")]
        for name in files:
            if name.endswith(".md"):
                yield os.path.join(top, name)


def check(path):
    """Yields (line number, target, reason) for each bad link in path."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    in_code = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # a URL, or an anchor in the same file
            file_part = target.split("#", 1)[0]
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part))
            if os.path.isabs(file_part) or not resolved.startswith(ROOT + os.sep):
                yield number, target, "leaves the repository"
            elif not os.path.exists(resolved):
                yield number, target, "no such file"


def main():
    passed = failed = 0
    for path in sorted(markdown_files()):
        bad = list(check(path))
        for number, target, reason in bad:
            print("%s:%d: %s: %s" % (os.path.relpath(path, ROOT), number, target, reason))
        if bad:
            failed += 1
        else:
            passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
