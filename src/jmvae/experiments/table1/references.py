"""Published numbers that a reproduction on MNIST is shown beside, never in place of.

- The paper's Table 3 (Appendix D): the joint log p(x, w) of JMVAE-zero and JMVAE-kl on MNIST
  (k = 1000, the authors' training).
- Two reproductions of JMVAE-kl(alpha=0.1), joint proposal, k = 1000: MultiVae's (-86.85 ± 0.03;
  500 epochs with a 200-epoch KL warm-up) and multi-view-AE's (-86.76 ± 0.06; 500 epochs with a
  100-epoch warm-up, batch 128, 5 seeds).
"""

from __future__ import annotations

from typing import Any

from jmvae.experiments.table1.rows import cells, seed_spread

PAPER_TABLE_3 = {"jmvae-zero": -86.96, "jmvae-kl(alpha=0.01)": -86.94, "jmvae-kl(alpha=0.1)": -86.93,
                 "jmvae-kl(alpha=1)": -89.28}
"""Joint log p(x, w) of the paper's Table 3, by row."""

REPRODUCTIONS = (("MultiVae", "jmvae-kl(alpha=0.1)", -86.85, "500 epochs, 200-epoch KL warm-up"),
                 ("multi-view-AE", "jmvae-kl(alpha=0.1)", -86.76, "500 epochs, 100-epoch KL warm-up, 5 seeds"))
"""(who, row, joint log p(x, w), how it was trained)."""


def reference_lines(models: dict[str, Any], dataset: str | None) -> list[str]:
    """table1.md's section on MNIST: each measured joint cell beside the paper's and the
    reproductions' (and how far apart); nothing for other data or before a JMVAE row is measured."""
    if dataset != "mnist":
        return []
    rows = []
    for name, published in [(name, (value, "the paper (Table 3)")) for name, value in PAPER_TABLE_3.items()] + [
            (name, (value, f"{who} ({how})")) for who, name, value, how in REPRODUCTIONS]:
        ours = cells(models.get(name)).joint
        if ours is None:
            continue
        spread = seed_spread(models[name]).joint
        shown = f"{ours:.2f}" + (f" ± {spread:.2f}" if spread is not None else "")
        value, source = published
        rows.append(f"| {name} | {shown} | {value:.2f} | {ours - value:+.2f} | {source} |")
    if not rows:
        return []
    return ["", "## Beside the published numbers", "",
            "Joint log p(x, w) measured here, the published cell, and this run minus it (nats; a difference "
            "within the seed spread is not a difference).", "",
            "| model | this run | published | difference | source |", "|---|---|---|---|---|", *rows]
