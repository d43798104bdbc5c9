"""Functions named by the user or by installed packages: ``"module:function"`` targets and the
entry points of the groups ``gmmlab.backends`` and ``gmmlab.datasets``.

A package adds a backend or a data set without changes to gmmlab, in its ``pyproject.toml``::

    [project.entry-points."gmmlab.backends"]
    my_method = "mypkg.methods:fit_mine"

    [project.entry-points."gmmlab.datasets"]
    my_data = "mypkg.data:load_mine"
"""

import hashlib
import inspect
from functools import cache
from importlib import import_module, metadata
from pathlib import Path

# The registry name of a user's function, given by its target: backend=custom
# backend.target=module:function (and dataset=custom).
CUSTOM = "custom"


class PluginError(ValueError):
    """A target that cannot be used: malformed, not importable, or not a function."""


def registered(group):
    """Entry points of ``group`` in the installed packages: name -> "module:function"."""
    return {point.name: point.value for point in metadata.entry_points(group=group)}


def import_target(target, what):
    """The function a ``"module:function"`` target names; ``what`` ("backend", "data set")
    goes into the messages, which name the target and what is wrong with it."""
    module_name, _, function_name = str(target).partition(":")
    if not module_name or not function_name:
        raise PluginError(f"{what} target {target!r} is not of the form module:function.")
    try:
        module = import_module(module_name)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - whatever its import raises
        cause = (f"its import called sys.exit({error.code!r})" if isinstance(error, SystemExit)
                 else f"{type(error).__name__}: {error}" if not isinstance(error, ImportError)
                 else str(error))
        raise PluginError(f"{what} target {target!r}: cannot import module {module_name!r} "
                          f"({cause}).") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise PluginError(f"{what} target {target!r}: module {module_name!r} has no function "
                          f"{function_name!r}.")
    return function


def find(name, target, *, kind, key, built_in, group, available):
    """The function behind ``name`` of a registry: gmmlab's own (``built_in``: name -> a
    function or a "module:function"), an installed package's (entry-point ``group``), or for
    ``custom`` the ``target`` the user names. ``kind`` ("backend") and ``key`` ("backend", the
    config key) go into the messages; ``available()`` lists the names for an unknown one."""
    if name == CUSTOM:
        if not target:
            raise PluginError(f"{kind} 'custom' needs a target: {key}.target=module:function.")
        found = target
    elif target:
        raise PluginError(f"{kind} {name!r} takes no target (only {key}=custom does).")
    else:
        found = built_in.get(name) or registered(group).get(name)
        if found is None:
            raise PluginError(f"unknown {kind} {name!r}; available: {available()}.")
    return import_target(found, kind) if isinstance(found, str) else found


def code_fingerprint(function):
    """What a plug-in's code is, for resume to notice an edit: ``{"function": "module:name",
    "source": sha256 of its module's source file, "distribution": "name version"}`` (the
    installed distribution that ships the module, when there is one). Code the module imports
    from elsewhere is not included; a function without a source file is named only."""
    module = inspect.getmodule(function)
    found = {"function": f"{function.__module__}:{getattr(function, '__qualname__', '?')}"}
    try:
        source = inspect.getsourcefile(module) if module is not None else None
    except TypeError:  # a built-in module
        source = None
    if source:
        found["source"] = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    top = function.__module__.split(".")[0]
    for distribution in _distributions().get(top, [])[:1]:
        found["distribution"] = f"{distribution} {metadata.version(distribution)}"
    return found


@cache
def _distributions():
    return metadata.packages_distributions()
