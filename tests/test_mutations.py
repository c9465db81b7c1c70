"""Mutation check of the evaluation path: each plausible bug below must make a named test fail.

A test suite guards the reported numbers only if it fails when they go wrong. Each mutation is a
one-line edit of the library (the reparameterised draw, the importance weights, the chunked
log-sum-exp, the Bernoulli likelihood, the CMMA's prior, the product of experts, the cells of
``evaluate``); for each, a copy of ``src/`` is edited, and the tests that should notice are run on
the copy in a fresh interpreter. The mutation is *killed* when one of them fails. An edit whose
original text is no longer in the source fails here too, so the list follows the code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KNOWN = "tests/test_known_values.py"
ESTIMATORS = "tests/test_estimators.py"


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to src/jmvae
    original: str
    mutated: str
    killers: tuple[str, ...]  # test ids that must notice (at least one fails)


DRAW = "return dist.loc + dist.scale * standard_normal(dist._extended_shape(sample_shape), dist.loc, generator)"
EPS = "standard_normal(dist._extended_shape(sample_shape), dist.loc, generator)"
EXACT_JMVAE = f"{KNOWN}::test_jmvae_kl_cells_with_exact_encoders_equal_the_closed_form_for_any_k"
EXACT_CONDITIONAL = f"{KNOWN}::test_conditional_baselines_with_the_exact_posterior_equal_the_closed_form"
# with the exact posterior every weight equals the likelihood wherever z lands, so draws that
# miss the proposal are caught by its moments and by the poorer proposals' bounds
SAMPLER = (f"{ESTIMATORS}::test_seeded_samples_of_a_batched_gaussian_have_its_means_and_scales_per_datum",
           f"{KNOWN}::test_jmvae_cells_rise_with_k_and_stay_below_the_truth_with_poorer_proposals")

MUTATIONS = [
    Mutation("draw returns the noise alone", "distributions.py", DRAW, f"return {EPS}", SAMPLER),
    Mutation("draw forgets the scale", "distributions.py", DRAW, f"return dist.loc + {EPS}", SAMPLER),
    Mutation("draw uses the variance as scale", "distributions.py", DRAW, f"return dist.loc + dist.scale**2 * {EPS}",
             SAMPLER),
    Mutation("one noise draw shared by the whole batch", "distributions.py", DRAW,
             "return dist.loc + dist.scale * standard_normal(dist._extended_shape(sample_shape)[:1] + (1,) * "
             "(len(dist._extended_shape(sample_shape)) - 1), dist.loc, generator)",
             (f"{ESTIMATORS}::test_seeded_samples_are_independent_across_data_and_latent_dims",)),
    Mutation("weights drop the prior", "estimators.py", "log_ratio = model.prior(batch).log_prob(z) - proposal.log_prob(z)",
             "log_ratio = -proposal.log_prob(z)", (EXACT_JMVAE,)),
    Mutation("weights drop the proposal", "estimators.py", "log_ratio = model.prior(batch).log_prob(z) - proposal.log_prob(z)",
             "log_ratio = model.prior(batch).log_prob(z)", (EXACT_JMVAE,)),
    Mutation("log k of the last chunk", "estimators.py", "return {t: v - math.log(k) for t, v in totals.items()}",
             "return {t: v - math.log(s) for t, v in totals.items()}", (f"{EXACT_JMVAE}[600]",)),
    Mutation("chunks merged by max", "estimators.py", "torch.logaddexp(totals[t], part)", "torch.maximum(totals[t], part)",
             (f"{EXACT_JMVAE}[600]",)),
    Mutation("Bernoulli binary-only form", "likelihoods.py",
             "return F.logsigmoid(params * (2 * nearest - 1)).sum(-1) + (params * (flat - nearest)).sum(-1)",
             "return F.logsigmoid(params * (2 * flat - 1)).sum(-1)",
             ("tests/test_models.py::test_bernoulli_log_prob_of_intensities_is_minus_the_cross_entropy",)),
    Mutation("CMMA weighs by p(z) instead of p(z | w)", "models/cmma.py", "return self.prior_network(w)",
             "return super().prior(batch)", (EXACT_CONDITIONAL,)),
    Mutation("product of experts averages the means", "subsets.py",
             "mean = (precisions * means).sum(0) / precision", "mean = means.mean(0)",
             (f"{ESTIMATORS}::test_a_product_of_experts_is_sampled_with_its_precision_weighted_moments",)),
    Mutation("x|w adds log p(w)", "evaluation.py", 'out["x|w/multiple"] = both[names] - log_pw',
             'out["x|w/multiple"] = both[names] + log_pw', (EXACT_JMVAE,)),
    Mutation("single bound on x drawn from the joint encoder", "evaluation.py",
             'out["x/single"] = bounds([(x,)], (x,))[(x,)]\n        joint_from_w',
             'out["x/single"] = bounds([(x,)], names)[(x,)]\n        joint_from_w',
             (EXACT_JMVAE,)),
]


def run_tests_on(source: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(source), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-rf", "-p", "no:cacheprovider", "-n", "0", *tests]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def copy_of_source(tmp_path: Path) -> Path:
    target = tmp_path / "src"
    shutil.copytree(ROOT / "src", target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return target


@pytest.mark.slow
def test_the_killing_tests_pass_on_the_unmutated_source(tmp_path):
    """The control: on an untouched copy the same tests pass, and they import the copy."""
    source = copy_of_source(tmp_path)
    killers = tuple(sorted({t for m in MUTATIONS for t in m.killers}))
    result = run_tests_on(source, killers)
    assert result.returncode == 0, result.stdout[-3000:]
    where = subprocess.run([sys.executable, "-c", "import jmvae; print(jmvae.__file__)"], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(source)}, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(source)), where.stdout


@pytest.mark.slow
@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_mutation_is_killed(mutation, tmp_path):
    source = copy_of_source(tmp_path)
    path = source / "jmvae" / mutation.path
    text = path.read_text()
    assert text.count(mutation.original) == 1, f"{mutation.path} no longer holds {mutation.original!r}: update the list"
    path.write_text(text.replace(mutation.original, mutation.mutated))
    result = run_tests_on(source, mutation.killers)
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED ")]
    assert result.returncode == 1 and failed, f"mutation survived ({mutation.name}):\n{result.stdout[-3000:]}"
