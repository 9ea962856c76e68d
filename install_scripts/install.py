#!/usr/bin/env python3
"""Install artcloak for one user: the engine's own venv, the model weights, the GIMP plug-ins.

install.sh and install.ps1 only find a Python and run this file; the installer itself is the package
artcloak_installer beside it (standard library only, Python 3.8+; its __init__ says which room holds
what). Everything written is listed in a manifest in the data folder, so a second run changes nothing
and `--uninstall` removes exactly what was installed and nothing else.

    python3 install_scripts/install.py              install (or update) for this user
    python3 install_scripts/install.py --check      list what is installed, then protect a tiny test image
    python3 install_scripts/install.py --dry-run    print the plan, touch nothing
    python3 install_scripts/install.py --uninstall  remove what the installer put on this machine
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from artcloak_installer.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
