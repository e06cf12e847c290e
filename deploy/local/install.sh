#!/usr/bin/env bash
# Create .venv and install the project with its test and benchmark extras (idempotent).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "install: Python 3.11 or newer is needed (found $("$python" --version))" >&2; exit 1; }
# PyICU (the UTS #39 confusable skeletons of the third-party rule) builds against ICU.
if ! pkg-config --exists icu-uc 2>/dev/null || ! command -v c++ >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq libicu-dev pkg-config g++ >/dev/null
  else
    echo "install: ICU is needed: apt-get install libicu-dev pkg-config g++ (Debian/Ubuntu)" >&2
    exit 1
  fi
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,bench,speed]'
# The console's browser tests drive Debian's chromium (tests/integration/test_console_browser.py).
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
  else
    echo "install: chromium is missing (apt-get install chromium); the browser tests need it" >&2
  fi
fi
