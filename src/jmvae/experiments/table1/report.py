"""table1.md (the table and the verdicts on the paper's claims) and report.md (the same, then each model's figures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jmvae.evaluation import ACTIVE_UNIT_THRESHOLD
from jmvae.experiments.table1.claims import claim_verdict, coherence_value
from jmvae.experiments.table1.references import reference_lines
from jmvae.experiments.table1.rows import (NOT_RECORDED, cells, coherence_stderr, first_value, provenance, run_folder_name,
                                          seed_rows, seed_spread)


def fmt(value: float | None, digits: int = 2, spread: float | None = None) -> str:
    """A cell as table1.md shows it: '—' where undefined, '± spread' over seeds where there are several."""
    if value is None:
        return "—"
    return f"{value:.{digits}f}" + ("" if spread is None else f" ± {spread:.{digits}f}")


def active_units_text(r: dict[str, Any]) -> str:
    """The joint (or only) proposal's active units; a mean ± standard deviation over seeds."""
    if not r.get("active_units"):
        return "—"
    value = first_value(r["active_units"])
    spread = first_value((r.get("seed_std") or {}).get("active_units"))
    return str(value) if "seed_std" not in r else fmt(value, 1, spread)


def seeds_text(r: dict[str, Any]) -> str:
    return ", ".join(str(s) for s in r["seeds"]) if "seeds" in r else str(r.get("seed", "—"))


def table_line(models: dict[str, Any], name: str) -> str:
    """One model's row of the Markdown table."""
    r = models[name]
    ll, sll = cells(r), seed_spread(r)
    std = r.get("seed_std") or {}
    pairs = [(ll.x.multiple, sll.x.multiple), (ll.x.single, sll.x.single),
             (ll.x_given_w.multiple, sll.x_given_w.multiple), (ll.x_given_w.single, sll.x_given_w.single)]
    shown = [fmt(value, spread=spread) for value, spread in pairs]
    return (f"| {name} | {' | '.join(shown)} | {fmt(ll.joint, spread=sll.joint)} | "
            f"{fmt(first_value(r.get('accuracy')), 4, first_value(std.get('accuracy')))} | "
            f"{fmt(coherence_value(models, name), 3, std.get('coherence'))} | {active_units_text(r)} | {seeds_text(r)} | "
            f"{r['epochs']} | {r['train_seconds']:.0f} | {r['eval_seconds']:.0f} |")


def sources(models: dict[str, Any]) -> list[tuple[str, list[int], tuple[str, str, str]]]:
    """(row, its seeds, their (command, hardware, training precision)) for each place a row's seeds
    were measured: one entry per row measured in one place."""
    found = []
    for name, r in models.items():
        by_source: dict[tuple[str, str, str], list[int]] = {}
        for seed, row in sorted(seed_rows(r).items()):
            by_source.setdefault(provenance(row), []).append(seed)
        found += [(name, seeds, source) for source, seeds in by_source.items()]
    return found


def provenance_lines(table: dict[str, Any]) -> tuple[list[str], list[str]]:
    """table1.md's header lines (command, hardware, training precision) and its section on where
    each row was measured. A table whose rows were all measured by one command names it (and the
    command that last wrote the file, where that one measured none of them); a table that predates
    the rows' own records names the command that last wrote it; a table assembled by several
    commands (rows added with ``--models``/``--seeds``, on other machines or precisions) names each
    row's own in the section."""
    found = sources(table["models"])
    places = {(command, hardware) for _, _, (command, hardware, _) in found}
    precisions = {name: precision for name, _, (_, _, precision) in found}
    distinct = set(precisions.values())
    shown = (distinct.pop() if len(distinct) == 1
             else "per row, " + ", ".join(f"{name} {precision}" for name, precision in precisions.items()))
    precision_line = [f"Training precision: {shown}"] if precisions else []
    writer = (table["command"], table["hardware"])
    if all(command == NOT_RECORDED for command, _ in places) or places == {writer}:
        return [f"Command: `{writer[0]}`  ", f"Hardware: {writer[1]}  ", *precision_line], []
    if len(places) == 1 and NOT_RECORDED not in next(iter(places)):
        (command, hardware), = places
        return [f"Command: `{command}`  ", f"Hardware: {hardware}  ", *[line + "  " for line in precision_line],
                f"(This file was written last by `{writer[0]}`, which measured none of its rows.)"], []
    header = [f"Rows measured by several commands (see \"Where each row was measured\"); the last to write this file: "
              f"`{writer[0]}`  ", f"Its hardware: {writer[1]}"]

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    section = ["", "## Where each row was measured", "",
               "| model | seeds | training precision | hardware | command |", "|---|---|---|---|---|"]
    section += [f"| {name} | {', '.join(map(str, seeds))} | {train_precision} | {cell(hardware)} | "
                f"{command if command == NOT_RECORDED else f'`{cell(command)}`'} |"
                for name, seeds, (command, hardware, train_precision) in found]
    return header, section


def render_markdown(table: dict[str, Any]) -> str:
    models = table["models"]
    datasets = {r.get("protocol", {}).get("data") for r in models.values()} - {None}
    header, where = provenance_lines(table)
    lines = [
        f"# Table 1: test log-likelihoods on {', '.join(sorted(datasets)) or 'no data yet'}",
        "",
        *header,
        "",
        "| model | log p(x) multiple | log p(x) single | log p(x\\|w) multiple | log p(x\\|w) single | "
        "log p(x,w) | accuracy w\\|x | coherence x\\|w | active z | seeds | epochs | train s | eval s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [table_line(models, name) for name in models]
    if any("seed_std" in r for r in models.values()):
        lines += ["", "Rows over several training seeds show the mean ± the sample standard deviation over the seeds "
                  "(train s, eval s: the mean per seed); the claims below are checked on the means."]
    if models:
        first = next(iter(models.values()))
        lines += ["", f"k = {first['k']} importance samples, N_w = {first['n_prior']} prior samples, "
                  f"{first['n_test']} test images; higher is better (nats). '—': the model does not define that cell. "
                  "Active z: latent units of the joint proposal (the VAE's: q(z|x)) whose posterior mean varies "
                  f"over the test set by more than {ACTIVE_UNIT_THRESHOLD} (Burda et al. 2016)."]
        judged = [r["coherence"] for r in models.values() if r.get("coherence")]
        if judged:
            errors = [coherence_stderr(entry) for entry in judged]
            accuracies = sorted({round(entry["judge_test_accuracy"], 4) for entry in judged})
            accuracy = (f"{accuracies[0]:.4f} accurate on the real test images" if len(accuracies) == 1 else
                        f"{accuracies[0]:.4f} to {accuracies[-1]:.4f} accurate on the real test images: each command "
                        "fits its own with the same seed, and machines differ in the last digits")
            lines += ["", f"Coherence x|w: the share of {judged[0]['per_class']} images generated from each label alone that "
                      "an independent classifier (an MLP fitted on the real training images; "
                      f"{accuracy}) assigns to that label, "
                      f"judged on {judged[0].get('judged_on', 'means of p(x|z); judge fitted on intensities, tested on binarised images')}, "
                      f"averaged over labels (chance: {judged[0]['chance']:.2g}); binomial standard errors "
                      f"{min(errors):.4f} to {max(errors):.4f}. See `jmvae.coherence`."]
    lines += where
    lines += reference_lines(models, next(iter(datasets)) if len(datasets) == 1 else None)
    lines += ["", "## The paper's claims", ""]
    for claim in table["claims"]:
        verdict = claim_verdict(claim)
        note = (f" ({'holds' if claim['holds'] else 'does not hold'} by the numbers, but {claim['caveat']})"
                if verdict == "not established" else "")
        lines.append(f"- **{verdict}**{note}: {claim['claim']}  \n  {claim['evidence']}")
    return "\n".join(lines) + "\n"


FIGURES = [
    ("Images generated from the label alone (Appendix E, Figure 7)", "generation.png",
     "One row per label. JMVAE-kl draws z from its label encoder q(z|w); JMVAE-zero from the joint "
     "encoder with the image zero-filled, which the paper shows collapsing; the CMMA from p(z|w), the "
     "CVAE from N(0, I) with w given to the decoder."),
    ("Latent space of the test set (Figure 3)", "latent.png",
     "PCA of the means of each model's training posterior on the test set, coloured by label; the axes give "
     "each component's share of the variance. The paper's Figure 3 is a t-SNE: `jmvae plot RUN --embedding tsne` "
     "draws that."),
    ("Reconstructions (Appendix C)", "reconstructions.png",
     "Test images, then their reconstructions through the joint encoder and through the image-only encoder."),
    ("Training curves", "curves.png", "Every logged term of the training loss, per epoch."),
]


def render_report(table: dict[str, Any], out: Path) -> str:
    """table1.md followed by every model's figures found under OUT/figures/<row>/ (report.md)."""
    lines = [render_markdown(table).replace("# Table 1", "# Report: Table 1", 1), "## Figures", ""]
    figures = out / "figures"
    rows = [name for name in table["models"] if (figures / run_folder_name(name)).is_dir()]
    if not rows:
        return "\n".join(lines + ["No figures yet (they are drawn after each model's evaluation).", ""])

    def image(name: str, figure: str) -> str:
        path = figures / run_folder_name(name) / figure
        return f"![{name} {figure}](figures/{run_folder_name(name)}/{figure})" if path.is_file() else "—"

    for title, figure, caption in FIGURES:
        shown = [name for name in rows if (figures / run_folder_name(name) / figure).is_file()]
        if not shown:
            continue
        lines += [f"### {title}", "", caption, "", "| " + " | ".join(shown) + " |", "|" + "---|" * len(shown),
                  "| " + " | ".join(image(name, figure) for name in shown) + " |", ""]
    return "\n".join(lines)
