#!/bin/sh
# Make sure Debian's chromium is installed for the end-to-end tests (Playwright drives it; it never
# downloads a browser of its own). Safe to run repeatedly: it does nothing when chromium is there.
set -eu
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium not found at $CHROMIUM and apt-get is not available: install Chromium and set CHROMIUM" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi
echo "installing Debian's chromium for the end-to-end tests"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fonts-dejavu-core: readable text in screenshots on a bare machine
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
"$CHROMIUM" --version
