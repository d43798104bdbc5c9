"""Functions named by the user or by installed packages: ``"module:function"`` targets and the
entry points of the groups ``gmmlab.backends`` and ``gmmlab.datasets``.

A package adds a backend or a data set without changes to gmmlab, in its ``pyproject.toml``::

    [project.entry-points."gmmlab.backends"]
    my_method = "mypkg.methods:fit_mine"

    [project.entry-points."gmmlab.datasets"]
    my_data = "mypkg.data:load_mine"
"""

from importlib import import_module, metadata

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
    except ImportError as error:
        raise PluginError(f"{what} target {target!r}: cannot import module {module_name!r} "
                          f"({error}).") from None
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
