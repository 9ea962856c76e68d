"""The engine's exceptions: each carries a message for the user and a hint on how to fix it."""
from __future__ import annotations


class ArtcloakError(Exception):
    """Base class: `str(e)` says what happened, `e.hint` what to do about it."""

    hint = ""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        if hint:
            self.hint = hint


class InputError(ArtcloakError):
    """The pixels or parameters cannot be protected as given."""


class ModelError(ArtcloakError):
    """Surrogate weights missing, corrupt or failing their pinned hash."""

    hint = ("Run the installer again (install_scripts/install.sh or install.ps1) "
            "to download the model weights.")


class Cancelled(ArtcloakError):
    """The caller's cancel() returned true; no result was produced."""
