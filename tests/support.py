"""Helpers shared by the test modules (imported by them; fixtures are in conftest.py): the
gmmlab commands in subprocesses, R's mclust through rpy2, and the scripts of experiments/."""

import importlib.util
import os
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

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


def wait_for(condition, timeout=120, interval=0.05):
    """Poll ``condition`` until it holds (an AssertionError after ``timeout`` seconds)."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(interval)


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
