"""Do likelihood features of two or three LMs together generalize better than the best LM alone?

A pre-registered check on the fixed sample's cached LM passes (``bench/lmcache``, written by
``bench/generalization_pair.py``): SmolLM2-135M is the strongest of the feature sets on the old domains
(LODO xsum, squad) and Qwen-1.5B on the 2024 generators and on non-English humans, so their seven statistics
side by side might hold up on both. The candidates and the rule were fixed before the confirmation chunks
were read:

- candidates: ``smollm2 + qwen-1.5b``, ``smollm2 + qwen-0.5b + qwen-1.5b``, ``smollm2 + qwen-1.5b + binoculars``
  (its two terms), each the shipped closed-form head on the concatenated statistics (a linear head can form
  the difference of two LMs' mean log-probabilities, the tokenizer-free cousin of Binoculars);
- rule: on the development chunks (``--chunks 1:54``) pick the candidate with the highest mean held-out AUROC
  over the twelve columns of ``generalization_pair``'s table; report it against the SmolLM2 baseline and the
  recommended Qwen-1.5B features on the confirmation chunks (``--chunks 55:125``), which nothing here was
  tuned on. Each part is fitted and tested within its own chunks (the same splits as the main table).

Round 2 (``--round 2``, registered in session 10 while gemma-3-270m's pass over the fixed sample was running,
before any of it past chunk 1 was read; the 858-text table of session 6, a different and partly overlapping
sample, had shown gemma the best feature set on the old domains and the weakest on 2024 generators):

- candidates: ``gemma-270m features``, ``gemma + qwen-1.5b`` and ``gemma + qwen-1.5b + binoculars`` (its two
  terms), the same head; gemma is a multilingual base model and Qwen-1.5B the best on 2024 generators and
  non-English humans, so the two side by side might keep both strengths;
- rule: the same choice on chunks 1-54, reported on chunks 55-125 beside the SmolLM2 baseline and Qwen-1.5B;
- it would replace the recommended Qwen-1.5B features only if, on chunks 55-125, its mean AUROC over the twelve
  columns is at least 0.010 higher, it flags at most 2% of the non-English humans, and its highest held-out human
  FPR is at most one point above Qwen-1.5B's. Otherwise it is documented and not recommended.

Round 3 (``--round 3``, registered in session 12 before any of its candidates was fitted on any chunk; the
recommended detector is now round 2's ``gemma + qwen-1.5b``, whose head is ``fit_logistic`` with ``model.l2``
= 1.0, next to nothing beside the loss summed over 1,000-2,900 training texts):

- candidates: the same fourteen statistics with a stronger penalty, ``model.l2`` = 10, 100 and 1000. As the
  penalty grows the head's direction tends to each standardised statistic's class-mean difference, which
  ignores how the statistics co-vary in the training domains: a classic remedy when that covariance does not
  carry to a new domain or generator. A config value, so a winner ships without new code;
- rule: the same choice on chunks 1-54, and the same three conditions as round 2 on chunks 55-125, against
  ``gemma + qwen-1.5b`` at ``l2`` = 1.0 (the recommended detector).

Round 4 (``--round 4``, registered in session 12 while gemma's rank pass over the fixed sample ran, before
any of it was fitted; ``gemma_rank`` in ``bench/lmcache``: the log of each observed token's rank under
gemma-3-270m). Rank statistics (GLTR's top-k shares, DetectLLM's log-rank and log-likelihood log-rank
ratio) read where in the LM's ordering the text's tokens fall, not how much probability they get, which
may shift less across domains:

- candidates: ``gemma + qwen-1.5b + gemma ranks`` (the fourteen statistics and four of gemma's ranks: mean
  log-rank, the ratio of mean -log p to mean log-rank, the shares of tokens ranked first and in the top 10)
  and ``gemma ranks + qwen-1.5b`` (gemma's mean log p and its four rank statistics beside Qwen-1.5B's seven);
- rule: round 3's, against the recommended ``gemma + qwen-1.5b``.

Round 5 (``--round 5``, registered in session 14 before any of its candidates was fitted on any chunk). Rounds 1-4
changed the head's inputs and its penalty; none changed what the head is fitted to. Every text weighs the same
in its loss, so the training part's largest cells set its direction: in ``evo-cross`` the machine texts of
xsum and writing outnumber pubmed's almost three to one, and a few generators (gpt-2-era ones among them) hold
most machine texts. A head fitted so that each domain, and each generator within a domain, counts the same is
a cheap step toward the worst-group objective that leave-one-domain-out rewards, and it ships as a config value
(the training data carries ``domain`` and ``generator``):

- candidates: the fourteen statistics of ``gemma + qwen-1.5b`` at ``l2`` = 1.0 with the texts weighed so that
  (a) ``balanced domain x label``: every (domain, label) cell of the training part has the same total weight;
  (b) ``balanced domain x generator``: each domain's humans and each domain's machine texts have the same
  total weight, and a domain's machine weight is shared equally by its generators;
- rule: round 3's (the choice on chunks 1-54; on chunks 55-125 mean AUROC at least 0.010 above the
  recommended unweighted head, at most 2% of the non-English humans flagged, highest held-out human FPR at
  most one point above the recommended head's). The threshold rule is unchanged (the worst domain's humans,
  cross-fitted with the same weights).

Round 6 (``--round 6``, registered in session 14 while gemma's hidden-state pass over the fixed sample ran,
before any of it was fitted; ``gemma_hidden`` in ``bench/lmcache``: each text's gemma-3-270m hidden states
averaged over its tokens after <bos>, at the middle layer and after the last layer, float16). Rounds 1-5 read
only how likely the LMs find the tokens. A linear probe on the LM's internal representation reads what the
text is like to the LM, a different signal, which might hold up where likelihoods shift; it might as well learn
the training domains' topics, which leave-one-domain-out would show:

- candidates: ``gemma mid-layer probe, l2 = 100`` and ``l2 = 1000`` (the 640 averaged states of the middle layer
  under the same closed-form head), ``gemma last-layer probe, l2 = 1000``, and ``gemma + qwen-1.5b + gemma
  mid-layer, l2 = 100`` (the recommended fourteen statistics beside the 640 states);
- rule: round 3's, against the recommended ``gemma + qwen-1.5b`` at ``l2`` = 1.0.

Round 7 (``--round 7``, registered in session 14 after round 6's confirmation and before any of these was
fitted). Round 6's probe beside the fourteen statistics ranks far better (mean AUROC 0.921 against 0.833) but
its threshold does not carry: held-out domains' humans (pubmed 15.7%) and non-English humans (25.3%) score
above it. A probe of 640 free directions can place text unlike its training domains anywhere; two standard
ways to leave it fewer such directions:

- candidates: ``recommended + mid-layer without domain directions, l2 = 100`` (the span of the training
  part's per-domain means of its humans' states, at most one direction per domain, is projected out of every
  text's states before the head: what separates the training domains' human texts is topic, not authorship);
  ``recommended + 16 PCs of the mid-layer, l2 = 1`` (the states z-scored and reduced to their 16 principal
  components on the training part, all labels pooled, beside the fourteen statistics under the recommended
  penalty); and ``recommended + 16 PCs without domain directions, l2 = 1`` (both). Each transform is fitted on
  the training part's features and domains only, never its labels or the held-out part;
- rule: round 3's, against the recommended ``gemma + qwen-1.5b`` at ``l2`` = 1.0; round 6's choice is shown
  beside them for reference.

Round 8 (``--round 8``, registered in session 14 after round 7, before any of these was fitted). The probe
without Qwen: gemma alone costs about a fifth of Qwen-1.5B's forward, and a detector a team can afford to run
matters as much as the last point of AUROC:

- candidates: ``gemma + gemma mid-layer, l2 = 100`` (gemma's seven statistics and its 640 middle-layer states)
  and ``gemma + 16 PCs of gemma's mid-layer, l2 = 1`` (round 7's low-rank head on gemma's seven);
- rule: round 3's, against the recommended ``gemma + qwen-1.5b``; gemma's seven alone shown for reference.

Round 9 (``--round 9``, registered in session 15 before any of its candidates was fitted on any chunk). Rounds
6-8 showed the probe ranks far better than the statistics (0.921 against 0.833) and that its threshold does not
carry to humans of a domain or language it never saw. Two ways to set the threshold with that in view, neither
changing the probe's ranking much:

- a domain-held-out threshold: the training part's humans are scored, for the threshold only, by heads fitted
  without their domain (and the feature transform refitted without it), so the worst-domain 1% threshold is
  set on how the detector scores humans of a domain it has not seen; the head that scores the held-out part
  is the one fitted on the whole training part, as before (``calib`` "domains" in
  ``generalization_pair.fit_and_score``; the cost is one fit per training domain);
- agreement: the recommended head on the fourteen statistics and round 6's probe are both fitted and a text's
  score is the smaller of their two log-odds, so a text is flagged only when both say machine (the statistics
  flag 0% of the non-English humans); the threshold as before, or domain-held-out.

- candidates: ``recommended + mid-layer, l2 = 100, domain-held-out threshold``, ``recommended + 16 PCs without
  domain directions, l2 = 1, domain-held-out threshold``, ``agreement of recommended and recommended +
  mid-layer`` (the probe at ``l2`` = 100, the statistics' head at 1.0) and the same with a domain-held-out
  threshold; the recommended head with a
  domain-held-out threshold is shown for reference;
- choice on chunks 1-54: because the round is about thresholds, the candidate with the highest mean AUROC among
  those that flag at most 2% of the non-English humans and whose highest held-out human FPR is at most one point
  above the recommended detector's; if none does, the one with the lowest highest held-out human FPR;
- rule on chunks 55-125: round 3's, against the recommended ``gemma + qwen-1.5b`` with its usual threshold.

Round 10 (``--round 10``, registered in session 15 after round 9's confirmation and before any of these was
fitted). Every probe so far took its penalty from a grid read on the development chunks' held-out splits
(``l2`` = 100). Leave-one-domain-out within the training part picks the penalty for the question those splits
ask, how the head does on a domain it has not seen, without reading the held-out part:

- candidates: ``recommended + mid-layer, l2 by leave-one-domain-out (mean), domain-held-out threshold`` and
  ``recommended + mid-layer, l2 by leave-one-domain-out (worst), domain-held-out threshold``: for each ``l2`` in
  (10, 100, 1000) the head is fitted on the training part without each of its domains (those holding both
  labels, on both sides) and scored on that domain; the ``l2`` with the highest mean (or lowest) of those AUROCs
  is refitted on the whole training part (ties: the larger ``l2``); with fewer than two such domains, ``l2`` =
  100. The selection is redone inside every fit, the domain-held-out threshold's own fits included. Round 9's
  choice is shown for reference;
- choice on chunks 1-54 by round 9's rule; round 3's rule on chunks 55-125 against the recommended detector.

Round 11 (``--round 11``, registered in session 17 while Qwen-1.5B's hidden-state pass over the fixed sample
ran, before any candidate reading those states was fitted on any chunk). Round 10's choice is now the recommended
detector (``configs/text_lmfeatures_gemma_qwen15_probe_cut.yaml``: the fourteen statistics and gemma's
mid-layer states). Its held-out AUROC is lowest on pubmed and squad left out and on the newest generators. Qwen-1.5B
is that config's backbone, so its states cost no forward pass the detector does not already run, and a
1.5B model's states may hold what a 270M model's do not:

- reference: round 10's choice (``... (recommended, round 10)``, its threshold domain-held-out as shipped);
  round 9's choice (the same features at ``l2`` = 100) is shown for reference too;
- candidates, each the fourteen statistics plus states at ``l2`` = 100 (round 9's penalty: with 1,500-2,200
  features a leave-one-domain-out choice inside every domain-held-out refit costs about 30 times as many fits,
  hours on this machine), the threshold domain-held-out: ``+ qwen mid-layer``, ``+ qwen last-layer`` and
  ``+ gemma mid-layer + qwen mid-layer`` (the last needs two probes, which training does not build yet);
- choice on chunks 1-54 by round 9's rule against the reference; round 3's rule on chunks 55-125 against it.

Round 12 (``--round 12``, registered in session 18 before any of its candidates was fitted on any chunk; the one
look taken first: on chunks 1-54, round 3's statistics head fitted without pubmed scores pubmed at 0.74 AUROC
while single statistics reach 0.80-0.82 there, and its AUROC is 0.64 on the pubmed texts under 30 words against
0.85 on those of 30-60). Every training domain's texts are 100-150 words after the cut and pubmed's 20-50,
so anything in the statistics that scales with length reads pubmed's texts off the training support. Two such
remedies, shippable as a statistic variant and a training option:

- reference: round 10's choice (recommended); round 3's statistics at ``l2`` = 1.0 shown too;
- candidates: ``length-free statistics + gemma mid-layer, l2 by leave-one-domain-out`` (round 10's choice with
  each LM's Fast-DetectGPT sum divided by the square root of its tokens, ``combo_heads.base7_per_token``;
  nothing else of the fourteen grows with length); ``length-free statistics + gemma mid-layer + training crops,
  l2 by leave-one-domain-out`` (the same, each training text given twice, whole and as a crop of its first
  16-64 gemma tokens, the same share of Qwen's, drawn per text and seeded by its group; the crop's statistics
  are its own, its hidden states the whole text's, since the cache holds them pooled; ``combo_heads.
  crop_augmented_head``); and ``length-free statistics, l2 = 1`` (without the probe, against round 3's
  statistics); every threshold domain-held-out, as round 10's;
- choice on chunks 1-54 by round 9's rule against the reference; round 3's rule on chunks 55-125 against it.

Usage (no LM pass; seconds, minutes for round 6; `--unshared` adds evobench without shared sources)::

    .venv/bin/python bench/generalization_combos.py --chunks 1:54
    .venv/bin/python bench/generalization_combos.py --chunks 55:125 --json out.json
    .venv/bin/python bench/generalization_combos.py --round 2 --chunks 1:54
    .venv/bin/python bench/generalization_combos.py --round 2 --chunks 55:125 --chosen "gemma + qwen-1.5b" --json out.json
    .venv/bin/python bench/generalization_combos.py --round 3 --chunks 1:54
    .venv/bin/python bench/generalization_combos.py --round 3 --chunks 55:125 --chosen "<the choice>" --json out.json
    .venv/bin/python bench/generalization_combos.py --round 4 --chunks 1:54       # after the gemma_rank pass
    .venv/bin/python bench/generalization_combos.py --round 4 --chunks 55:125 --chosen "<the choice>" --json out.json
    .venv/bin/python bench/generalization_combos.py --round 5 --chunks 1:54
    .venv/bin/python bench/generalization_combos.py --round 5 --chunks 55:125 --chosen "<the choice>" --json out.json
    .venv/bin/python bench/generalization_combos.py --round 6 --chunks 1:54     # after the gemma_hidden pass
    .venv/bin/python bench/generalization_combos.py --round 6 --chunks 55:125 --chosen "<the choice>" --json out.json
    .venv/bin/python bench/generalization_combos.py --round 7 --chunks 1:54 --unshared
    .venv/bin/python bench/generalization_combos.py --round 7 --chunks 55:125 --chosen "<the choice>" --unshared --json out.json
    .venv/bin/python bench/generalization_combos.py --round 8 --chunks 1:54 --unshared
    .venv/bin/python bench/generalization_combos.py --round 8 --chunks 55:125 --chosen "<the choice>" --unshared --json out.json
    .venv/bin/python bench/generalization_combos.py --round 9 --chunks 1:54
    .venv/bin/python bench/generalization_combos.py --round 9 --chunks 55:125 --chosen "<the choice>" --unshared --json out.json
    .venv/bin/python bench/generalization_combos.py --round 10 --chunks 1:54
    .venv/bin/python bench/generalization_combos.py --round 10 --chunks 55:125 --chosen "<the choice>" --unshared --json out.json
    .venv/bin/python bench/generalization_combos.py --round 11 --chunks 1:54      # after the q15_hidden pass
    .venv/bin/python bench/generalization_combos.py --round 11 --chunks 55:125 --chosen "<the choice>" --unshared --json out.json
    .venv/bin/python bench/generalization_combos.py --round 12 --chunks 1:54
    .venv/bin/python bench/generalization_combos.py --round 12 --chunks 55:125 --chosen "<the choice>" --only-chosen --unshared --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import evo_overlap  # noqa: E402
import generalization_pair as gp  # noqa: E402
from combo_heads import (  # noqa: E402
    agreement_head,
    balanced_domain_generator,
    balanced_domain_label,
    base7_per_token,
    crop_augmented_head,
    crop_fraction,
    lodo_l2_head,
    probe_prep,
    rank4,
)
from fixed_sample import load_chunks  # noqa: E402
from generalization_pair import COLUMNS  # noqa: E402
from generalization_tokens import base7  # noqa: E402

ROUND3_L2 = (10.0, 100.0, 1000.0)


ROUND10_CHOICE = "recommended + mid-layer, l2 by leave-one-domain-out (mean), domain-held-out threshold"


def reference_name(round_: int) -> str:
    """The recommended detector a round's candidate is tested against."""
    if round_ >= 11:
        return "gemma + qwen-1.5b + gemma mid-layer, l2 by leave-one-domain-out (recommended, round 10)"
    return "gemma + qwen-1.5b (recommended)" if round_ >= 3 else "qwen-1.5b features (recommended)"


_HIDDEN = ("pair", "smollm2", "gemma", "gemma_hidden")
ROUND_PASSES: dict[int, tuple[str, ...]] = {  # the cached LM passes each round's sets read
    1: ("pair", "smollm2"), **dict.fromkeys((2, 3, 5), ("pair", "smollm2", "gemma")),
    4: ("pair", "smollm2", "gemma", "gemma_rank"), **dict.fromkeys((6, 7, 8, 9, 10, 12), _HIDDEN),
    11: (*_HIDDEN, "q15_hidden")}


Candidate = tuple[np.ndarray, float, "gp.Weigh | None", "gp.Prep | None", "gp.Head | None", str]


def candidate_sets(arrs: dict[str, list[np.ndarray]], round_: int = 1, groups: list[str] | None = None
                   ) -> dict[str, Candidate]:
    """The references and the pre-registered candidates of that round: name -> ((n, F) statistics, the
    head's ``l2``, how the training texts are weighed (None: all alike), the feature transform fitted on
    each training part (None: none), the head (None: the shipped linear one), how the threshold's training
    scores are cross-fitted ("groups" or "domains", ``generalization_pair.fit_and_score``)). ``groups``: the rows'
    groups, which round 12's crops are seeded by."""
    out: dict[str, Candidate] = {}
    defaults = (None, 1.0, None, None, None, "groups")
    for k, v in _sets(arrs, round_, groups).items():
        v = v if isinstance(v, tuple) else (v,)
        out[k] = (*v, *defaults[len(v):])
    return out


def _sets(arrs: dict[str, list[np.ndarray]], round_: int, groups: list[str] | None) -> dict[str, Any]:
    pair = arrs["pair"]
    s7 = np.asarray([base7(a) for a in arrs["smollm2"]])
    q05 = np.asarray([base7(a[:, 0:3]) for a in pair])
    q15 = np.asarray([base7(a[:, 3:6]) for a in pair])
    terms = [gp.pair_terms(a) for a in pair]
    bino = np.asarray([[t["binoculars"], t["xppl"]] for t in terms])
    sets = {"smollm2 features (baseline)": s7, "qwen-1.5b features (recommended)": q15}
    if round_ == 1:
        return {**sets, "smollm2 + qwen-1.5b": np.hstack([s7, q15]),
                "smollm2 + qwen-0.5b + qwen-1.5b": np.hstack([s7, q05, q15]),
                "smollm2 + qwen-1.5b + binoculars": np.hstack([s7, q15, bino])}
    g7 = np.asarray([base7(a) for a in arrs["gemma"]])
    if round_ == 2:
        return {**sets, "gemma-270m features": g7, "gemma + qwen-1.5b": np.hstack([g7, q15]),
                "gemma + qwen-1.5b + binoculars": np.hstack([g7, q15, bino])}
    gq = np.hstack([g7, q15])
    refs = {"smollm2 features (baseline)": s7, "qwen-1.5b features (previous)": q15, reference_name(3): gq}
    if round_ == 3:
        return {**refs, **{f"gemma + qwen-1.5b, l2 = {lam:g}": (gq, lam) for lam in ROUND3_L2}}
    if round_ == 11:
        return _round11(arrs, gq, refs)
    if round_ == 12:
        if groups is None:
            raise ValueError("round 12 needs the rows' groups (its crops are seeded by them)")
        return _round12(arrs, groups, gq, refs)
    if round_ == 10:
        gqm = np.hstack([gq, np.asarray([h[0] for h in arrs["gemma_hidden"]], dtype=float)])
        return {**refs, "recommended + mid-layer, l2 = 100, domain-held-out threshold (round 9)":
                    (gqm, 100.0, None, None, None, "domains"),
                ROUND10_CHOICE: (gqm, 100.0, None, None, lodo_l2_head(False), "domains"),
                "recommended + mid-layer, l2 by leave-one-domain-out (worst), domain-held-out threshold":
                    (gqm, 100.0, None, None, lodo_l2_head(True), "domains")}
    if round_ == 9:
        gqm = np.hstack([gq, np.asarray([h[0] for h in arrs["gemma_hidden"]], dtype=float)])
        f, agree = gq.shape[1], agreement_head(gq.shape[1])
        return {**refs, "recommended, domain-held-out threshold (reference)": (gq, 1.0, None, None, None, "domains"),
                "recommended + mid-layer, l2 = 100, domain-held-out threshold": (gqm, 100.0, None, None, None, "domains"),
                "recommended + 16 PCs without domain directions, l2 = 1, domain-held-out threshold":
                    (gqm, 1.0, None, probe_prep(f, True, 16), None, "domains"),
                "agreement of recommended and recommended + mid-layer": (gqm, 100.0, None, None, agree, "groups"),
                "agreement of recommended and recommended + mid-layer, domain-held-out threshold":
                    (gqm, 100.0, None, None, agree, "domains")}
    if round_ == 8:
        gm = np.hstack([g7, np.asarray([h[0] for h in arrs["gemma_hidden"]], dtype=float)])
        return {**refs, "gemma-270m features (reference)": g7, "gemma + gemma mid-layer, l2 = 100": (gm, 100.0),
                "gemma + 16 PCs of gemma's mid-layer, l2 = 1": (gm, 1.0, None, probe_prep(7, False, 16))}
    if round_ == 7:
        gqm = np.hstack([gq, np.asarray([h[0] for h in arrs["gemma_hidden"]], dtype=float)])
        f = gq.shape[1]
        return {**refs, "recommended + mid-layer, l2 = 100 (round 6)": (gqm, 100.0),
                "recommended + mid-layer without domain directions, l2 = 100": (gqm, 100.0, None, probe_prep(f, True)),
                "recommended + 16 PCs of the mid-layer, l2 = 1": (gqm, 1.0, None, probe_prep(f, False, 16)),
                "recommended + 16 PCs without domain directions, l2 = 1": (gqm, 1.0, None, probe_prep(f, True, 16))}
    if round_ == 6:
        mid = np.asarray([h[0] for h in arrs["gemma_hidden"]], dtype=float)
        last = np.asarray([h[1] for h in arrs["gemma_hidden"]], dtype=float)
        return {**refs, "gemma mid-layer probe, l2 = 100": (mid, 100.0), "gemma mid-layer probe, l2 = 1000": (mid, 1000.0),
                "gemma last-layer probe, l2 = 1000": (last, 1000.0),
                "gemma + qwen-1.5b + gemma mid-layer, l2 = 100": (np.hstack([gq, mid]), 100.0)}
    if round_ == 5:
        return {**refs, "gemma + qwen-1.5b, balanced domain x label": (gq, 1.0, balanced_domain_label),
                "gemma + qwen-1.5b, balanced domain x generator": (gq, 1.0, balanced_domain_generator)}
    gr = np.asarray([rank4(r, a) for r, a in zip(arrs["gemma_rank"], arrs["gemma"], strict=True)])
    return {**refs, "gemma + qwen-1.5b + gemma ranks": np.hstack([gq, gr]),
            "gemma ranks + qwen-1.5b": np.hstack([g7[:, :1], gr, q15])}


def _previous_named(refs: dict[str, Any]) -> dict[str, Any]:
    """Rounds 11-12: round 3's recommended statistics shown under the name of what they now are, the previous
    recommendation (round 10's choice is the reference)."""
    return {("gemma + qwen-1.5b statistics (previous)" if k == reference_name(3) else k): v for k, v in refs.items()}


def _round11(arrs: dict[str, list[np.ndarray]], gq: np.ndarray, refs: dict[str, Any]) -> dict[str, Any]:
    """Round 11: Qwen-1.5B's pooled states (middle, last layer) beside the fourteen statistics at ``l2`` = 100,
    against round 10's choice (``l2`` by leave-one-domain-out); every threshold is domain-held-out."""
    gmid = np.asarray([h[0] for h in arrs["gemma_hidden"]], dtype=float)
    qmid = np.asarray([h[0] for h in arrs["q15_hidden"]], dtype=float)
    qlast = np.asarray([h[1] for h in arrs["q15_hidden"]], dtype=float)
    gqg = np.hstack([gq, gmid])
    fixed = (100.0, None, None, None, "domains")
    refs = _previous_named(refs)
    return {**refs, reference_name(11): (gqg, 100.0, None, None, lodo_l2_head(False), "domains"),
            "recommended + mid-layer, l2 = 100, domain-held-out threshold (round 9)": (gqg, *fixed),
            "recommended statistics + qwen mid-layer": (np.hstack([gq, qmid]), *fixed),
            "recommended statistics + qwen last-layer": (np.hstack([gq, qlast]), *fixed),
            "recommended statistics + gemma mid-layer + qwen mid-layer": (np.hstack([gq, gmid, qmid]), *fixed)}


def _round12(arrs: dict[str, list[np.ndarray]], groups: list[str], gq: np.ndarray, refs: dict[str, Any]
             ) -> dict[str, Any]:
    """Round 12: the statistics without their length (each Fast-DetectGPT sum per sqrt(token)), with and without
    training crops, against round 10's choice; every threshold domain-held-out."""
    gmid = np.asarray([h[0] for h in arrs["gemma_hidden"]], dtype=float)
    gem, q15 = arrs["gemma"], [a[:, 3:6] for a in arrs["pair"]]
    free = np.asarray([base7_per_token(g) + base7_per_token(q) for g, q in zip(gem, q15, strict=True)])
    crops = []
    for g, q, grp in zip(gem, q15, groups, strict=True):
        f = crop_fraction(grp, len(g))
        crops.append(base7_per_token(g[:max(2, round(f * len(g)))]) + base7_per_token(q[:max(2, round(f * len(q)))]))
    whole, cropped = np.hstack([free, gmid]), np.hstack([np.asarray(crops), gmid])
    lodo = lodo_l2_head(False)
    refs = _previous_named(refs)
    return {**refs, reference_name(12): (np.hstack([gq, gmid]), 100.0, None, None, lodo, "domains"),
            "length-free statistics + gemma mid-layer, l2 by leave-one-domain-out": (whole, 100.0, None, None, lodo, "domains"),
            "length-free statistics + gemma mid-layer + training crops, l2 by leave-one-domain-out":
                (np.hstack([whole, cropped]), 100.0, None, None, crop_augmented_head(whole.shape[1], lodo), "domains"),
            "length-free statistics, l2 = 1": (free, 1.0, None, None, None, "domains")}


def recommend(table: dict[str, dict[str, Any]], name: str, round_: int = 2) -> dict[str, bool]:
    """Rounds 2 and 3's pre-registered test of candidate ``name`` against the recommended detector."""
    c, r = summary(table[name]), summary(table[reference_name(round_)])
    tests = {"mean AUROC >= recommended + 0.010": c["mean_auroc"] >= r["mean_auroc"] + 0.010,
             "non-English humans flagged <= 2%": c["languages_fpr"] <= 0.02,
             "max held-out human FPR <= recommended + 1 point": c["max_human_fpr"] <= r["max_human_fpr"] + 0.01}
    return {**tests, "replaces the recommendation": all(tests.values())}


def choose(table: dict[str, dict[str, Any]], candidates: list[str], round_: int) -> str:
    """The candidate a round picks on the development chunks: the highest mean AUROC; from round 9 on, the
    highest among those meeting the rule's two FPR conditions, else the lowest highest held-out human FPR."""
    if round_ < 9:
        return max(candidates, key=lambda k: summary(table[k])["mean_auroc"])
    ok = [k for k in candidates if all(v for t, v in recommend(table, k, round_).items() if "FPR" in t or "flagged" in t)]
    if ok:
        return max(ok, key=lambda k: summary(table[k])["mean_auroc"])
    return min(candidates, key=lambda k: summary(table[k])["max_human_fpr"])


def summary(res: dict[str, Any]) -> dict[str, float]:
    """Mean and minimum held-out AUROC over the twelve columns, and the highest held-out human FPR."""
    aucs = [res[c]["auroc"] for c in COLUMNS]
    return {"mean_auroc": float(np.mean(aucs)), "min_auroc": float(np.min(aucs)),
            "max_human_fpr": float(max(res[c]["fpr"] for c in COLUMNS)),
            "languages_fpr": float(res["languages (humans)"]["fpr"])}


def print_unshared(rows: list[dict[str, Any]], sets: dict[str, Candidate], table: dict[str, dict[str, Any]]) -> None:
    """The evobench columns again without the pairs that share a source text with the older sets; stored in
    ``table[name]["unshared"]``."""
    n = len(evo_overlap.shared_groups(rows))
    print(f"\nevobench without the {n} pairs whose human text shares >= {evo_overlap.SHARE:.0%} of its 8-grams "
          "with an older-set text (AUROC):")
    for name, (x, l2, weigh, prep, head, _) in sets.items():
        cells = evo_overlap.unshared_cells(rows, x, l2, weigh, prep, head)
        table[name]["unshared"] = cells
        print(f"{name:46s} " + "  ".join(f"{c.replace('evo-', '')} {v['auroc']:.3f}" for c, v in cells.items()))
    first = next(iter(cells.values()))
    print(f"(evo-cross: {first['humans']} humans, {first['machine']} machine texts)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", default="1:54", help="first:last chunk, 1-based and inclusive")
    ap.add_argument("--round", type=int, choices=sorted(ROUND_PASSES), default=1, help="which pre-registered candidates")
    ap.add_argument("--chosen", default="", help="the candidate chosen on the development chunks (rounds 2-3's rule "
                                                 "is applied to it; default: the best on these chunks)")
    ap.add_argument("--only-chosen", action="store_true", help="fit only --chosen and the references (the rule "
                    "compares nothing else; saves the other candidates' fits on the confirmation chunks)")
    ap.add_argument("--unshared", action="store_true", help="also score the evobench splits without the pairs whose "
                    "human text shares a source with the older sets (bench/evo_overlap.py)")
    ap.add_argument("--cache-dir", default=str(REPO / "bench" / "lmcache"))
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    part = load_chunks(args.chunks, args.cache_dir, ROUND_PASSES[args.round])
    if part is None:
        return 2
    (first, last), rows, arrs = part
    sets = candidate_sets(arrs, args.round, [r["group"] for r in rows])
    candidates = [k for k in sets if not k.endswith(")")]  # references end with "(...)"
    if args.chosen and args.chosen not in candidates:
        raise SystemExit(f"--chosen {args.chosen!r} is not a candidate of round {args.round}: {candidates}")
    if args.only_chosen:
        if not args.chosen:
            raise SystemExit("--only-chosen needs --chosen")
        sets = {k: v for k, v in sets.items() if k == args.chosen or k.endswith(")")}
    table = {name: {"n": len(rows), "l2": l2, "calib": calib, **gp.evaluate_set(rows, x, l2, weigh, prep, head, calib)}
             for name, (x, l2, weigh, prep, head, calib) in sets.items()}
    print(f"chunks {first}..{last}: {len(rows)} texts")
    for name, res in table.items():
        s = summary(res)
        print(f"{name:36s} mean AUROC {s['mean_auroc']:.3f}  min {s['min_auroc']:.3f}  "
              f"max human FPR {100 * s['max_human_fpr']:.1f}%  6-language humans {100 * s['languages_fpr']:.1f}%")
    candidates = [k for k in candidates if k in table]
    best = choose(table, candidates, args.round)
    print(f"{'round 9' if args.round >= 9 else 'highest mean AUROC'}'s choice of the candidates on these chunks: {best}")
    tested = args.chosen or best
    verdict = recommend(table, tested, args.round) if args.round >= 2 else {}
    if verdict:
        print(f"the rule applied to {tested}" + ("" if args.chosen else " (pass --chosen on the confirmation chunks)"))
    for test, ok in verdict.items():
        print(f"  {test}: {'yes' if ok else 'no'}")
    print("\n" + gp.markdown_table(table))
    if args.unshared:
        print_unshared(rows, sets, table)
    if args.json:
        Path(args.json).write_text(json.dumps({"round": args.round, "chunks": [first, last], "n": len(rows),
                                               "best": best, "tested": tested, "verdict": verdict, "results": table,
                                               "summary": {k: summary(v) for k, v in table.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
