"""The paper's checkable claims about Table 1 (Suzuki et al. 2016, Section 5 and Appendix E), judged on measured rows.

Each claim is a conjunction of comparisons between cells (nats, higher is better), with two
margins: two log-likelihoods within ``SAME_NATS`` are "the same", and "much lower" or
"significantly" means by more than ``MUCH_NATS``. A claim holds when every comparison does; it
is *established* only when the rows it is judged on are neither collapsed (no active latent
unit) nor far from the paper's protocol, since a 2-epoch run or a 5-sample bound says nothing
about what the paper measured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jmvae.evaluation import Cells
from jmvae.experiments.table1.rows import cells, joint_active_units, judged_coherence, row_name

SAME_NATS = 0.5  # two log-likelihoods within this many nats count as "the same"
MUCH_NATS = 1.0  # "much lower" / "significantly" means by more than this many nats
RECOGNISABLE = 0.7  # images generated from a label are "recognisable" when the judge agrees this often
COLLAPSED = 0.5  # ... and "collapsed" when it agrees at most this often (chance: 1 / classes)

PAPER_PROTOCOL = {"epochs": 100, "k": 1000, "n_test": 10_000}  # Table 1: the authors' 100 epochs, all test images
FAR_FROM_PAPER = {"epochs": 20, "k": 100, "n_test": 1000}
"""Below these (a fifth of the paper's epochs, a tenth of its k and test images) a claim's verdict
is "not established": a 2-epoch run or a 5-sample bound says nothing about the paper's claims."""


def coherence_value(models: dict[str, Any], name: str) -> float | None:
    """The judged coherence of images generated from labels for row ``name`` (None if unmeasured)."""
    return judged_coherence(models.get(name) or {})


def judging_caveat(models: dict[str, Any], rows: list[str]) -> str | None:
    """Why the rows a claim is judged on cannot establish it, or None: a collapsed model (no
    active latent unit: its z carries nothing about the data, and images generated from a label
    are at chance), or a protocol far from the paper's (``FAR_FROM_PAPER``)."""
    judged = [name for name in rows if name in models]
    reasons = []
    collapsed = [name for name in judged if joint_active_units(models[name]) == 0]
    if collapsed:
        reasons.append(f"judged on collapsed models (0 active latent units: {', '.join(collapsed)})")
    gaps = []
    for key, minimum in FAR_FROM_PAPER.items():
        low = sorted({models[n][key] for n in judged if isinstance(models[n].get(key), (int, float)) and models[n][key] < minimum})
        if low:
            what = {"n_test": "test points"}.get(key, key)
            gaps.append(f"{what} {', '.join(f'{v:g}' for v in low)} (the paper's: {PAPER_PROTOCOL[key]:,})")
    if gaps:
        reasons.append("far from the paper's protocol: " + ", ".join(gaps))
    return "; ".join(reasons) or None


def claim_verdict(claim: dict[str, Any]) -> str:
    """What table1.md says of a claim: holds, does not hold, not established, not checked."""
    if claim["holds"] is None:
        return "not checked"
    if not claim.get("established", True):
        return "not established"
    return "holds" if claim["holds"] else "does not hold"


Part = tuple[str, Callable[..., bool], tuple[float | None, ...]]  # what is compared, the test, its values


def judged_claim(models: dict[str, Any], text: str, parts: list[Part], digits: int = 2,
                 rows: list[str] | None = None) -> dict[str, Any]:
    """One claim's entry: it holds when every part's test holds of its values; ``rows``: the
    models it compares (default: every row of the table), whose caveat it carries."""
    missing = [desc for desc, _, values in parts if any(v is None for v in values)]
    if missing:
        entry = {"claim": text, "holds": None, "evidence": "not measured yet: " + "; ".join(missing)}
        return {**entry, "verdict": claim_verdict(entry)}
    verdicts = [(desc, bool(test(*values)), values) for desc, test, values in parts]
    evidence = "; ".join(
        f"{desc}: {'yes' if ok else 'no'} ({', '.join(f'{v:.{digits}f}' for v in values)})" for desc, ok, values in verdicts
    )
    caveat = judging_caveat(models, list(models) if rows is None else rows)
    entry = {"claim": text, "holds": all(ok for _, ok, _ in verdicts), "established": caveat is None,
             "caveat": caveat, "evidence": evidence}
    return {**entry, "verdict": claim_verdict(entry)}


def check_claims(models: dict[str, Any]) -> list[dict[str, Any]]:
    """Each of the paper's claims on Table 1 with holds = True/False from the measured cells (None
    if unmeasured), ``established`` False (and a ``caveat``) when the rows it is judged on are
    collapsed or far from the paper's protocol (``judging_caveat``), and the ``verdict`` table1.md shows."""
    kl = {a: row_name("jmvae-kl", a) for a in (0.01, 0.1, 1.0)}
    measured: dict[str, Cells] = {name: cells(row) for name, row in models.items()}

    def of(name: str) -> Cells:
        return measured.get(name) or cells(None)

    def claim(text: str, parts: list[Part], digits: int = 2, rows: list[str] | None = None) -> None:
        claims.append(judged_claim(models, text, parts, digits, rows))

    claims: list[dict[str, Any]] = []
    zero = of("jmvae-zero")
    claim(
        "JMVAE-zero's log p(x) is the same as or slightly better than the VAE's.",
        [(f"best JMVAE-zero log p(x) >= VAE - {SAME_NATS} (zero multiple, zero single, VAE)",
          lambda m, s, v: max(m, s) >= v - SAME_NATS, (zero.x.multiple, zero.x.single, of("vae").x.single))],
        rows=["jmvae-zero", "vae"],
    )
    singles = [of(kl[a]).x.single for a in (0.01, 0.1, 1.0)]
    all_px = [v for c in measured.values() for v in (c.x.multiple, c.x.single) if v is not None]
    claim(
        "JMVAE-kl's log p(x) improves as alpha gets smaller; alpha = 0.01 with the single bound is the best "
        "log p(x) of Table 1; alpha = 1 is much lower.",
        [
            ("single bound decreasing in alpha (0.01, 0.1, 1)", lambda a, b, d: a > b > d, tuple(singles)),
            ("alpha=0.01 single is the best log p(x) (it, best of all)", lambda a, m: a >= m,
             (singles[0], max(all_px) if all_px else None)),
            (f"alpha=1 single < alpha=0.01 single - {MUCH_NATS} (1, 0.01)", lambda d, a: d < a - MUCH_NATS,
             (singles[2], singles[0])),
        ],
    )
    cvae = of("cvae").x_given_w.multiple
    others_xw = [v for name, c in measured.items() if name != "cvae"
                 for v in (c.x_given_w.multiple, c.x_given_w.single) if v is not None]
    cmma = of("cmma").x_given_w.multiple
    claim(
        "For log p(x|w), the CVAE is best; with the multiple bound, JMVAE-zero and JMVAE-kl (alpha < 1) beat the CMMA.",
        [
            ("CVAE >= every other log p(x|w) (CVAE, best other)", lambda a, b: a >= b,
             (cvae, max(others_xw) if others_xw else None)),
            ("JMVAE-zero multiple > CMMA", lambda a, b: a > b, (zero.x_given_w.multiple, cmma)),
            ("JMVAE-kl(0.01) multiple > CMMA", lambda a, b: a > b, (of(kl[0.01]).x_given_w.multiple, cmma)),
            ("JMVAE-kl(0.1) multiple > CMMA", lambda a, b: a > b, (of(kl[0.1]).x_given_w.multiple, cmma)),
        ],
    )
    kl_single = [of(kl[a]).x_given_w.single for a in (0.01, 0.1, 1.0)]
    claim(
        "JMVAE-zero with the single bound gives a much lower log p(x|w); JMVAE-kl improves it significantly, "
        "and more so as alpha grows.",
        [
            (f"zero single < zero multiple - {MUCH_NATS} (single, multiple)", lambda s, m: s < m - MUCH_NATS,
             (zero.x_given_w.single, zero.x_given_w.multiple)),
            (f"every JMVAE-kl single > zero single + {MUCH_NATS} (worst kl, zero)", lambda k, z: k > z + MUCH_NATS,
             (min(kl_single) if None not in kl_single else None, zero.x_given_w.single)),
            ("kl single increasing in alpha (0.01, 0.1, 1)", lambda a, b, d: a < b < d, tuple(kl_single)),
        ],
        rows=["jmvae-zero", *kl.values()],
    )
    joint_kl, joint_kl1 = of(kl[0.01]).joint, of(kl[1.0]).joint
    claim(
        "Joint log p(x,w): JMVAE-zero and JMVAE-kl are almost identical (zero slightly lower); large alpha lowers it.",
        [
            (f"|zero - kl(0.01)| <= {SAME_NATS} (zero, kl 0.01)", lambda z, k: abs(z - k) <= SAME_NATS, (zero.joint, joint_kl)),
            (f"kl(1) < kl(0.01) - {MUCH_NATS} (kl 1, kl 0.01)", lambda d, a: d < a - MUCH_NATS, (joint_kl1, joint_kl)),
        ],
        rows=["jmvae-zero", kl[0.01], kl[1.0]],
    )
    coh = {name: coherence_value(models, name) for name in ("jmvae-zero", *kl.values())}
    kl_coh = [coh[kl[a]] for a in (0.01, 0.1, 1.0)]
    claim(
        "Images generated from a label alone: sharp digits with JMVAE-kl, collapsed with JMVAE-zero (Appendix E).",
        [
            (f"every JMVAE-kl coherence >= {RECOGNISABLE} (0.01, 0.1, 1)", lambda *v: min(v) >= RECOGNISABLE, tuple(kl_coh)),
            (f"JMVAE-zero coherence <= {COLLAPSED}", lambda z: z <= COLLAPSED, (coh["jmvae-zero"],)),
        ],
        digits=3,
        rows=["jmvae-zero", *kl.values()],
    )
    claims.append({"claim": "On CelebA, JMVAE(-GAN) beats VAE-GAN, CVAE-GAN and CMMA-GAN.", "holds": None,
                   "evidence": "not an MNIST claim; needs the full CelebA set", "verdict": "not checked"})
    return claims
