#!/usr/bin/env bash
# Install hgmntk with its test extras and the computer algebra systems the tests use
# (Debian's singular and macaulay2, when running as root with apt-get), then run ruff and
# the whole test suite.  Extra arguments go to pytest, e.g. `-m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v Singular >/dev/null 2>&1 || ! command -v M2 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Singular and Macaulay2 (Debian packages, no recommends)..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      singular macaulay2 >/dev/null
  else
    echo "note: Singular/Macaulay2 are missing and apt-get is not usable here;" \
         "their tests will be skipped (install: apt-get install singular macaulay2)" >&2
  fi
fi

python -m pip install -q --disable-pip-version-check -e ".[test]"
python -m ruff check .
# In CI a missing CAS is a failure, not a skip.
if [ -n "${CI:-}" ]; then export HGMNTK_REQUIRE_CAS="${HGMNTK_REQUIRE_CAS:-1}"; fi
python -m pytest -p no:cacheprovider "$@"
