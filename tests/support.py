"""Helpers shared by the test modules (imported by them; fixtures are in conftest.py): the
gmmlab commands in subprocesses, the processes' states they are waited on by (/proc), R's
mclust through rpy2, and the scripts of experiments/."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PLUGINS = Path(__file__).parent / "plugins"

# A fit that takes a few seconds: long enough to interrupt or kill it midway.
SLOW = ["dataset=synthetic", "dataset.options.n_samples=60000", "n_components=4",
        "backend.n_init=3"]


def gmmlab(*args, cwd, check=True, command="gmmlab", env=None):
    """Run a gmmlab command (``gmmlab``, ``gmmlab-report``, ...) in ``cwd``; the finished
    process (an AssertionError with its output when ``check`` and it failed)."""
    done = subprocess.run([str(BIN / command), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def plugin_env(*paths):
    """The environment with the test plug-ins (tests/plugins) and ``paths`` first on
    PYTHONPATH (what it held kept after them)."""
    kept = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    return os.environ | {"PYTHONPATH": os.pathsep.join(map(str, (PLUGINS, *paths, *kept)))}


def start(args, cwd):
    """Start ``gmmlab ARGS`` in the background; the Popen."""
    return subprocess.Popen([str(BIN / "gmmlab"), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def results(directory):
    """The result.json files below ``directory``, sorted."""
    return sorted(Path(directory).rglob("result.json"))


def wait_for(condition, timeout=120, interval=0.05, what="the condition"):
    """Poll ``condition`` until it holds (an AssertionError naming ``what`` after ``timeout``
    seconds): a wait on an event (a file, a process state), not a fixed time."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)


def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (state first, then the parent)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def alive(pid):
    """True when process ``pid`` exists and is not a zombie."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def descendants(pid):
    """Process ids of the children of ``pid``, their children, and so on (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                parents.setdefault(int(_stat_fields(entry.name)[1]), []).append(int(entry.name))
        except (OSError, IndexError):
            continue
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def holds_lock(pid, path):
    """True when process ``pid`` holds a lock (flock or fcntl) on the file ``path``
    (/proc/locks: its pid, then the file as major:minor:inode, the device numbers in hex)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return False
    device = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    return any(fields[4] == str(pid) and fields[5] == device
               for fields in (line.split() for line in Path("/proc/locks").read_text()
                              .splitlines()) if len(fields) > 5 and fields[1] != "->")


def processes_in(folder):
    """Ids of the processes (other than this one) working in ``folder``: their working
    directory in it or its path on their command line (a gmmlab sweep's workers, Ray's, a
    SLURM job's)."""
    folder = str(Path(folder).resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except OSError:
            continue
        if (cwd == folder or cwd.startswith(folder + os.sep) or folder in command) and alive(
                int(entry.name)):
            found.append(int(entry.name))
    return found


def slurm_is_up():
    """True when a SLURM cluster answers with a node idle or partly used (``sinfo``)."""
    if shutil.which("sinfo") is None:
        return False
    done = subprocess.run(["sinfo", "--noheader", "--format=%t"], capture_output=True,
                          text=True, timeout=30)
    return done.returncode == 0 and any(state in done.stdout for state in ("idle", "mix"))


needs_slurm = pytest.mark.skipif(
    not slurm_is_up(), reason="no SLURM cluster: as root, `bash tests/cluster/slurm.sh test` "
    "starts one, runs the cluster tests and stops it (.ci/run does so when it can)")
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray is not installed: make test EXTRAS=dev,ray")


@cache
def r_session():
    """(robjects, converter) of R with mclust, or None without R, mclust or rpy2."""
    try:
        from gmmlab.backends.mclust import r_session as start_r
    except ImportError:
        return None
    try:
        robjects, converter, _ = start_r()
    except ImportError:
        return None
    return robjects, converter


def study_names():
    """The studies of experiments/ whose Hydra plug-ins are installed: a study run by an
    optional sweeper (``hydra/sweeper: optuna``, the extra optuna) only with that sweeper."""
    names = []
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        sweeper = re.search(r"override /hydra/sweeper: (\w+)", path.read_text())
        if sweeper is None or importlib.util.find_spec(
                f"hydra_plugins.hydra_{sweeper.group(1)}_sweeper") is not None:
            names.append(path.stem)
    return names


def r_call(code, *args):
    """Evaluate the R function ``code`` on numpy arguments; its result (numpy where it
    converts)."""
    robjects, converter = r_session()
    with robjects.conversion.localconverter(converter):
        return robjects.r(code)(*args)


def load_script(relative_path):
    """A script of the checkout (e.g. 'experiments/speed/bench_csv.py') as a module, its folder
    first on the path for the modules beside it."""
    path = ROOT / relative_path
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module
