#!/usr/bin/env sh
# Debian packages the project needs beyond PyPI, installed when missing (as root), otherwise
# named with the command that installs them. Usage: tools/system-packages.sh PACKAGE...
missing=""
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "not a Debian system: install the equivalents of:$missing" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  echo "installing Debian packages:$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null \
    || echo "could not install:$missing" >&2
else
  echo "missing Debian packages:$missing; install them with: sudo apt-get install$missing" >&2
fi
exit 0
