"""The report: tables, claims, figures and SUMMARY.md from the workflow's parquet outputs only.

- :mod:`.tables`: raw outputs -> tidy tables (the ``aggregate`` rule); pandas only;
- :mod:`.claims`: the paper's claims decided by paired comparisons (:mod:`prosv.stats`);
- :mod:`.runs`: the same claims decided in several runs (seeds, dtypes), side by side (`prosv verdicts`);
- :mod:`.summary`, :mod:`.text`: SUMMARY.md and markdown tables;
- :mod:`.plots`, :mod:`.render`: figures (the ``figures`` rule; matplotlib and seaborn);
- :mod:`.paper`: the paper's reference numbers; :mod:`.families`: result rows told apart by data.

Importing this package or :mod:`.tables` does not import matplotlib or seaborn: the plotting
modules load only when asked for.
"""
