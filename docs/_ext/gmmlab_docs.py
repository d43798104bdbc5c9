"""Sphinx extension of gmmlab's site: the configuration reference, generated from the schemas.

At ``builder-inited`` it composes gmmlab's Hydra configuration (``conf/`` and the schemas the
runner stores in Hydra's ConfigStore: ``RunSchema``, ``DatasetSchema``, one schema per backend
generated from its fit function's signature, the launchers' dataclasses) once per option of
every config group, and writes ``reference/configuration_tables.md``: every group, every
option, every key with its type and default. Nothing is typed by hand, so the page cannot drift
from the code; ``reference/configuration.md`` includes it.
"""

import dataclasses
import enum
import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf import nodes as omegaconf_nodes

from gmmlab.study import runner

# The config groups a user picks from, with what the table's header says of each.
GROUPS = {"dataset": "the data set (gmmlab.datasets.load_dataset)",
          "backend": "the fitting method (gmmlab.backends.fit)",
          "hydra/launcher": "where a sweep's jobs run"}
NODE_TYPES = {omegaconf_nodes.IntegerNode: "int", omegaconf_nodes.FloatNode: "float",
              omegaconf_nodes.BooleanNode: "bool", omegaconf_nodes.StringNode: "str",
              omegaconf_nodes.EnumNode: "enum", omegaconf_nodes.AnyNode: "any",
              omegaconf_nodes.PathNode: "path"}


def leading_comment(path):
    """The first paragraph of the comment at the top of a YAML file (its own description;
    Hydra's ``@package`` line left out)."""
    lines = []
    for line in Path(path).read_text().splitlines():
        text = line.lstrip("#").strip()
        if not line.startswith("#") or (not text and lines):
            break
        if text and not text.startswith("@package"):
            lines.append(text.replace("|", "\\|"))
    return " ".join(lines)


def trailing_comments(path):
    """``{key: comment}`` for the top-level ``key: value  # comment`` lines of a YAML file."""
    pattern = re.compile(r"^(\w+):[^#]*#\s*(.*)$")
    return {m.group(1): m.group(2).replace("|", "\\|")
            for m in map(pattern.match, Path(path).read_text().splitlines()) if m}


def node_type(config, key):
    """The type OmegaConf checks a key against: int, float, str, bool, enum (with its values),
    a mapping, a list, or any (no check)."""
    node = config._get_node(key)
    if isinstance(node, DictConfig):
        return "mapping"
    if isinstance(node, ListConfig):
        return "list"
    if isinstance(node, omegaconf_nodes.EnumNode):
        return "one of " + ", ".join(member.name for member in node.enum_type)
    return NODE_TYPES.get(type(node), type(node).__name__)


def shown(config, key):
    """A key's default as written on the command line: ``???`` where it is mandatory, the
    interpolation itself where it is one, ``null`` for None."""
    if OmegaConf.is_missing(config, key):
        return "??? (mandatory)"
    node = config._get_node(key)
    if OmegaConf.is_interpolation(config, key):
        return node._value()
    value = OmegaConf.to_container(node) if isinstance(node, DictConfig | ListConfig) else (
        node._value())
    if isinstance(value, enum.Enum):
        value = value.name
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def rows(config, prefix=""):
    """``(dotted key, type, default)`` of every leaf key, nested mappings walked."""
    for key in config:
        node = config._get_node(key)
        if isinstance(node, DictConfig) and not OmegaConf.is_missing(config, key) and len(node):
            yield from rows(node, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", node_type(config, key), shown(config, key)


def table(entries):
    """A Markdown table of ``(key, type, default)`` rows."""
    lines = ["| key | type | default |", "| --- | --- | --- |"]
    lines += [f"| `{key}` | {kind} | `{default}` |" for key, kind, default in entries]
    return "\n".join(lines)


def configuration_tables():
    """The generated page's Markdown: top-level keys, then every group and option."""
    conf = runner.package_or_checkout("conf")
    runner.register_configs()
    GlobalHydra.instance().clear()
    out = []
    with initialize_config_dir(str(conf), version_base="1.3"):
        base = compose("config", return_hydra_config=True)
        comments = trailing_comments(conf / "config.yaml")
        out += ["## Top-level keys", "",
                "The schema `RunSchema` (gmmlab.study.runner), defaults from `conf/config.yaml`: "
                "`gmmlab KEY=VALUE`.", "",
                "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for field in dataclasses.fields(runner.RunSchema):
            if field.name in ("dataset", "backend"):
                continue
            out.append(f"| `{field.name}` | {node_type(base, field.name)} | "
                       f"`{shown(base, field.name)}` | {comments.get(field.name, '')} |")
        out += ["", "`dataset` and `backend` are the config groups below."]
        for group, what in GROUPS.items():
            folder = conf / group
            out += ["", f"## Group `{group}`", "",
                    f"`{group}=NAME` picks {what}; its keys are set as "
                    f"`{group.replace('/', '.')}.KEY=VALUE`. Options:", ""]
            for path in sorted(folder.glob("*.yaml")):
                name = path.stem
                config = compose("config", overrides=[f"{group}={name}"],
                                 return_hydra_config=group.startswith("hydra"))
                node = OmegaConf.select(config, group.replace("/", "."))
                out += [f"### `{group}={name}`", "", leading_comment(path), "",
                        table(rows(node)), ""]
        experiments = sorted(runner.package_or_checkout("experiments").glob("*.yaml"))
        out += ["## Group `experiment`", "",
                "`experiment=NAME` loads a named study of `experiments/` (it sets the keys and "
                "the sweep above):", "",
                "| study | what |", "| --- | --- |"]
        out += [f"| `{path.stem}` | {leading_comment(path)} |" for path in experiments]
    GlobalHydra.instance().clear()
    return "\n".join(out) + "\n"


def write_configuration_tables(app):
    """Write reference/configuration_tables.md when its text changed (no needless rebuild)."""
    target = Path(app.srcdir) / "reference" / "configuration_tables.md"
    text = ("<!-- Generated by docs/_ext/gmmlab_docs.py at build time; not committed. -->\n\n"
            + configuration_tables())
    write_if_changed(target, text)


def write_if_changed(path, text):
    """Write ``text`` to ``path`` unless it holds it already (Sphinx rebuilds what changed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_gallery(app):
    """One page per committed study report (``experiments/NAME/report/report.md``) under
    ``gallery/generated/``: the study's own description (its YAML's leading comment) and the
    report included with its figures, so the gallery follows ``make reports``."""
    root = Path(app.srcdir).parent
    folder = Path(app.srcdir) / "gallery" / "generated"
    wanted = set()
    for report in sorted(root.glob("experiments/*/report/report.md")):
        study = report.parent.parent.name
        description = root / "experiments" / f"{study}.yaml"
        relative = Path("..", "..", "..", report.relative_to(root)).as_posix()
        text = (f"<!-- Generated by docs/_ext/gmmlab_docs.py from {report.relative_to(root)}"
                " -->\n\n"
                f"```{{include}} {relative}\n:relative-images:\n```\n\n"
                f"Study: `experiments/{study}.yaml`"
                + (f" ({leading_comment(description)})" if description.exists() else "")
                + "\n")
        write_if_changed(folder / f"{study}.md", text)
        wanted.add(f"{study}.md")
    for old in folder.glob("*.md"):
        if old.name not in wanted:
            old.unlink()


def resolve_top_level_alias(app, env, node, contnode):
    """Resolve ``gmmlab.select`` and the other names ``gmmlab`` re-exports (its ``__all__``)
    to where they are defined and documented (``gmmlab.selection.select.select``)."""
    import gmmlab

    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("gmmlab."):
        return None
    name = target.removeprefix("gmmlab.")
    if name not in gmmlab.__all__:
        return None
    obj = getattr(gmmlab, name)
    canonical = f"{obj.__module__}.{obj.__qualname__}"
    return env.domains["py"].resolve_xref(env, node["refdoc"], app.builder, node["reftype"],
                                          canonical, node, contnode)


def setup(app):
    """Register the build steps; parallel reads are safe (they run before reading)."""
    app.connect("builder-inited", write_configuration_tables)
    app.connect("builder-inited", write_gallery)
    app.connect("missing-reference", resolve_top_level_alias)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
