"""Table 1 of the paper: train and evaluate every model, store the table, judge the claims, write the report.

Resumable at every level: each model trains in its own run folder (resumed from its latest
checkpoint), and a model whose evaluation is stored with the same protocol is not evaluated
again. The table and the claims are rewritten from whatever has been measured so far.

Several training seeds per row: each seed trains in its own run folder (``RUNS/<row>-seed<s>``)
and is evaluated on the same test set with the same evaluation seed. A row holds every seed
measured with its protocol, by this command or earlier ones: the mean of every cell over them,
their sample standard deviation (``seed_std``, n - 1 in the denominator) and each seed's own row
(``per_seed``); the claims are checked on the means. Why several: runs of one model differ from
seed to seed by more than a cell's test-set standard error (docs/benchmarks.md), so a single run
cannot separate close rows.

- ``rows``: the table's rows, their run folders, reading a stored row's cells.
- ``reproduction``: the command's configuration; training and measuring one (row, seed).
- ``groups``: the pairs of rows of one architecture still to train, trained together as one unit.
- ``runner``: ``reproduce()``, in this process or a pool of worker processes.
- ``store``: table1.json under a file lock, seeds merged; rewrites the Markdown beside it.
- ``claims``: the paper's checkable claims and their verdicts.
- ``report``: table1.md and report.md.
"""
