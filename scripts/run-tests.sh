#!/usr/bin/env bash
# Install hgmntk with its test extras and the computer algebra systems the tests use
# (Debian's singular and macaulay2, when running as root with apt-get), then run ruff and
# the whole test suite on every core.  Extra arguments go to pytest, e.g. `-m "not slow"`.
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

# Risa/Asir is in no package registry. Where the shared tools folder sits beside the
# checkout (CI) and no asir is on PATH, unpack its Risa/Asir test build into a cache
# directory and put it on PATH for this run (hgmntk finds asir at run time only; the
# tool is a non-commercial test tool and never part of the package).
ASIR_TOOL=../shared/tools/risa-asir.tar.xz
if ! command -v asir >/dev/null 2>&1 && [ -f "$ASIR_TOOL" ]; then
  cache="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/risa-asir-tool"
  R="$cache/risa-asir"
  if [ ! -x "$R/bin/asir" ] || [ ! -f "$cache/unpacked" ] || [ "$ASIR_TOOL" -nt "$cache/unpacked" ]; then
    echo "unpacking the Risa/Asir test tool from $ASIR_TOOL..."
    rm -rf "$R" && mkdir -p "$cache"
    tar -xJf "$ASIR_TOOL" -C "$cache" && touch "$cache/unpacked"
  fi
  export OpenXM_HOME="$R" ASIRLOADPATH="$R/lib/asir-contrib:$R/lib/asir"
  export ASIR_CONFIG="$R/rc/asirrc" PATH="$R/bin:$PATH"
fi
if ! command -v asir >/dev/null 2>&1; then
  echo "note: Risa/Asir is missing; its tests will be skipped (failed in CI)" >&2
fi

python -m pip install -q --disable-pip-version-check -e ".[test]"
python -m ruff check .
# In CI a missing CAS (Risa/Asir included) is a failure, not a skip.
if [ -n "${CI:-}" ]; then export HGMNTK_REQUIRE_CAS="${HGMNTK_REQUIRE_CAS:-1}"; fi
# One pytest worker per core (pytest-xdist; an idle worker steals queued tests, so the
# long ones do not leave a core idle at the end); HGMNTK_TEST_WORKERS=0 runs in one process.
workers="${HGMNTK_TEST_WORKERS:-auto}"
if [ "$workers" = 0 ]; then
  python -m pytest -p no:cacheprovider "$@"
else
  python -m pytest -p no:cacheprovider -n "$workers" --dist worksteal "$@"
fi
