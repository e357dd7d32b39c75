"""CLEAM's headline setting by simulation: naive fairness measurement, CLEAM, and the scorer-card correction.

    python benchmarks/bench_cleam.py [--runs 1000] [--seed 0] [--audit-per-class 13825]

CLEAM (Teo, Abdollahzadeh, Cheung, "On Measuring Fairness in Generative Models", NeurIPS 2023) reports that
a highly accurate gender classifier (ResNet-18) still misjudges the gender distribution of StyleGAN2
(trained on CelebA-HQ) by 4.98%, and that CLEAM's correction brings the error to 0.62% (abstract; Table 2,
real generators, StyleGAN2 / Gender / ResNet-18). This benchmark rebuilds that setting by simulation and
measures the package's own correction (``metrics.scorer_card.build_card`` + ``metrics.result.measure``: the
maximum-likelihood / Rogan-Gladen correction with a bootstrap over the run's images and the card's rows).

**The paper's error is not an FD error.** CLEAM's headline numbers are the normalised error of the point
estimate of the first class's share: ``PE error = |p*_0 - p_hat_0| / p*_0`` (in %), ``p*_0`` the ground-truth
share of female images, ``p_hat_0`` the estimate (the authors' code: ``|(GT - mean) / GT|``). The fairness
discrepancy FD = ``||p - uniform||_2`` (``sqrt(2) |p_0 - 0.5|`` for two classes) is what the paper then
computes from ``p_hat``. The ``RESULT`` keys say ``fd_error_*`` (their names are fixed by the issue); their
values are the paper's quantity, the PE error in %, averaged over the runs, so that they compare with 0.62. The
table also gives the FD errors proper (absolute, and relative to the true FD) and the coverage of the true
FD by each method's 95% interval; ``coverage_ours`` is that coverage for the package's corrected FD.

One run (R runs, default 1,000, each seeded ``default_rng([seed, run])``):

* ``--batches`` s = 30 batches of ``--batch-size`` n = 1,000 generated images (30,000), each image truly
  female with probability ``p*_0`` = 0.642, read by a classifier that is right with probability
  ``alpha_0`` = 0.947 on women and ``alpha_1`` = 0.983 on men (each image flipped independently);
* an audit set of ``--audit-per-class`` real images of each gender (true labels known), read by the same
  classifier: the scorer card (``build_card``) and CLEAM's ``alpha_hat`` both come from it;
* naive (the baseline of the paper): ``p_hat_0`` = the mean of the batches' shares read female;
* CLEAM, simulated: its estimator as published and coded by the authors, ``(mu - (1 - alpha_1)) / (alpha_0
  + alpha_1 - 1)`` with ``mu``/``sigma`` the mean and std of the s batch shares and the interval
  ``(mu +- 1.96 sigma / sqrt(s) - (1 - alpha_1)) / (alpha_0 + alpha_1 - 1)``, with ``alpha_hat`` from the audit;
* ours: ``measure(..., card=card, metrics=["fd", "female_share"])`` on the 30,000 labels (one category,
  gender female/male): the corrected FD with its 95% interval, and the corrected female share.

Two further rows, not in the RESULT line: ours with a small audit (``--small-audit`` per class, default
1,000, the first images of each class of the same audit), and a domain shift: the classifier a little
worse on generated women than on the real audit (``alpha_0`` = 0.9407 on generated images, chosen so that
the naive mean is the paper's 0.610 = 0.642 x (1 - 4.98%)) while the card still says 0.947. A simulation
whose classifier errs on generated images exactly as on the audit (the main rows) is CLEAM's and the
card's own assumption; the paper's real-data residual (0.62%) also holds what that assumption misses.

Cost: 1,000 runs took 39 s (34 s of CPU, one core, under ``nice -n 15`` beside another benchmark) on the
project machine. Seed 0 gave coverage_ours 93.7% [92.0, 95.0], seed 1 96.3% [94.9, 97.3].
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.result import measure
from pytest_t2ibias.metrics.scorer_card import ScorerCard, build_card
from pytest_t2ibias.suites.loader import parse_suite

# --- The paper's setting (CLEAM, NeurIPS 2023) --------------------------------------------------------------
# Where each constant comes from. The paper's abstract was read (search corpus "pages", the NeurIPS text at
# object.cloud.sdsc.edu/.../on_measuring_fairness_in_generative_models__33e30266.txt); its tables could not be
# read there (the store returns only a page's opening), so the rest comes from the authors' code
# (github.com/Bearwithchris/CLEAM_code, Real_GAN/CLEAM/fairness_classifier_mturk_celebAHQ_StyleGAN_Resnet18.py,
# "the code" below) and from Table 2's StyleGAN2 / Gender entries as a leaderboard site (wizwand.com) lists
# them: CLEAM's point estimate 0.638 with point-estimate error 0.62.
#: Headline numbers, abstract: "4.98% -> 0.62% for StyleGAN2 w.r.t. Gender" (Table 2, real generators,
#: StyleGAN2 trained on CelebA-HQ, Gender, ResNet-18 classifier): the normalised point-estimate error of the
#: Baseline and of CLEAM, in %.
BASELINE_PUBLISHED_PCT = 4.98
CLEAM_PUBLISHED_PCT = 0.62
#: Ground truth p*_0, the share of female images of StyleGAN2 (hand-labelled): 0.642, from CLEAM's 0.638 at
#: 0.62% error (0.638 / (1 - 0.0062) = 0.642). Consistent with the rest: the Baseline at 4.98% is then
#: 0.642 (1 - 0.0498) = 0.610, and CLEAM's formula with the alphas below turns 0.610 into 0.6375 ~ 0.638.
#: (The code keeps a commented-out "StyleGAN2 10k" GT of 0.637032: CLEAM's 0.638 would be 0.16% off it.)
P_STAR_FEMALE = 0.642
#: ResNet-18's per-class accuracy on Gender (alpha_0 women = CelebA's Male == 0, alpha_1 men), measured by
#: the authors on real validation images: the code's ``attributeDict["Gender"]``.
ALPHA_FEMALE = 0.9471627486437613
ALPHA_MALE = 0.9829294755877035
#: s batches of n generated images per measurement: the code's ``numBatches = 30``, ``batchSize = 1000``
#: (CLEAM's interval uses sigma / sqrt(s), s = 30).
BATCHES = 30
BATCH_SIZE = 1000
#: Audit images per class: alpha_1 above is exactly 13589/13825, so the authors' validation split held
#: 13,825 men; alpha_0 has no denominator under 200,000, so the women's count is unknown and the audit here
#: is balanced, 13,825 of each (27,650 labelled real images).
AUDIT_PER_CLASS = 13825
#: The classifier's accuracy on *generated* women in the domain-shift row: the one that makes the naive mean
#: the paper's Baseline, 0.610 = p*_0 (1 - 4.98%), with alpha_1 unchanged.
ALPHA_FEMALE_SHIFTED = (P_STAR_FEMALE * (1 - BASELINE_PUBLISHED_PCT / 100) - (1 - P_STAR_FEMALE) * (1 - ALPHA_MALE)) / (
    P_STAR_FEMALE
)

TARGETS = {"error_pct": CLEAM_PUBLISHED_PCT, "coverage": 0.93}
Z95 = 1.959963984540054
SCORER = "resnet18-gender-sim"
CLASSES = ["female", "male"]

SUITE = parse_suite(
    {
        "name": "cleam-sim",
        "attributes": {
            "gender": {
                "rule": "most_hits",
                "groups": {
                    "female": {"terms": ["woman"], "phrases": ["a photo of a woman"]},
                    "male": {"terms": ["man"], "phrases": ["a photo of a man"]},
                },
            }
        },
        "categories": {
            "faces": {
                "prompts": ["A face generated by StyleGAN2 (CelebA-HQ)."],
                "attribute": "gender",
                "shares": {"female_share": "female"},
                "metrics": ["fd", "female_share"],
            }
        },
    },
    "bench_cleam",
)


def fd_of(p_female: float | np.ndarray) -> float | np.ndarray:
    """Fairness discrepancy of a two-class distribution: ||(p, 1 - p) - (1/2, 1/2)||_2."""
    return math.sqrt(2.0) * np.abs(np.asarray(p_female) - 0.5)


FD_TRUE = float(fd_of(P_STAR_FEMALE))


def fd_interval(low: float, high: float) -> tuple[float, float]:
    """An interval of the female share carried to FD (0 inside when it straddles parity)."""
    ends = fd_of(np.array([low, high]))
    return (0.0 if low <= 0.5 <= high else float(ends.min()), float(ends.max()))


@dataclass
class Method:
    """Per run: the female-share estimate, the FD estimate, and whether the 95% intervals held the truth."""

    p0: list[float] = field(default_factory=list)
    fd: list[float] = field(default_factory=list)
    fd_covered: list[bool] = field(default_factory=list)
    p0_covered: list[bool] = field(default_factory=list)
    fd_width: list[float] = field(default_factory=list)

    def add(self, p0: float, fd: float, fd_interval: tuple[float, float], p0_interval: tuple[float, float]) -> None:
        self.p0.append(p0)
        self.fd.append(fd)
        self.fd_covered.append(fd_interval[0] <= FD_TRUE <= fd_interval[1])
        self.p0_covered.append(p0_interval[0] <= P_STAR_FEMALE <= p0_interval[1])
        self.fd_width.append(fd_interval[1] - fd_interval[0])

    def pe_error(self) -> np.ndarray:
        """The paper's error per run: |p*_0 - p_hat_0| / p*_0, in %."""
        return 100 * np.abs(P_STAR_FEMALE - np.array(self.p0)) / P_STAR_FEMALE

    def fd_abs(self) -> np.ndarray:
        return np.abs(np.array(self.fd) - FD_TRUE)


def read(true_female: np.ndarray, u: np.ndarray, alpha_female: float, alpha_male: float) -> np.ndarray:
    """The classifier's reading (True: female): a woman is read right with probability alpha_female, a man
    with alpha_male; ``u`` the images' own uniforms."""
    return np.where(true_female, u < alpha_female, u >= alpha_male)


def audit_card(rng: np.random.Generator, per_class: int, small: int) -> tuple[ScorerCard, ScorerCard]:
    """The scorer card of a balanced audit of ``per_class`` real images per gender, and that of its first
    ``small`` images per gender."""
    true = np.repeat(np.array([True, False]), per_class)
    said = read(true, rng.random(2 * per_class), ALPHA_FEMALE, ALPHA_MALE)
    names = np.array(CLASSES)
    human, scorer = names[(~true).astype(int)], names[(~said).astype(int)]
    full = build_card(SCORER, "cleam-audit", {"gender": (human.tolist(), scorer.tolist())}, classes={"gender": CLASSES})
    first = np.r_[0:small, per_class : per_class + small]
    part = build_card(
        SCORER, "cleam-audit-small", {"gender": (human[first].tolist(), scorer[first].tolist())},
        classes={"gender": CLASSES},
    )  # fmt: skip
    return full, part


def ours(said_female: np.ndarray, card: ScorerCard, seed: int, out: Method) -> None:
    """The package's corrected FD and female share for the run's readings (engine and card as the plugin's)."""
    codes = np.where(said_female, 0, 1)
    data = CategoryData.from_columns(SUITE, "faces", "strict", labels=codes, label_names=CLASSES)
    result = measure(SUITE, data, model="stylegan2-sim", scorer=SCORER, card=card, metrics=["fd", "female_share"],
                     seed=seed)  # fmt: skip
    fd, share = result.metrics["fd"], result.metrics["female_share"]
    assert fd.interval is not None and share.interval is not None and result.raw_metrics is not None
    assert isinstance(fd.value, float) and isinstance(share.value, float)
    # the two corrected metrics come from the same corrected counts; the raw FD is the naive one
    assert abs(fd.value - fd_of(share.value)) < 1e-9, (fd.value, share.value)
    assert abs(result.raw_metrics["fd"].value - fd_of(said_female.mean())) < 1e-9
    out.add(share.value, fd.value, (fd.interval.low, fd.interval.high), (share.interval.low, share.interval.high))


def cleam(batch_shares: np.ndarray, card: ScorerCard, out: Method) -> None:
    """CLEAM's point and interval estimate (the authors' ``CLEAM`` function), alpha from the card's audit."""
    entry = card.attributes["gender"]
    a0, a1 = entry.sensitivity["female"].value, entry.sensitivity["male"].value
    assert a0 is not None and a1 is not None
    mu, sigma, s = float(batch_shares.mean()), float(batch_shares.std()), len(batch_shares)
    point = (mu - (1 - a1)) / (a0 + a1 - 1)
    low, high = ((mu + sign * Z95 * sigma / math.sqrt(s) - (1 - a1)) / (a0 + a1 - 1) for sign in (-1, 1))
    out.add(point, float(fd_of(point)), fd_interval(low, high), (low, high))


def naive(batch_shares: np.ndarray, out: Method) -> None:
    """The paper's Baseline: the mean of the batch shares, its interval mu +- 1.96 sigma / sqrt(s)."""
    mu, sigma, s = float(batch_shares.mean()), float(batch_shares.std()), len(batch_shares)
    low, high = mu - Z95 * sigma / math.sqrt(s), mu + Z95 * sigma / math.sqrt(s)
    out.add(mu, float(fd_of(mu)), fd_interval(low, high), (low, high))


def simulate(runs: int, seed: int, batches: int, batch_size: int, per_class: int, small: int) -> dict[str, Method]:
    rows = {
        name: Method() for name in ("naive", "cleam", "ours", "ours_small", "naive_shift", "cleam_shift", "ours_shift")
    }
    for run in range(runs):
        rng = np.random.default_rng([seed, run])
        card, small_card = audit_card(rng, per_class, small)
        n = batches * batch_size
        true_female = rng.random(n) < P_STAR_FEMALE
        u = rng.random(n)
        boot_seed = int(rng.integers(2**31))  # the engine's bootstrap, seeded per run
        said = read(true_female, u, ALPHA_FEMALE, ALPHA_MALE)
        shares = said.reshape(batches, batch_size).mean(axis=1)
        naive(shares, rows["naive"])
        cleam(shares, card, rows["cleam"])
        ours(said, card, boot_seed, rows["ours"])
        ours(said, small_card, boot_seed, rows["ours_small"])
        said_shift = read(true_female, u, ALPHA_FEMALE_SHIFTED, ALPHA_MALE)
        shift_shares = said_shift.reshape(batches, batch_size).mean(axis=1)
        naive(shift_shares, rows["naive_shift"])
        cleam(shift_shares, card, rows["cleam_shift"])
        ours(said_shift, card, boot_seed, rows["ours_shift"])
    return rows


def _wilson(hits: int, n: int) -> str:
    if n == 0:
        return "n/a"
    p = hits / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return f"{100 * p:5.1f}% [{100 * max(0.0, centre - half):.1f}, {100 * min(1.0, centre + half):.1f}]"


def _line(label: str, method: Method) -> str:
    e, fa = method.pe_error(), method.fd_abs()
    runs = len(method.p0)
    return (
        f"{label:34s} {e.mean():5.2f} +- {e.std():4.2f}   {np.mean(method.p0):.4f}   "
        f"{fa.mean():.4f} +- {fa.std():.4f}  {100 * fa.mean() / FD_TRUE:5.2f}   "
        f"{_wilson(int(np.sum(method.fd_covered)), runs):22s} {np.mean(method.fd_width):.4f}   "
        f"{_wilson(int(np.sum(method.p0_covered)), runs)}"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="simulated measurements (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the runs (default 0)")
    parser.add_argument("--batches", type=int, default=BATCHES, help=f"s, batches per run (default {BATCHES})")
    parser.add_argument(
        "--batch-size", type=int, default=BATCH_SIZE, help=f"n, images per batch (default {BATCH_SIZE})"
    )
    parser.add_argument("--audit-per-class", type=int, default=AUDIT_PER_CLASS,
                        help=f"audit images per gender (default {AUDIT_PER_CLASS})")  # fmt: skip
    parser.add_argument("--small-audit", type=int, default=1000, help="per gender, the small-audit row (default 1000)")
    args = parser.parse_args(argv)
    small = min(args.small_audit, args.audit_per_class)
    started = time.perf_counter()
    print("CLEAM headline setting (Teo et al., NeurIPS 2023; Table 2, StyleGAN2 / CelebA-HQ, Gender, ResNet-18)")
    constants = (
        ("p*_0 (female share, GT)", f"{P_STAR_FEMALE}", "Table 2: CLEAM's 0.638 at 0.62% error (see P_STAR_FEMALE)"),
        ("alpha_0 / alpha_1", f"{ALPHA_FEMALE:.4f} / {ALPHA_MALE:.4f}", "authors' code, attributeDict['Gender']"),
        ("s x n images per run", f"{args.batches} x {args.batch_size}", "authors' code, numBatches x batchSize"),
        ("audit images per class", f"{args.audit_per_class}", "alpha_1 = 13589/13825 in the authors' code"),
        ("published PE error", f"{BASELINE_PUBLISHED_PCT}% -> {CLEAM_PUBLISHED_PCT}%", "abstract; Table 2"),
        ("true FD", f"{FD_TRUE:.4f}", "sqrt(2) |p*_0 - 0.5|"),
    )
    for name, value, source in constants:
        print(f"  {name:24s} {value:18s} {source}")
    print(f"runs {args.runs}, seed {args.seed}")
    rows = simulate(args.runs, args.seed, args.batches, args.batch_size, args.audit_per_class, small)
    print()
    print("PE error = |p*_0 - p_hat_0| / p*_0 (the paper's error), mean +- std over runs; FD error = |FD_hat - FD*|")
    header = (
        f"{'':34s} {'PE err %':14s} {'mean p0':8s} {'FD abs error':17s} {'rel %':6s} "
        f"{'95% CI covers FD*':22s} {'width':9s}{'95% CI covers p*_0'}"
    )
    print(header)
    print(f"{'naive (Baseline), published':34s} {BASELINE_PUBLISHED_PCT:5.2f}")
    print(f"{'CLEAM, published':34s} {CLEAM_PUBLISHED_PCT:5.2f}")
    print(_line("naive (Baseline), simulated", rows["naive"]))
    print(_line("CLEAM, simulated (alpha of audit)", rows["cleam"]))
    print(_line("ours (scorer card), simulated", rows["ours"]))
    print(_line(f"ours, audit {small}/class", rows["ours_small"]))
    print(f"domain shift: alpha_0 on generated women {ALPHA_FEMALE_SHIFTED:.4f}, the card's {ALPHA_FEMALE:.4f}")
    print(_line("  naive (Baseline)", rows["naive_shift"]))
    print(_line("  CLEAM", rows["cleam_shift"]))
    print(_line("  ours", rows["ours_shift"]))
    naive_pct = float(rows["naive"].pe_error().mean())
    ours_pct = float(rows["ours"].pe_error().mean())
    coverage = float(np.mean(rows["ours"].fd_covered))
    same = np.allclose(rows["ours"].p0, rows["cleam"].p0, rtol=0, atol=1e-9)
    print(
        "for two classes the card's maximum-likelihood correction is CLEAM's inversion (same point estimate: "
        f"{'yes' if same else 'NO'}); the intervals differ: ours also resamples the audit"
    )
    print()
    ok = "ok" if ours_pct <= TARGETS["error_pct"] else "MISSED"
    print(f"ours PE error {ours_pct:.2f}% vs CLEAM's published {CLEAM_PUBLISHED_PCT}% (target <=: {ok})")
    ok = "ok" if coverage >= TARGETS["coverage"] else "MISSED"
    print(f"ours 95% FD interval covers the true FD in {100 * coverage:.1f}% of runs (target >= 93%: {ok})")
    print(f"done in {time.perf_counter() - started:.0f} s")
    print(
        f"RESULT fd_error_naive_pct={naive_pct:.2f} fd_error_ours_pct={ours_pct:.2f} "
        f"fd_error_cleam_published_pct={CLEAM_PUBLISHED_PCT} coverage_ours={100 * coverage:.1f}"
    )
    return {
        "fd_error_naive_pct": naive_pct,
        "fd_error_ours_pct": ours_pct,
        "fd_error_cleam_simulated_pct": float(rows["cleam"].pe_error().mean()),
        "coverage_ours": coverage,
        "coverage_ours_p0": float(np.mean(rows["ours"].p0_covered)),
        "fd_rel_error_naive_pct": float(100 * rows["naive"].fd_abs().mean() / FD_TRUE),
        "fd_rel_error_ours_pct": float(100 * rows["ours"].fd_abs().mean() / FD_TRUE),
    }


if __name__ == "__main__":
    main()
