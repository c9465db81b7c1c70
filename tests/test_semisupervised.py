"""The semi-supervised experiment (jmvae.experiments.semisupervised) end to end on the digits."""

from __future__ import annotations

import json

from jmvae.experiments import semisupervised


def test_the_experiment_trains_evaluates_resumes_and_tabulates_every_run(tmp_path, capsys):
    args = ["--data", "digits", "--out", str(tmp_path / "out"), "--epochs", "1", "--labels", "50",
            "--k", "2", "--n-prior", "4"]
    assert semisupervised.main(args) == 0
    table = json.loads((tmp_path / "out" / "semisupervised.json").read_text())
    assert sorted(table["runs"]) == ["labelled-only-50", "paired", "semi-50"]
    only, semi = table["runs"]["labelled-only-50"], table["runs"]["semi-50"]
    assert only["steps"] == semi["steps"] == table["runs"]["paired"]["steps"]  # the same steps for every run
    saved = json.loads((tmp_path / "out" / "runs" / "semi-50" / "config.json").read_text())
    assert saved["data"]["options"] == {"labelled": 50, "labelled_seed": 0}
    markdown = (tmp_path / "out" / "semisupervised.md").read_text()
    error = f"{100 * (1 - semi['accuracy']['label|image']):.2f}"
    assert f"| 50 | 50 labelled + {semi['n_full'] - 50:,} unlabelled | {error} |" in markdown
    capsys.readouterr()
    assert semisupervised.main(args) == 0  # measured already: nothing is trained again
    assert "training" not in capsys.readouterr().err
    assert semisupervised.main(args[:5] + ["2"] + args[6:] + ["--only", "semi-50"]) == 0  # further, one run
    assert "[semi-50] training to step" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "runs" / "semi-50" / "evaluation.json").read_text())["steps"] == 2 * semi["steps"]


def test_an_unknown_run_name_is_one_line_and_exit_2(tmp_path, capsys):
    assert semisupervised.main(["--data", "digits", "--out", str(tmp_path), "--only", "semi-7"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_committed_table_shows_what_the_docs_say():
    """docs/partial-data.md's reading of results/mnist-semisupervised, checked against its JSON."""
    from pathlib import Path

    table = json.loads((Path(__file__).parents[1] / "results" / "mnist-semisupervised" / "semisupervised.json").read_text())
    runs = table["runs"]
    assert sorted(runs) == sorted(["paired"] + [f"{kind}-{n}" for n in (100, 600, 1000, 3000)
                                                for kind in ("semi", "labelled-only")])
    error = {name: 100 * (1 - row["accuracy"]["label|image"]) for name, row in runs.items()}
    log_px = {name: row["log_likelihood"]["image"]["single"] for name, row in runs.items()}
    for n in (100, 600, 1000, 3000):
        assert log_px[f"semi-{n}"] > log_px[f"labelled-only-{n}"] + 5
        assert abs(log_px[f"semi-{n}"] - log_px["paired"]) < 2
        assert error[f"semi-{n}"] > error[f"labelled-only-{n}"]
        semi, only, paired = (runs[name]["log_likelihood"] for name in (f"semi-{n}", f"labelled-only-{n}", "paired"))
        assert only["joint"] < semi["joint"] < paired["joint"]
        assert only["image|label"]["multiple"] < semi["image|label"]["multiple"] < paired["image|label"]["multiple"]
    assert error["semi-3000"] - error["labelled-only-3000"] < 1.5 and error["paired"] < error["labelled-only-3000"]
    assert table["protocol"]["epochs"] == 10 and table["protocol"]["k"] == 100
