"""gmmlab's Hydra plugins: the launchers behind ``hydra/launcher=slurm`` and ``ray_cluster``.

Hydra instantiates launchers only from the ``hydra_plugins`` namespace, so this folder is
installed as the package ``hydra_plugins.gmmlab`` (pyproject.toml maps it), and
:func:`gmmlab.study.runner.register_configs` registers the classes with Hydra (Hydra's own scan does
not see an editable install).
"""
