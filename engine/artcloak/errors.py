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


class OutputError(ArtcloakError):
    """The result cannot be written where asked (no space, a file-size limit, a name too long, a folder
    that cannot be made or written): the protection itself was not at fault."""


class Cancelled(ArtcloakError):
    """The caller's cancel() returned true; no result was produced."""


MEMORY_HINT = "Close other programs, or protect a smaller image (or a part of it)."
KINDS = ((InputError, "input"), (OutputError, "output"), (ModelError, "model"), (Cancelled, "cancelled"))


def is_out_of_memory(e: BaseException) -> bool:
    """A MemoryError, or torch's RuntimeError for an allocation that failed."""
    text = str(e).lower()
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "cannot allocate memory" in text))


def kind_of(e: BaseException) -> str:
    """What went wrong, in one word the fronts share (the worker's error event, the CLI's --json):
    "memory", "input", "output", "model", "cancelled" or "internal"."""
    if is_out_of_memory(e):
        return "memory"
    for cls, name in KINDS:
        if isinstance(e, cls):
            return name
    return "internal"
