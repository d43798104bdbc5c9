"""The study machinery: one job (:mod:`~gmmlab.study.job`: data, backend, metrics,
``result.json``), the result store (:mod:`~gmmlab.study.results`: run folders, resume,
``gmmlab-collect``), the Hydra runner (:mod:`~gmmlab.study.runner`: the ``gmmlab`` command) and
the SLURM cluster checks (:mod:`~gmmlab.study.cluster`). Only this layer imports Hydra (besides
the launchers in ``hydra_plugins.gmmlab``).
"""
