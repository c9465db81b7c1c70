"""The README's Python examples run as written, and its test command is the one CI runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXAMPLES = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_python_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(EXAMPLES[index], f"README example {index + 1}", "exec"), {"__name__": "readme"})


def test_ci_runs_the_readme_test_command():
    assert "python -m pytest\n" in README
    assert "\npython -m pytest\n" in (ROOT / ".ci" / "run").read_text()


def test_ci_runs_the_readme_main_job():
    """The first command's main job (after the install) is run by CI as the README writes it."""
    first = README[README.index("## Two commands on a fresh machine"):].split("```bash\n", 1)[1].split("```", 1)[0]
    install = next(line for line in first.splitlines() if line.startswith("python -m pip install"))
    main_job = install.split(" && ", 1)[1]
    assert main_job.startswith("jmvae reproduce ") and f"\n{main_job}\n" in (ROOT / ".ci" / "run").read_text()


def test_readme_table_1_matches_the_committed_results():
    """Every number of the README's Table 1 is the committed measurement, rounded as shown."""
    import json

    models = json.loads((ROOT / "results" / "mnist" / "table1.json").read_text())["models"]
    names = {"VAE": "vae", "CVAE": "cvae", "CMMA": "cmma", "JMVAE-zero": "jmvae-zero"}
    names.update({f"JMVAE-kl(α={a})": f"jmvae-kl(alpha={a})" for a in ("0.01", "0.1", "1")})
    section = README[README.index("## Table 1, reproduced"):]
    rows = re.findall(r"^\| (VAE|CVAE|CMMA|JMVAE-\S+) \|(.*)\|$", section, flags=re.M)
    assert {label for label, _ in rows} == set(names)
    for label, cells in rows:
        r = models[names[label]]
        ll = r["log_likelihood"]
        coherence = (r.get("coherence") or {}).get("image|label")
        expected = [ll["image"]["multiple"], ll["image"]["single"], ll["image|label"]["multiple"],
                    ll["image|label"]["single"], ll["joint"], r["accuracy"]["label|image"], coherence]
        shown = [c.strip() for c in cells.split("|")]
        for text, value in zip(shown, expected, strict=True):
            if value is None:
                assert text == "—", (label, text)
            else:
                digits = len(text.split(".")[1])
                assert text == f"{value:.{digits}f}", (label, text, value)


def test_readme_500_epoch_numbers_are_the_committed_measurement():
    """The README's paragraph on the bar quotes results/mnist-500/table1.json, rounded as shown."""
    import json

    row = json.loads((ROOT / "results" / "mnist-500" / "table1.json").read_text())["models"]["jmvae-kl(alpha=0.1)"]
    paragraph = README[README.index("**The bar is met at 500 epochs**"):README.index("## Layout")]
    ll = row["log_likelihood"]
    for value in (ll["image"]["single"], ll["image"]["multiple"], ll["image|label"]["multiple"],
                  ll["image|label"]["single"], ll["joint"]):
        assert f"{value:.2f}" in paragraph
    assert f"{row['accuracy']['label|image']:.4f}" in paragraph
    assert f"{row['coherence']['image|label']:.3f}" in paragraph
    assert ll["image"]["single"] >= -86.86 and ll["image"]["multiple"] >= -86.86  # the paper's JMVAE figure


def test_editing_doc_matches_the_committed_measurement():
    """docs/editing.md's table is results/mnist/editing.jsonl, rounded as shown."""
    import json

    doc = (ROOT / "docs" / "editing.md").read_text()
    for line in (ROOT / "results" / "mnist" / "editing.jsonl").read_text().splitlines():
        row = json.loads(line)
        shift, joint = row["edit_success"]["shift"], row["edit_success"]["joint"]
        assert f"| {row['model']} | {shift:.3f} | {joint:.3f} |" in doc, row


def test_readme_seed_spread_matches_the_committed_results():
    """The README's mean ± standard deviation over seeds is the committed --seeds table, rounded as shown."""
    import json

    row = json.loads((ROOT / "results" / "mnist-seeds-fp32" / "table1.json").read_text())["models"]["jmvae-kl(alpha=0.1)"]
    mean, std = row["log_likelihood"]["image"]["multiple"], row["seed_std"]["log_likelihood"]["image"]["multiple"]
    assert row["seeds"] == [1, 2, 3] and f"**{mean:.2f} ± {std:.2f}**" in README


def test_every_test_the_docs_name_exists():
    """docs/ and the README cite tests as the proof of a promise: each one they name is defined
    (a test module's name, e.g. test_cli, is a module). Test names are sentences: a word like
    ``test_fraction`` (an option) or Flask's ``test_client`` has fewer than three underscores."""
    tests = ROOT / "tests"
    defined = {m for p in tests.glob("*.py") for m in re.findall(r"^def (test_\w+)", p.read_text(), flags=re.M)}
    modules = {p.stem for p in tests.glob("test_*.py")}
    cited = {n for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
             for n in re.findall(r"\b(test_[a-z0-9_]+[a-z0-9])", doc.read_text()) if n.count("_") >= 3}
    assert cited - defined - modules == set()


def test_the_warm_up_study_quotes_its_committed_tables():
    """docs/benchmarks.md's warm-up table is results/mnist-warmup/*/table1.json, rounded as shown."""
    doc = (ROOT / "docs" / "benchmarks.md").read_text()
    for epochs in (100, 200):
        table = json.loads((ROOT / "results" / "mnist-warmup" / f"warmup{epochs}" / "table1.json").read_text())
        row = table["models"]["jmvae-kl(alpha=0.1)"]
        ll, se = row["log_likelihood"], row["stderr"]
        assert f"--warmup {epochs} --warmup-all-kl" in table["command"] and row["protocol"]["steps"] == 300_000
        line = (f"| {epochs} epochs | {ll['joint']:.2f} ± {se['joint']:.2f} | {ll['image']['single']:.2f} | "
                f"{ll['image']['multiple']:.2f} | {ll['image|label']['multiple']:.2f} | "
                f"{100 * row['accuracy']['label|image']:.2f} % | {row['active_units']['image+label']} |")
        assert line in doc, line


def benchmark_json(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / name).read_text())


def test_the_group_sweep_section_quotes_its_committed_measurements():
    """docs/benchmarks.md's quiet group sweep, step profile and converged-table projection are
    the committed JSON lines, rounded as shown."""
    doc = (ROOT / "docs" / "benchmarks.md").read_text()
    sweep = benchmark_json("2026-12-02-epyc-group-sweep-quiet.jsonl")
    rates, ratio = sweep["samples_per_s"], sweep["together_over_one_after_another"]
    assert (f"| one after another, samples/s (nine summed) | {rates['one_after_another/fp32']:,} | "
            f"{rates['one_after_another/bf16']:,} |") in doc
    assert f"| together, samples/s | {rates['together/fp32']:,} | {rates['together/bf16']:,} |" in doc
    assert f"| together / one after another | **{ratio['fp32']:.2f}** | **{ratio['bf16']:.2f}** |" in doc
    profile = benchmark_json("2026-12-02-epyc-step-profile.jsonl")
    for key, label in (("one after another/fp32", "fp32, one after another"), ("together/bf16", "bf16, together")):
        ms = profile["ms_per_member_step"][key]
        line = (f"| {label} | {ms['matrix products']:.1f} | {ms['adam']:.1f} | {ms['casts and copies']:.1f} | "
                f"{ms['other']:.1f} | {ms['all']:.1f} | {profile['matrix_products_gflops'][key]:.0f} |")
        assert line in doc, line
    for name in ("2026-12-02-epyc-converged-table-time.jsonl", "2026-12-07-epyc-zen3-converged-table-time-fp32.jsonl"):
        projection = benchmark_json(name)
        assert f"(`{name}`)" in doc
        if "zen3" in name:  # the float32 projection of the CPU without bf16 instructions
            assert projection["precision"] == "fp32" and "(no bf16 instructions)" in projection["hardware"]
        assert f"{projection['projected_hours_2_workers']:.1f} on two workers" in doc
        step, per_image, hours = (projection[key] for key in ("seconds_per_group_step", "eval_seconds_per_test_image",
                                                               "projected_hours_per_group"))
        for group, label in (("jmvae-kl x9", "JMVAE-kl x9 (α 0.01, 0.1, 1 × 3 seeds)"), ("jmvae-zero x3", "JMVAE-zero x3"),
                             ("cmma x3", "CMMA x3"), ("cvae x3", "CVAE x3"), ("vae x3", "VAE x3")):
            line = f"| {label} | {step[group]:.4f} | {per_image[group]:.4f} | {hours[group]:.2f} |"
            assert line in doc, line
        assert f"In all {projection['projected_hours_one_worker']:.1f} hours" in doc
    one_thread = benchmark_json("2026-12-07-epyc-zen3-converged-table-time-fp32.jsonl")
    two_threads = benchmark_json("2026-12-07-epyc-zen3-converged-table-time-fp32-2-threads.jsonl")
    assert two_threads["threads"] == 2 and two_threads["precision"] == "fp32"
    step, single = (p["seconds_per_group_step"]["jmvae-kl x9"] for p in (two_threads, one_thread))
    assert f"{step:.4f} s, {single / step:.2f}x faster than one thread" in doc
    assert f"({one_thread['projected_hours_2_workers']:.1f} hours against {two_threads['projected_hours_one_worker']:.1f})" in doc
    cvae = json.loads(CONVERGED.read_text())["models"]["cvae"]["per_seed"]
    assert (f"{cvae['0']['train_seconds']:,.0f} and\n{cvae['1']['train_seconds']:,.0f} s of training" in doc
            and f"{cvae['0']['eval_seconds']:.0f} and {cvae['1']['eval_seconds']:.0f} s of\nevaluation" in doc)


def test_every_benchmark_script_is_listed_in_the_benchmarks_readme():
    listing = (ROOT / "benchmarks" / "README.md").read_text()
    scripts = sorted(p.name for p in (ROOT / "benchmarks").iterdir() if p.suffix in (".py", ".sh"))
    assert [name for name in scripts if f"`{name}`" not in listing] == []


def test_the_evaluation_profile_quotes_its_committed_measurement():
    doc = (ROOT / "docs" / "benchmarks.md").read_text()
    lines = (ROOT / "benchmarks" / "results" / "2026-12-02-epyc-eval-profile.jsonl").read_text().splitlines()
    for entry in map(json.loads, lines):
        label = {"jmvae-kl": "JMVAE-kl", "vae": "VAE"}[entry["model"]]
        line = (f"| {label} | {entry['seconds_per_test_image']:.4f} | {entry['gflop_per_test_image']:.2f} | "
                f"{100 * entry['products_share_of_wall_time']:.0f} % | {entry['products_gflops']:.1f} | "
                f"{entry['mm_2500x512x512_gflops']:.1f} |")
        assert line in doc, line


CONVERGED = ROOT / "results" / "mnist-converged" / "table1.json"
CONVERGED_LABELS = {"vae": "VAE", "cvae": "CVAE", "cmma": "CMMA", "jmvae-zero": "JMVAE-zero",
                    **{f"jmvae-kl(alpha={a})": f"JMVAE-kl(α={a})" for a in ("0.01", "0.1", "1")}}


def converged_line(name: str, row: dict) -> str:
    """The README's converged-table line for a stored row: each cell's mean over seeds (± their
    standard deviation when there are several), its training precision, the paper's Table 3 cell,
    accuracy and coherence."""
    from jmvae.experiments.table1.references import PAPER_TABLE_3

    ll = row["log_likelihood"]
    spread = (row.get("seed_std") or {}).get("log_likelihood")

    def cell(read) -> str:
        value = read(ll)
        if value is None:
            return "—"
        sd = read(spread) if spread else None
        return f"{value:.2f}" + (f" ± {sd:.2f}" if sd is not None else "")

    seeds = ", ".join(map(str, row.get("seeds") or [row["seed"]]))
    cells = [cell(lambda c: c["image"]["multiple"]), cell(lambda c: c["image"]["single"]),
             cell(lambda c: c["image|label"]["multiple"]), cell(lambda c: c["image|label"]["single"]),
             cell(lambda c: c["joint"])]
    paper = f"{PAPER_TABLE_3[name]:.2f}" if name in PAPER_TABLE_3 else "—"
    accuracy = row["accuracy"].get("label|image")
    coherence = (row.get("coherence") or {}).get("image|label")
    return (f"| {CONVERGED_LABELS[name]} | {seeds} | {row['protocol']['train_precision']} | {' | '.join(cells)} | {paper} | "
            f"{'—' if accuracy is None else f'{accuracy:.4f}'} | {'—' if coherence is None else f'{coherence:.3f}'} |")


def test_readme_converged_table_is_the_committed_measurement():
    """Every row of results/mnist-converged/table1.json is in the README's converged table as
    measured (rounded as shown), and the table has no other row."""
    models = json.loads(CONVERGED.read_text())["models"]
    section = README[README.index("## Table 1 at convergence"):README.index("## Table 1, reproduced")]
    shown = re.findall(r"^\| (VAE|CVAE|CMMA|JMVAE-\S+) \|", section, flags=re.M)
    assert sorted(shown) == sorted(CONVERGED_LABELS[name] for name in models)
    for name, row in models.items():
        assert row["protocol"]["steps"] == 300_000 and row["protocol"]["warmup"] == 100
        assert converged_line(name, row) in section, converged_line(name, row)


def test_the_emulated_bf16_section_quotes_its_measurement():
    """docs/benchmarks.md's bf16-without-bfloat16-instructions table is its committed JSON, rounded as shown."""
    doc = (ROOT / "docs" / "benchmarks.md").read_text()
    path = ROOT / "benchmarks" / "results" / "2026-12-02-epyc-avx2-bf16-emulated.jsonl"
    rows = {r["config"]["precision"]: r for r in map(json.loads, path.read_text().splitlines())}
    assert all("(no bf16 instructions)" in r["hardware"] for r in rows.values())
    for precision, r in rows.items():
        line = f"| {precision} | {r['train_samples_per_s']:.0f} | {r['eval_samples_per_s']:.0f} |"
        assert line in doc, line
    train, evaluate = (rows["fp32"][k] / rows["bf16"][k] for k in ("train_samples_per_s", "eval_samples_per_s"))
    assert f"Training is {train:.1f}x slower in bf16 and evaluation {evaluate:.1f}x" in doc
