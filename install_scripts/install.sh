#!/bin/sh
# artcloak installer for Linux and macOS: finds a Python and runs install.py with your arguments.
# A Python that PyTorch has builds for comes first (3.12, then 3.10-3.14; an Intel Mac's PyTorch stops at
# Python 3.12); install.py says clearly when the one found cannot have PyTorch.
#   install_scripts/install.sh              install or update for this user
#   install_scripts/install.sh --check      list what is installed and missing, then protect a test image
#   install_scripts/install.sh --uninstall  remove everything the installer put on this machine
#   install_scripts/install.sh --help       all options
# Set ARTCLOAK_PYTHON=/path/to/python3 to choose the Python.
set -e
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(uname -s)" = Darwin ] && [ "$(uname -m)" = x86_64 ]; then
  order="python3.12 python3.11 python3.10 python3.9 python3"
else
  order="python3.12 python3.13 python3.11 python3.10 python3 python3.14 python3.9"
fi
for py in "${ARTCLOAK_PYTHON:-}" $order; do
  [ -n "$py" ] || continue
  command -v "$py" >/dev/null 2>&1 || continue
  if "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1; then
    exec "$py" "$here/install.py" "$@"
  fi
done
cat >&2 <<'MSG'
artcloak needs Python 3.10 to 3.14 (3.9 to 3.12 on an Intel Mac) with its "venv" module, and none
was found.
  Debian, Ubuntu:  sudo apt install python3 python3-venv
  Fedora:          sudo dnf install python3
  macOS:           install Python 3.12 from https://www.python.org/downloads/ (or: brew install python@3.12)
Then run this script again (or set ARTCLOAK_PYTHON to the Python to use).
MSG
exit 1
