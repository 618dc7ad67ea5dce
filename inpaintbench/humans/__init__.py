"""Human judgments: a local two-alternative (2AFC) rating page, SQLite storage, and their analysis
against the metrics (``inpaintbench rate``, ``inpaintbench humans``).

Modules: :mod:`db` (versioned schema), :mod:`schedule` (seeded balanced pair order), :mod:`study`
(runs -> images of a study), :mod:`server` (HTTP + JSON API), :mod:`stats` (Wilson, sign test,
Bradley–Terry, Krippendorff's α), :mod:`agreement` (metric–human 2AFC agreement), :mod:`analysis`
(everything for one database), :mod:`render` (tables and the agreement plot), :mod:`transfer`
(CSV export/import), :mod:`cli`.
"""
