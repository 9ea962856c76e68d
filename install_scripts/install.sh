#!/bin/sh
# artcloak installer for Linux and macOS: finds a Python 3.9+ and runs install.py with your arguments.
#   install_scripts/install.sh              install or update for this user
#   install_scripts/install.sh --check      protect a tiny test image through the installed engine
#   install_scripts/install.sh --uninstall  remove everything the installer put on this machine
#   install_scripts/install.sh --help       all options
# Set ARTCLOAK_PYTHON=/path/to/python3 to choose the Python.
set -e
here=$(cd "$(dirname "$0")" && pwd)
for py in "${ARTCLOAK_PYTHON:-}" python3 python3.13 python3.12 python3.11 python3.10 python3.9; do
  [ -n "$py" ] || continue
  command -v "$py" >/dev/null 2>&1 || continue
  if "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1; then
    exec "$py" "$here/install.py" "$@"
  fi
done
cat >&2 <<'MSG'
artcloak needs Python 3.9 or newer with its "venv" module, and none was found.
  Debian, Ubuntu:  sudo apt install python3 python3-venv
  Fedora:          sudo dnf install python3
  macOS:           install Python from https://www.python.org/downloads/ (or: brew install python)
Then run this script again (or set ARTCLOAK_PYTHON to the Python to use).
MSG
exit 1
