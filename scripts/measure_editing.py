"""How well each edit method carries a label change (docs/editing.md).

    python scripts/measure_editing.py RUN_DIR [RUN_DIR ...] [--n 500]

For each trained MNIST-like JMVAE run: fit the independent judge of ``jmvae.coherence`` on the
training images, take the first N test images, change each one's (predicted) label to the next
digit with each method of ``jmvae.editing``, and print the share the judge reads as the new digit.
"""

from __future__ import annotations

import argparse
import json

from jmvae.coherence import fit_judge
from jmvae.data import load_dataset
from jmvae.editing import EDIT_METHODS, label_edit_success
from jmvae.runs import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    judges = {}
    for run_dir in args.runs:
        loaded = load_run(run_dir)
        model, run = loaded.model, loaded.config
        name = run.data.name
        if name not in judges:
            data = load_dataset(name, args.data_dir)
            judge = fit_judge(data.train["image"], data.train["label"], data.test["image"], data.test["label"])
            judges[name] = (data, judge)
        data, judge = judges[name]
        images = data.test["image"][: args.n]
        result = {method: round(label_edit_success(model, judge, images, method), 4) for method in EDIT_METHODS}
        print(json.dumps({"run": run_dir, "model": model.config.display_name, "n": len(images),
                          "judge_test_accuracy": round(judge.test_accuracy, 4), "edit_success": result}))


if __name__ == "__main__":
    main()
