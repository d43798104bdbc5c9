"""The one top-level error handler of gmmlab's console commands (``gmmlab``, ``gmmlab-collect``,
``gmmlab-report``, ``gmmlab-select``): :func:`~gmmlab.console.run_command`.

A known error (bad input: a file, a column, a key, a value) prints one paragraph naming the
culprit and what is expected, and exits with 1. An unexpected one prints a short message and
the file where the full traceback was written, and exits with 1. Ctrl-C stops with 1 and says
how to resume. No traceback reaches the user.
"""

import datetime
import errno
import os
import sys
import tempfile
import traceback
from pathlib import Path

# Errors of the user's input or environment: their message is the explanation.
KNOWN = (ValueError, OSError)
# What an OSError's path was expected to be, by errno.
EXPECTED = {
    errno.ENOENT: "it does not exist; expected an existing file or folder",
    errno.EEXIST: "a file of that name is in the way; expected a folder (or a path where one "
                  "can be created)",
    errno.ENOTDIR: "a part of the path is a file; expected folders all the way",
    errno.EISDIR: "it is a folder; expected a file",
    errno.EACCES: "permission denied; expected a path this user may read and write",
    errno.EROFS: "the file system is read-only; expected a writable place",
    errno.ENOSPC: "the disk is full",
    errno.ENAMETOOLONG: "a name in the path is longer than the file system allows (255 bytes)",
}
INTERRUPTED = ("interrupted (Ctrl-C); nothing partial was written. Finished runs are kept: "
               "run the same command again to resume.")


def describe(error):
    """One paragraph for a known error: for an OSError, the path and what was expected."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        expected = EXPECTED.get(error.errno, error.strerror)
        return f"{error.filename}: {expected}."
    text = " ".join(str(error).split()) or type(error).__name__
    cause = error.__cause__ or error.__context__
    if type(error).__module__.startswith(("hydra", "omegaconf")) and cause is not None:
        text += " " + " ".join(str(cause).split())  # Hydra wraps the config error that says why
    return text


def run_command(name, function, *args, known=()):
    """Call ``function(*args)`` as console command ``name``; turn every exception into a
    message and an exit status. ``known``: more exception classes whose message is the
    explanation (e.g. Hydra's configuration errors)."""
    try:
        return function(*args)
    except KeyboardInterrupt:
        sys.exit(f"{name}: {INTERRUPTED}")  # exit status 1
    except (*KNOWN, *known) as error:
        sys.exit(f"{name}: {describe(error)}")
    except Exception as error:  # noqa: BLE001 - the user gets a message, the file the rest
        sys.exit(f"{name}: unexpected error {type(error).__name__}: {describe(error)}\n"
                 f"The full traceback is in {write_traceback(name)}; please include it when "
                 f"reporting this.")


def write_traceback(name):
    """Write the current exception's traceback to a file in the temporary folder; its path."""
    folder = Path(os.environ.get("GMMLAB_TRACEBACK_DIR", tempfile.gettempdir()))
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"{name}-traceback-{stamp}-{os.getpid()}.txt"
    path.write_text(f"{name} {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
    return path
