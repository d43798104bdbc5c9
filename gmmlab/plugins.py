"""Functions named by the user or by installed packages: ``"module:function"`` targets and the
entry points of the groups ``gmmlab.backends`` and ``gmmlab.datasets``.

A package adds a backend or a data set without changes to gmmlab, in its ``pyproject.toml``::

    [project.entry-points."gmmlab.backends"]
    my_method = "mypkg.methods:fit_mine"

    [project.entry-points."gmmlab.datasets"]
    my_data = "mypkg.data:load_mine"
"""

from importlib import import_module, metadata


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
