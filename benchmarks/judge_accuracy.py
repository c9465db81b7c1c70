"""The coherence judge's accuracy on the binarised MNIST test set, fitted on intensities or binary images.

    JMVAE_DATA=../shared/data python benchmarks/judge_accuracy.py

The judge (``jmvae.coherence.fit_judge``, seed 0, 5 epochs) judges binary draws of p(x|z) for
Bernoulli data; this prints the accuracy each way of fitting it reaches on the kind of input it
judges (the test set binarised once), and the fitting time on one thread.
"""

import os
import time

import torch

from jmvae.coherence import fit_judge
from jmvae.data import load_dataset

torch.set_num_threads(1)
data = load_dataset("mnist", os.environ.get("JMVAE_DATA"))
x, y, tx, ty = data.train["image"], data.train["label"], data.test["image"], data.test["label"]
for binary in (False, True):
    start = time.time()
    judge = fit_judge(x, y, tx, ty, seed=0, binary=binary)
    print("fitted on", "re-binarised images" if binary else "intensities", "- accuracy on the binarised test set",
          round(judge.test_accuracy, 4), f"({time.time() - start:.1f} s)")
