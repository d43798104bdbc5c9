"""The one top-level error handler of gmmlab's console commands (``gmmlab``, ``gmmlab-collect``,
``gmmlab-report``, ``gmmlab-select``): :func:`~gmmlab.console.run_command`.

A known error (bad input: a file, a column, a key, a value) prints one paragraph naming the
culprit and what is expected, and exits with 1. An unexpected one prints a short message and
the file where the full traceback was written, and exits with 1. Ctrl-C stops with 1 and says
what is left (for ``gmmlab``, how to resume); SIGTERM stops with 143 and ends the command's
workers. No traceback reaches the user.
"""

import datetime
import errno
import os
import signal
import sys
import tempfile
import threading
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
# Exit status after SIGTERM, as a shell reports a process ended by it (128 + 15).
TERMINATED_STATUS = 128 + signal.SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived: raised in the main thread by the commands' handler, so that joblib
    ends its workers (it aborts on any exception) and nothing partial is written; no
    ``except Exception`` of a plug-in or a job catches it."""


# What a user's code (a plug-in backend or data set) may raise that gmmlab records as that job's
# failure: any exception, SystemExit, and a KeyboardInterrupt of its own (see pass_interrupt).
PLUGIN_ERRORS = (Exception, SystemExit, KeyboardInterrupt)


def pass_interrupt(error):
    """Re-raise ``error`` when it is a real interrupt of this process (see
    :func:`interrupt_received`); return otherwise, for the caller to record the failure."""
    if isinstance(error, KeyboardInterrupt) and interrupt_received():
        raise error


def plugin_failure_message(error):
    """What a failed user's code did: ``TypeError: ...``, or for SystemExit and an own
    KeyboardInterrupt, where it was raised (file, line, function) and what it did."""
    if not isinstance(error, SystemExit | KeyboardInterrupt):
        return f"{type(error).__name__}: {error}"
    where = traceback.extract_tb(error.__traceback__)[-1]
    did = (f"called sys.exit({error.code!r})" if isinstance(error, SystemExit)
           else "raised KeyboardInterrupt, though gmmlab was not interrupted")
    return f"code in {where.filename} (line {where.lineno}, {where.name}) {did}"


def watch_interrupts():
    """Record a real interrupt of this process (SIGINT, Ctrl-C) before raising
    KeyboardInterrupt as Python does, so that :func:`interrupt_received` can tell it from a
    KeyboardInterrupt a plug-in raises itself. Only from the main thread (signal handlers
    live there); a no-op elsewhere. The commands call it at their start."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not _on_interrupt:
        signal.signal(signal.SIGINT, _on_interrupt)
    watch_interrupts.active = True


def interrupt_received():
    """True when this process got SIGINT since :func:`watch_interrupts`, or when nothing
    watches (then every KeyboardInterrupt counts as real)."""
    return _on_interrupt.received or not getattr(watch_interrupts, "active", False)


def _on_terminate(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process as usual
    raise Terminated


def _on_interrupt(signum, frame):
    _on_interrupt.received = True
    raise KeyboardInterrupt


_on_interrupt.received = False


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


def run_command(name, function, *args, known=(), interrupted=INTERRUPTED):
    """Call ``function(*args)`` as console command ``name``; turn every exception into a
    message and an exit status. ``known``: more exception classes whose message is the
    explanation (e.g. Hydra's configuration errors). ``interrupted``: what Ctrl-C leaves
    behind, true for this command (exit status 1). SIGTERM ends the command at once, its
    joblib workers with it (exit status 143)."""
    watch_interrupts()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_terminate)
    try:
        return function(*args)
    except KeyboardInterrupt:
        sys.exit(f"{name}: {interrupted}")  # exit status 1
    except Terminated:
        print(f"{name}: terminated (SIGTERM).", file=sys.stderr)
        sys.exit(TERMINATED_STATUS)
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
