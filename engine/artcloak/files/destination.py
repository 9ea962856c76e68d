"""Where a result is written: checked before any work starts, and a failure while writing in words.

A protection takes minutes; what can be known about the destination before it (the folder can be
made and written, the final and the temporary names are legal on its filesystem) is checked first,
so that nothing fails after the work for a reason that was there all along. What cannot be known
(the disk fills, a file-size limit) is an OutputError that says what happened and what to do.

- `make_folder(folder)`: create an output folder (with its parents), then `check_folder`.
- `check_folder(folder)`: an existing folder this process can create files in.
- `check_name(path)`: the name fits the filesystem's limit, and a probe file with the temporary
  name that `temp_file` gives is created and removed (permissions, read-only filesystems).
- `temp_file(path)`: the temporary file `imageio.write_atomic` writes through, named like the final
  file but shortened where a long final name would make it illegal.
- `write_failure(e, path)`: an OSError met while writing, as an OutputError with a hint.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from ..errors import OutputError

DEFAULT_NAME_MAX = 255  # bytes; what ext4, APFS, NTFS (characters) and most others allow
TEMP_EXTRA = len("..") + 8 + len(".part")  # mkstemp's dot-separated random part and the suffix

REASONS = {  # errno -> (what happened, what to do)
    errno.ENOSPC: ("the disk is full", "Free some space on that disk, or write to another folder."),
    errno.EDQUOT: ("your disk quota is used up", "Free some space, or write to another folder."),
    errno.EFBIG: ("the file is larger than this system lets a program write (a file-size limit)",
                  "Raise the file-size limit (ulimit -f), or write a smaller file (JPEG, or a smaller "
                  "image)."),
    errno.ENAMETOOLONG: ("the file name is too long for this filesystem", "Choose a shorter output name."),
    errno.EACCES: ("permission denied", "Choose a folder you can write to."),
    errno.EPERM: ("permission denied", "Choose a folder you can write to."),
    errno.EROFS: ("the folder is on a read-only filesystem", "Choose a folder you can write to."),
    errno.ENOENT: ("the folder does not exist", "Create it first, or choose another folder."),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "Choose another output folder."),
    errno.EEXIST: ("a file of that name is in the way", "Choose another output folder."),
    errno.EIO: ("the disk reported an input/output error", "Check the disk, or write to another one."),
}


def write_failure(e: OSError, path: str | os.PathLike) -> OutputError:
    """An OSError met while writing `path`, in words, with what to do about it."""
    what, hint = REASONS.get(e.errno, (e.strerror or str(e), "Check the output folder and the disk."))
    return OutputError(f"cannot write {path}: {what}", hint)


def make_folder(folder: str | os.PathLike) -> Path:
    """Create `folder` (and its parents) unless it exists, and check it can take files."""
    folder = Path(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):  # os.path: no exception for odd names
        raise OutputError(f"cannot use {folder} as the output folder: it is a file",
                          "Name a folder (a new one is created), or use -o for one output file.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_failure(e, folder) from None
    return check_folder(folder)


def check_folder(folder: str | os.PathLike) -> Path:
    """`folder` exists, is a folder, and this process may create files in it."""
    folder = Path(folder) if str(folder) else Path(".")
    if not os.path.isdir(folder):
        what = "is a file, not a folder" if os.path.exists(folder) else "does not exist"
        raise OutputError(f"cannot write into {folder}: it {what}",
                          "Create the folder first, or choose another one.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into {folder}: permission denied",
                          "Choose a folder you can write to.")
    return folder


def name_max(folder: str | os.PathLike) -> int:
    """The longest file name, in bytes, the filesystem holding `folder` allows."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (AttributeError, ValueError, OSError):
        return DEFAULT_NAME_MAX


def _temp_prefix(path: Path) -> str:
    """`.NAME.`, with NAME shortened until the whole temporary name fits where `path`'s name does."""
    limit = name_max(path.parent if str(path.parent) else ".")
    name = path.name
    while name and len(os.fsencode(name)) + TEMP_EXTRA > limit:
        name = name[:-1]
    return f".{name}."


def temp_file(path: str | os.PathLike) -> tuple[int, str]:
    """A new private temporary file beside `path` (its descriptor and name), legal whenever `path`'s
    own name is."""
    path = Path(path)
    return tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".part")


def check_name(path: str | os.PathLike) -> None:
    """The final name fits its filesystem, and a file with its temporary name can be created there
    (created and removed at once): the write at the end cannot fail for its name or the folder."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    size, limit = len(os.fsencode(path.name)), name_max(folder)
    if size > limit:
        raise OutputError(f"cannot write {path}: the file name is too long ({size} bytes; this filesystem "
                          f"allows {limit})", "Choose a shorter output name.")
    try:
        fd, tmp = temp_file(path)
    except OSError as e:
        raise write_failure(e, path) from None
    try:
        os.close(fd)
    finally:
        os.unlink(tmp)  # also when interrupted: the probe is never left behind
