"""Findings: what went wrong (or is about to), why, and what to change.

Everything here is a pure function of records, config and numbers, so it is easy to test and to
show. ``diagnose`` looks at one iteration (and the one before); ``pretraining_check`` looks at
the initial state and a preview of the first update before the user presses Step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from model.formatting import (
    format_count,
    format_number,
    format_product,
    format_range,
    format_share,
)

if TYPE_CHECKING:
    from model.config import TrainingConfig
    from model.record import StepRecord

SEVERITIES = ("error", "warning", "info")

#: |logit| beyond which float64 rounds σ to exactly 0 or 1 (float32: 16.6 / 88.7).
SATURATED_LOGIT = {"float64": 36.7, "float32": 16.7}
HIGH_DEAD_FRACTION = 0.8
LARGE_UPDATE_RATIO = 0.1
HUGE_UPDATE_RATIO = 1.0
TINY_UPDATE_RATIO = 1e-9
#: Maps of one iteration larger than the history's budget are said to take memory from this
#: size on (the training process holds about three times them; smaller ones are no risk).
LARGE_MAPS_BYTES = 64 * 2**20
LARGE_GRAD_NORM = 1e3
#: Every probability this close to 0.5: right or wrong by a hair, whatever the accuracy says.
AT_CHANCE = 0.01


@dataclass(frozen=True)
class Fix:
    """A suggested change of settings, applied in one click.

    ``changes`` maps ``TrainingConfig`` field names to new values; ``rewind_to`` (optional)
    first returns the session to that iteration so the change applies to the update that went
    wrong.
    """

    label: str
    changes: dict = field(default_factory=dict)
    rewind_to: int | None = None
    #: A "divide the learning rate" fix: offered only while it lowers the rate in use.
    lowers_rate: bool = False

    @property
    def needs_reset(self) -> bool:
        from model.config import LIVE_FIELDS

        return bool(set(self.changes) - LIVE_FIELDS)


@dataclass(frozen=True)
class Finding:
    """One diagnosis.

    Attributes
    ----------
    code : stable identifier ('dead_filter', 'raw_pixels', ...).
    severity : 'error', 'warning' or 'info'.
    title : one line.
    explanation : plain-language why, with the numbers of this run.
    fixes : suggested changes.
    iteration : the iteration this finding was made at.
    since : first iteration of a lasting condition (a dead filter), else None.
    subject : what it is about ('filter 0', 'conv layer', 'image 1', ...).
    pauses : a running session stops when this finding first appears.
    detail : this subject's numbers in one line, for one finding about several filters
        (``merge_alike``); not in ``to_dict``, the explanation says it all.
    """

    code: str
    severity: str
    title: str
    explanation: str
    fixes: tuple[Fix, ...] = ()
    iteration: int = 0
    since: int | None = None
    subject: str = ""
    pauses: bool = False
    detail: str = ""

    def to_dict(self) -> dict:
        """JSON-ready form (for snapshots, headless output and reports)."""
        return {
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "explanation": self.explanation,
            "iteration": self.iteration,
            "since": self.since,
            "subject": self.subject,
            "fixes": [
                {"label": f.label, "changes": _json_changes(f.changes), "rewind_to": f.rewind_to}
                for f in self.fixes
            ],
        }

    def to_text(self) -> str:
        """Readable multi-line form."""
        lines = [f"[{self.severity}] iteration {self.iteration}: {self.title}", self.explanation]
        lines += [f"  fix: {f.label}" for f in self.fixes]
        return "\n".join(lines)


def _json_changes(changes: dict) -> dict:
    return {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in changes.items()}


def sort_findings(findings) -> list[Finding]:
    """Newest first, then most severe first."""
    return sorted(findings, key=lambda f: (-f.iteration, SEVERITIES.index(f.severity)))


#: Filters listed one per line in a finding of several dead ones; more share the last line.
MERGED_DEAD_LINES = 4
#: Findings about one filter each that read as one card when several filters share them.
_MERGED_CODES = ("dead_filter", "mostly_dead")


def merge_alike(findings: Iterable[Finding]) -> list[Finding]:
    """``findings`` as a person reads them: findings of one iteration about several filters
    that only differ in the filter and its numbers (dead since the same update, or mostly
    dead) become one finding in the place of the first, with a line per filter. Everything
    else is kept as it is.

    For display only: the records, the finding log and the headless files keep a finding per
    filter (a group's membership changes as filters cross a threshold, one filter's does not).
    """
    shown: list = []  # findings, and groups of alike findings in the place of the first
    groups: list[list[Finding]] = []  # (Fix holds a dict: not hashable)
    for finding in findings:
        if finding.code not in _MERGED_CODES:
            shown.append(finding)
            continue
        group = next((g for g in groups if _alike(g[0], finding)), None)
        if group is None:
            groups.append([finding])
            shown.append(groups[-1])
        else:
            group.append(finding)
    return [item if isinstance(item, Finding) else _merged(item) for item in shown]


def _alike(a: Finding, b: Finding) -> bool:
    return (a.code, a.iteration, a.since, a.severity, a.fixes) == (
        b.code,
        b.iteration,
        b.since,
        b.severity,
        b.fixes,
    )


def _listed(numbers: list[int]) -> str:
    """ "0, 2 and 5–7": runs of three or more consecutive numbers as a range."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    names: list[str] = []
    for run in runs:
        names += [f"{run[0]}–{run[-1]}"] if len(run) >= 3 else [str(n) for n in run]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def _merged(group: list[Finding]) -> Finding:
    """One finding for the filters of ``group``; a group of one keeps its own words."""
    if len(group) == 1:
        return group[0]
    names = [finding.subject.removeprefix("filter ") for finding in group]
    listed = _listed([int(name) for name in names])
    first = group[0]
    if first.code == "dead_filter":
        lines = [f"• Filter {name}: {f.detail}" for name, f in zip(names, group, strict=True)]
        if len(lines) > MERGED_DEAD_LINES:
            # A card of sixteen such lines would push its fixes out of sight.
            rest = _listed([int(name) for name in names[MERGED_DEAD_LINES - 1 :]])
            lines[MERGED_DEAD_LINES - 1 :] = [
                f"• Filters {rest}: the same, each with its own numbers"
            ]
        if first.since == 0:
            lead = "They were dead from the start: the initial weights give no positive output."
        else:
            lead = f"The update of iteration {first.since} killed them (-learning rate × gradient)."
        notes = f" {_APPLIED_NOTE}" if any(_APPLIED_NOTE in f.explanation for f in group) else ""
        title = f"Filters {listed} are dead (since iteration {first.since})"
        explanation = (
            "Their ReLU outputs are 0 for every image at every position: each one's "
            "pre-activation is ≤ 0 everywhere. ReLU passes no gradient where its output is 0, "
            "so their gradients are exactly zero and no later update can revive them; the "
            f"classifier sees only zeros from them. {lead}{notes}\n" + "\n".join(lines)
        )
    else:
        lines = "\n".join(f"• {finding.title}" for finding in group)
        title = f"Filters {listed}: most of their ReLU outputs are zero"
        # What the last update's size says (the same for every filter of one iteration).
        risk = first.explanation.split(". ", 1)[1].replace("make it 0", "make any of them 0")
        explanation = (
            f"{lines}\nOnly a filter's positive outputs pass gradient back to it, so each of "
            f"these {len(group)} filters learns from a small share of the positions. {risk}"
        )
    return replace(
        first,
        title=title,
        explanation=explanation,
        subject=f"filters {', '.join(names)}",
        detail="",
    )


def finding_key(finding: Finding) -> tuple:
    """What makes two findings the same one: a filter that died at iteration 3 is one finding
    however many iterations report it."""
    return finding.code, finding.subject, finding.since


class FindingLog:
    """Every distinct finding of a run, kept as it first appeared."""

    def __init__(self) -> None:
        self._first: dict[tuple, Finding] = {}

    def add(self, findings: Iterable[Finding]) -> list[Finding]:
        """Log ``findings``; returns those that appeared for the first time."""
        new = []
        for finding in findings:
            key = finding_key(finding)
            if key not in self._first:
                self._first[key] = finding
                new.append(finding)
        return new

    def truncate_after(self, iteration: int) -> None:
        """Forget findings that first appeared after ``iteration`` (the run went back)."""
        self._first = {k: f for k, f in self._first.items() if f.iteration <= iteration}

    @property
    def findings(self) -> tuple[Finding, ...]:
        """In the order they appeared; within one iteration most severe first."""
        return tuple(
            sorted(self._first.values(), key=lambda f: (f.iteration, SEVERITIES.index(f.severity)))
        )


# ---------------------------------------------------------------------------------------------
# Fixes
# ---------------------------------------------------------------------------------------------


def fix_small_init() -> Fix:
    from model.init import InitSpec

    spec = InitSpec("normal", {"mean": 0.0, "std": 0.02})
    return Fix(
        "Initialise both layers with N(0, 0.02) and start again",
        {"conv_init": spec, "classifier_init": spec, "initial_weights": None},
    )


def fix_answer() -> Fix:
    """The answer's whole recipe (the 'recommended' preset's initialisation, pixels and
    learning rate): each fix of one cause alone leaves the others to fail next (N(0, 0.02) on
    raw pixels saturates the sigmoid; a learning rate small enough for raw pixels learns
    nothing), and the learner takes the first button for the fix."""
    from model.presets import PRESETS

    answer = PRESETS["recommended"].config
    init = answer.conv_init
    changes = {
        "conv_init": init,
        "classifier_init": answer.classifier_init,
        "initial_weights": None,
        "pixel_scaling": answer.pixel_scaling,
        "learning_rate": answer.learning_rate,
    }
    return Fix(
        f"Apply the answer's whole fix: N({init.params['mean']:g}, {init.params['std']:g}) "
        f"weights, pixels 0..1, learning rate {answer.learning_rate:g}, and start again",
        changes,
    )


def fix_answer_standardized() -> Fix:
    """The answer's recipe with zero-centred inputs: each channel standardised (mean 0, std 1
    over the dataset) instead of 0..1. With pixels 0..1 no input is negative, so a filter's
    pre-activations lean to the sign of its weights' sum and a filter can still die early;
    standardised, they take both signs. On the question it learned on all 8 seeds tried
    (the answer's fix on 5: it dies on 2), and a learner reported the same of their 12 images
    (all 8 seeds; the answer's fix 2)."""
    changes = {**fix_answer().changes, "pixel_scaling": "standardize"}
    return Fix(
        "Apply the answer's fix but with standardised pixels (each channel to mean 0, std 1), "
        "and start again",
        changes,
    )


def _answer_fixes(config: TrainingConfig | None) -> tuple[Fix, ...]:
    """The answer's whole fix and, unless the pixels are standardised already, its variant
    with standardised pixels, where the setup shows the question's causes of scale; none
    otherwise."""
    if config is None or not _scale_is_wrong(config):
        return ()
    if config.pixel_scaling == "standardize":
        # (The variant would change no pixels, only the weights and perhaps the rate, under a
        # label about the pixels: at rate 0.01, the same run as N(0, 0.02) alone.)
        return (fix_answer(),)
    return (fix_answer(), fix_answer_standardized())


def _scale_is_wrong(config: TrainingConfig) -> bool:
    """Whether the setup has one of the question's causes of scale: raw pixels, or filters
    that start all of one sign."""
    return config.pixel_scaling == "raw" or not config.conv_can_start_negative()


def fix_shuffle() -> Fix:
    return Fix("Shuffle the images every epoch and start again", {"shuffle": True})


def fix_unit_pixels() -> Fix:
    return Fix("Scale pixels to 0..1 and start again", {"pixel_scaling": "unit"})


def fix_learning_rate(learning_rate: float, factor: float, rewind_to: int | None = None) -> Fix:
    new_rate = learning_rate / factor
    where = f", from iteration {rewind_to}" if rewind_to is not None else ""
    return Fix(
        f"Divide the learning rate by {factor:g} (→ {new_rate:g}){where}",
        {"learning_rate": new_rate},
        rewind_to=rewind_to,
        lowers_rate=True,
    )


def fix_leaky_relu() -> Fix:
    return Fix("Use leaky ReLU (slope 0.01) and start again", {"activation": "leaky_relu"})


def fix_clip(clip_norm: float = 1.0, rewind_to: int | None = None) -> Fix:
    where = f", from iteration {rewind_to}" if rewind_to is not None else ""
    return Fix(
        f"Clip the gradient norm at {clip_norm:g}{where}", {"clip_norm": clip_norm}, rewind_to
    )


def _factor_for(ratio: float) -> float:
    """A power of ten that would bring an update-to-weight ratio near 1e-2 (at least 10)."""
    if not math.isfinite(ratio) or ratio <= 0:
        return 10.0
    return float(10 ** max(1, math.ceil(math.log10(ratio / 1e-2))))


# ---------------------------------------------------------------------------------------------
# Per-iteration diagnosis
# ---------------------------------------------------------------------------------------------


def _non_finite(
    record: StepRecord, previous: StepRecord | None, last_calm=None, config=None, start=None
) -> Finding | None:
    where = []
    for group_name, group in (("weights", record.params), ("gradients", record.grads)):
        if group is None:
            continue
        for key, value in group.items():
            if not np.all(np.isfinite(value)):
                where.append(f"{group_name} of {key}")
    if not np.all(np.isfinite(record.losses)):
        where.append("the loss")
    if not where:
        return None
    k = record.iteration
    dtype = record.params["conv.weight"].dtype
    # (first: an overflow that the initial weights made asks nothing of the history)
    initial = _initial_overflow(record, previous, start)
    if initial is None:
        explanation, fixes = _overflowed_update(record, previous, where, last_calm)
    else:
        explanation = (
            (
                f"The initial weights are finite numbers (the largest filter or classifier "
                f"weight {format_number(initial)}), but the logits they give overflow the "
                f"{dtype} range, so the loss "
                if math.isfinite(initial)
                else f"The initial weights overflow the {dtype} range themselves, so the loss "
            )
            + ("is not a finite number" if k == 0 else "was not a finite number at iteration 0")
            + ": the initialisation is far too large"
            + ("." if k == 0 else ", and every update from there is not a number either.")
            + " Nothing computed after this is meaningful, and no learning rate helps: start"
            " again from a small, zero-centred initialisation such as N(0, 0.02)."
        )
        fixes = (
            *_answer_fixes(config),
            fix_small_init(),
        )
    return Finding(
        code="non_finite",
        severity="error",
        title=f"NaN or infinity at iteration {k}",
        explanation=explanation,
        fixes=fixes,
        iteration=k,
        subject="all parameters",
        pauses=True,
    )


def _overflowed_update(
    record: StepRecord, previous: StepRecord | None, where: list[str], last_calm
) -> tuple[str, tuple[Fix, ...]]:
    """The explanation and fixes of a non-finite iteration that an update made: back to
    before it (or before the updates that ran away) with a smaller rate."""
    k = record.iteration
    dtype = record.params["conv.weight"].dtype
    rewind, factor = (k - 1 if k > 0 else None), 100.0
    before = math.nan if previous is None else previous.metrics.get("conv_update_ratio", math.nan)
    going_back = (
        f"The history up to iteration {max(k - 1, 0)} is intact: rewind there and continue with "
        "a smaller learning rate."
    )
    if math.isfinite(before) and before >= HUGE_UPDATE_RATIO:
        # Already exploding before it (weights of 1e149 in a UX pass): from there a smaller
        # rate overflowed again one update later, and the card offered the same fix again.
        # Back to the last iteration whose update was calm (a review: not to 0 when the rate
        # was raised live after 200 good iterations).
        calm = last_calm() if last_calm is not None else None
        rewind, factor = (calm or 0), max(factor, _factor_for(before))
        absmax = previous.metrics.get("conv_weight_absmax", math.nan)
        back_to = (
            "Start again from iteration 0"
            if rewind == 0
            else f"Go back to iteration {rewind}, the last whose update was smaller than the "
            "weights,"
        )
        going_back = (
            f"The updates before it were already larger than the weights ({format_number(before)}"
            f"× them at iteration {k - 1}, whose weights reach {format_number(absmax)}): going "
            f"back one iteration overflows again soon. {back_to} with a far smaller learning rate."
        )
    if where == ["the loss"]:
        # (a robustness pass: finite weights of 1e23 whose logits overflowed were said to be
        # an update that overflowed)
        largest = max(float(np.max(np.abs(value))) for value in record.params.values())
        cause = (
            f"At iteration {k} the weights are finite numbers (the largest {format_number(largest)}"
            f"), but the logits they give overflow the {dtype} range, so the loss is not a "
            "finite number: the weights have grown too large."
        )
    else:
        cause = (
            f"The update at iteration {k} produced values that are not finite numbers in "
            f"{', '.join(where)}: -learning rate × gradient overflowed the {dtype} range."
        )
    fixes = (
        fix_learning_rate(record.settings.learning_rate, factor, rewind),
        fix_clip(1.0, rewind),
    )
    return f"{cause} Nothing computed after this is meaningful. {going_back}", fixes


def _initial_overflow(record: StepRecord, previous: StepRecord | None, start=None) -> float | None:
    """The largest |initial weight| of a filter or the classifier when the run's initial
    weights already overflowed (the loss at iteration 0, and so every update after it), else
    None. A smaller learning rate cannot help then, and going back to iteration 0 went back to
    the overflow (a robustness pass: the ÷100 fix took click after click). ``start()`` gives
    iteration 0's metrics (None when not kept); asked only when the iteration before is not
    finite either."""
    if record.iteration == 0:
        metrics = record.metrics
    elif previous is not None and not math.isfinite(previous.loss) and start is not None:
        metrics = start()
        if metrics is None or math.isfinite(metrics["loss"]):
            return None
    else:
        return None
    return max(
        abs(float(metrics[name]))
        for name in ("conv_weight_absmax", "classifier_weight_min", "classifier_weight_max")
    )


#: Said of an update made with momentum or clipping.
_APPLIED_NOTE = (
    "(With momentum or clipping the applied update is not exactly -lr × gradient; the update "
    "shown is what was applied to the weights of the smallest and the largest gradient.)"
)


def _death_breakdown(record: StepRecord, filter_index: int, before: np.ndarray) -> tuple[str, str]:
    """How the update of ``record`` moved filter ``filter_index`` (for the iteration it died):
    a sentence, and its numbers in short."""
    grad = record.grads["conv.weight"][filter_index]
    update = record.update["conv.weight"][filter_index]
    after = record.params["conv.weight"][filter_index]
    lr = record.settings.learning_rate
    product = format_product(f"-{format_number(lr)}", grad, update)
    start, end = format_range(before.min(), before.max()), format_range(after.min(), after.max())
    text = (
        f"The update that killed it, at iteration {record.iteration}, was -learning rate × "
        f"gradient = {product}, which moved the filter weights from {start} to {end}."
    )
    if record.settings.momentum or record.clip_scale != 1.0:
        text += " " + _APPLIED_NOTE
    return text, f"weights {start} → {end}"


#: Between a dead filter's largest pre-activation and the update that killed it in its detail.
_DETAIL_SEPARATOR = "; "


def _dead_filters(
    record: StepRecord, previous: StepRecord | None, config: TrainingConfig
) -> list[Finding]:
    findings = []
    for f, since in enumerate(record.dead_since):
        if since is None:
            continue
        pre = record.pre_activation
        largest = "" if pre is None else format_number(pre[:, f].max())
        peak = f" (its largest pre-activation is {largest})" if largest else ""
        earlier = _previous_dead_finding(previous, f)
        if since == record.iteration and previous is not None and record.grads is not None:
            story, moved = _death_breakdown(record, f, previous.params["conv.weight"][f])
            fixes = _dead_filter_fixes(record, config, since)
        elif earlier is not None:
            text = earlier.explanation
            marker = "The update that killed it"
            story = text[text.index(marker) :] if marker in text else ""
            moved = earlier.detail.partition(_DETAIL_SEPARATOR)[2]
            fixes = earlier.fixes
        else:
            story = (
                "It was dead from the start: the initial weights give no positive pre-activation."
            )
            moved = ""
            fixes = _dead_filter_fixes(record, config, since)
        detail = f"largest pre-activation {largest}" if largest else "no maps at hand"
        if moved:
            detail += _DETAIL_SEPARATOR + moved
        explanation = (
            f"Filter {f}'s ReLU output is 0 for every image at every position: its "
            f"pre-activation is ≤ 0 everywhere{peak}. ReLU passes no gradient where its output "
            "is 0, so this filter's gradient is exactly zero and no later update can revive it; "
            "the classifier sees only zeros from it. " + story
        )
        findings.append(
            Finding(
                code="dead_filter",
                severity="error",
                title=f"Filter {f} is dead (since iteration {since})",
                explanation=explanation,
                fixes=fixes,
                iteration=record.iteration,
                since=since,
                subject=f"filter {f}",
                pauses=since == record.iteration,
                detail=detail,
            )
        )
    return findings


def _dead_filter_fixes(record: StepRecord, config: TrainingConfig, since: int) -> tuple[Fix, ...]:
    """Fixes for a filter that died at ``since`` (computed once, then carried forward).

    The answer's whole fix first where the setup shows its causes (then the same with
    standardised pixels), then each cause alone
    (all-positive weights, raw pixels); then a smaller learning rate from just before the
    fatal update, then leaky ReLU.
    """
    fixes = list(_answer_fixes(config))
    if not config.conv_can_start_negative():
        fixes.append(fix_small_init())
    if config.pixel_scaling == "raw":
        fixes.append(fix_unit_pixels())
    if since > 0:
        ratio = record.metrics.get("conv_update_ratio", math.nan)
        fixes.append(
            fix_learning_rate(
                record.settings.learning_rate, _factor_for(ratio), rewind_to=since - 1
            )
        )
    small = fix_small_init()
    if config.conv_can_start_negative() and any(
        getattr(config, name) != spec for name, spec in small.changes.items()
    ):
        fixes.append(small)
    fixes.append(fix_leaky_relu())
    return tuple(fixes)


def _previous_dead_finding(previous: StepRecord | None, filter_index: int) -> Finding | None:
    """The dead-filter finding of the iteration before, whose story and fixes carry forward."""
    if previous is None:
        return None
    for finding in previous.findings:
        if finding.code == "dead_filter" and finding.subject == f"filter {filter_index}":
            return finding
    return None


def _mostly_dead(record: StepRecord) -> list[Finding]:
    findings = []
    maps = record.activation
    outputs = None if maps is None else maps.shape[0] * maps.shape[2] * maps.shape[3]
    start = record.iteration == 0
    # A smaller rate only after an update What if would call "too large" (either layer's
    # update at least LARGE_UPDATE_RATIO of its weights' size): the answer's fix starts 98% at
    # 0 and its small updates revive it, while this card told a teacher's class to divide the
    # rate that learns by 10 (and What if called it "ok"). The ratios are whole layers', not
    # one filter's (a review).
    layer, ratio = "", math.nan
    if not start:
        layer, ratio = max(
            (
                ("conv layer", float(record.metrics["conv_update_ratio"])),
                ("classifier", float(record.metrics["classifier_update_ratio"])),
            ),
            key=lambda pair: -math.inf if math.isnan(pair[1]) else pair[1],
        )
    large = not start and not ratio < LARGE_UPDATE_RATIO  # (NaN too)
    if start:
        risk = (
            "No update has been made yet: the initial weights make it so. A large update in "
            "the wrong direction"
        )
    elif large:
        risk = (
            f"The last update moved the {layer}'s weights by {format_number(ratio)}× their "
            "size: one more such update in the wrong direction"
        )
    else:
        risk = (
            f"The last update was small (no layer's weights moved by more than "
            f"{format_number(ratio)} of their size), so the learning rate is not what to "
            "change; a large update in the wrong direction"
        )
    for f, fraction in enumerate(record.dead_fraction_per_filter):
        if record.dead_since[f] is not None or fraction < HIGH_DEAD_FRACTION:
            continue
        # A filter that is not dead has a positive output somewhere: never "100%" or "0.0%".
        share = format_share(1 - fraction)
        alive, passes = f"{share} of its outputs are", "they pass"
        if outputs is not None:
            count = round((1 - fraction) * outputs)
            alive = f"{count:,} of its {outputs:,} outputs ({share}) are"
            if count == 1:
                alive, passes = f"1 of its {outputs:,} outputs ({share}) is", "it passes"
        findings.append(
            Finding(
                code="mostly_dead",
                severity="warning",
                title=f"{format_share(fraction)} of filter {f}'s ReLU outputs are zero",
                explanation=(
                    f"Only {alive} positive, so only {passes} gradient back to filter "
                    f"{f}. {risk} can make it 0 everywhere (a dead filter)."
                ),
                # (Not a smaller rate before the first update: nothing was updated yet, and
                # whether the first update is too large has a card of its own. Offered there,
                # it undercut the answer's fix, whose rate learns: a newcomer pass.)
                fixes=(
                    *((fix_learning_rate(record.settings.learning_rate, 10),) if large else ()),
                    fix_leaky_relu(),
                ),
                iteration=record.iteration,
                subject=f"filter {f}",
            )
        )
    return findings


def _update_ratios(record: StepRecord) -> list[Finding]:
    if record.grads is None:
        return []
    findings = []
    lr = record.settings.learning_rate
    for layer, name in (("conv", "conv layer"), ("classifier", "classifier")):
        ratio = record.metrics[f"{layer}_update_ratio"]
        if not math.isfinite(ratio) or ratio >= LARGE_UPDATE_RATIO:
            severity = (
                "error" if not math.isfinite(ratio) or ratio >= HUGE_UPDATE_RATIO else "warning"
            )
            factor = _factor_for(ratio)
            findings.append(
                Finding(
                    code="large_update",
                    severity=severity,
                    title=(
                        f"The {name}'s update was {format_number(ratio)}× the size of its weights"
                    ),
                    explanation=(
                        f"‖update‖ / ‖weights‖ for the {name} was {format_number(ratio)} at "
                        f"iteration {record.iteration} (learning rate {format_number(lr)}). "
                        "Healthy training moves weights by about 0.1% per update (a ratio near "
                        "1e-3); a ratio near or above 1 replaces the weights instead of "
                        "adjusting them."
                    ),
                    fixes=(fix_learning_rate(lr, factor, rewind_to=record.iteration - 1),),
                    iteration=record.iteration,
                    subject=name,
                )
            )
        elif 0 < ratio < TINY_UPDATE_RATIO and layer == "conv" and not record.dead_filters:
            findings.append(
                Finding(
                    code="tiny_update",
                    severity="info",
                    title=f"The conv layer barely moved ({format_number(ratio)}× its weights)",
                    explanation=(
                        "The update is so small relative to the weights that training has "
                        "effectively stalled: either the loss is already near zero or the "
                        "learning rate is too low."
                    ),
                    fixes=(
                        Fix(
                            f"Multiply the learning rate by 10 (→ {lr * 10:g})",
                            {"learning_rate": lr * 10},
                        ),
                    ),
                    iteration=record.iteration,
                    subject=name,
                )
            )
    return findings


def _large_gradient(record: StepRecord, config: TrainingConfig) -> Finding | None:
    if record.grads is None:
        return None
    norm = record.metrics["conv_grad_norm"]
    if not math.isfinite(norm) or norm < LARGE_GRAD_NORM:
        return None
    cause = (
        " The inputs are raw 0..255 pixels, which make the filter's gradient hundreds of times "
        "larger than with 0..1 inputs."
        if config.pixel_scaling == "raw"
        else ""
    )
    fixes = [fix_clip(1.0)]
    ratio = record.metrics.get("conv_update_ratio", math.nan)
    if not ratio < LARGE_UPDATE_RATIO:
        # Only while the updates it makes are large: a smaller rate does not make the
        # gradient smaller, and with calm updates the card offered ÷10 at every other
        # iteration, for ever (a robustness pass).
        fixes.insert(0, fix_learning_rate(record.settings.learning_rate, 10))
    if config.pixel_scaling == "raw":
        fixes.insert(0, fix_unit_pixels())
    return Finding(
        code="large_gradient",
        severity="warning",
        title=f"Conv gradient norm is {format_number(norm)}",
        explanation=(
            f"The gradient of the loss with respect to the conv layer has norm "
            f"{format_number(norm)} at iteration {record.iteration}; the weights move by the "
            f"learning rate times this.{cause}"
        ),
        fixes=tuple(fixes),
        iteration=record.iteration,
        subject="conv layer",
    )


def _saturation(record: StepRecord, labels: np.ndarray, config: TrainingConfig) -> list[Finding]:
    limit = SATURATED_LOGIT[config.dtype]
    saturated = np.abs(record.logits) >= limit
    if not saturated.any():
        return []
    wrong = saturated & (record.predictions != labels)
    right = saturated & ~wrong
    findings = []
    if wrong.any():
        images = np.flatnonzero(wrong)
        i = int(images[0])
        findings.append(
            Finding(
                code="saturated_wrong",
                severity="warning",
                title=f"Confidently wrong: {format_count(len(images), 'image')} with a "
                "saturated sigmoid",
                explanation=(
                    # (numbered from 1, as the window and the reports number images)
                    f"Image {i + 1} (label {int(labels[i])}) has logit "
                    f"{format_number(record.logits[i])}, "
                    f"so the sigmoid rounds to exactly {record.probabilities[i]:.0f} in "
                    f"{config.dtype} and its loss is {format_number(record.losses[i])}. Its "
                    "gradient does not vanish: it is the full (p − y) = ±1 times the features, "
                    "so every update from it is as large as it can be."
                ),
                fixes=(*_answer_fixes(config), fix_small_init(), fix_unit_pixels())
                if config.pixel_scaling == "raw"
                else (fix_small_init(),),
                iteration=record.iteration,
                subject=f"image {i + 1}",
            )
        )
    if right.any():
        findings.append(
            Finding(
                code="saturated_right",
                severity="info",
                title=f"{format_count(int(right.sum()), 'image')} classified with a "
                "saturated sigmoid",
                explanation=(
                    "Their logits are so large that σ rounds to exactly 0 or 1: their loss and "
                    "gradient are (almost) zero and they no longer teach the network anything."
                    if right.sum() > 1
                    else "Its logit is so large that σ rounds to exactly 0 or 1: its loss and "
                    "gradient are (almost) zero and it no longer teaches the network anything."
                ),
                iteration=record.iteration,
                subject="classifier",
            )
        )
    return findings


def diagnose(
    record: StepRecord,
    previous: StepRecord | None,
    config: TrainingConfig,
    labels: np.ndarray,
    *,
    last_calm=None,
    start=None,
) -> tuple[Finding, ...]:
    """All findings of one iteration, most severe first.

    Parameters
    ----------
    record : the iteration to diagnose (its ``findings`` are ignored).
    previous : the iteration before (None for iteration 0); needed to tell when a filter died
        and what the update that killed it was.
    config : settings of the run.
    labels : (N,) labels of the dataset.
    last_calm : ``last_calm()`` gives the last iteration before ``record`` whose conv update
        was smaller than its weights (asked only when the run overflowed after updates larger
        than the weights: where a fix goes back to); None: iteration 0.
    start : ``start()`` gives the metrics of iteration 0, or None when they are not kept
        (asked only when the iteration before ``record`` was not finite either: whether the
        initial weights overflowed already).
    """
    non_finite = _non_finite(record, previous, last_calm, config, start)
    if non_finite is not None:
        return (non_finite,)
    findings = _dead_filters(record, previous, config)
    findings += _mostly_dead(record)
    findings += _update_ratios(record)
    large = _large_gradient(record, config)
    if large is not None:
        findings.append(large)
    findings += _saturation(record, labels, config)
    findings += _one_label(record, labels)
    findings += _loss_fell_dead(record, previous)
    findings += _at_chance(record)
    findings = one_learning_rate(findings, record.settings.learning_rate)
    return tuple(sorted(findings, key=lambda f: SEVERITIES.index(f.severity)))


def _loss_fell_dead(record: StepRecord, previous: StepRecord | None) -> list[Finding]:
    """The update that killed the last filters lowered the loss: said, for the Curves show
    the fall and a learner reads it as learning (the question's loss falls from about 10⁶ to
    0.72 as its filter dies)."""
    dead = record.dead_since
    if (
        previous is None
        or not dead
        or any(since is None for since in dead)
        or record.iteration not in dead
        or not record.loss < previous.loss
    ):
        return []
    bias = float(record.params["classifier.bias"])
    probability = float(record.probabilities[0])
    only = "the only filter is" if len(dead) == 1 else "every filter is"
    return [
        Finding(
            code="loss_fell_dead",
            severity="warning",
            title=(
                f"The loss fell from {format_number(previous.loss)} to "
                f"{format_number(record.loss)}, but not by learning"
            ),
            explanation=(
                f"Since this update {only} dead, so the classifier sees only zeros: every "
                f"image gets the same logit, the classifier's bias {format_number(bias)}, and "
                f"the same probability of label 1, {format_number(probability)}. Accuracy is "
                f"{format_share(record.accuracy)}. The loss fell because the huge logits of "
                "before are gone, not because the network tells the images apart; from here "
                "only the bias can move, and no lower loss than one guess for every image is "
                "within reach."
            ),
            iteration=record.iteration,
            subject="loss",
        )
    ]


def _at_chance(record: StepRecord) -> list[Finding]:
    """More than half the images classified right, but every probability within ``AT_CHANCE``
    of 0.5: the answer's fix starts like that (logits of about ±0.0003 on the question), and
    "accuracy 100%" then read as learned. Not when the logits are all the same (dead filters):
    other findings say that."""
    p = np.asarray(record.probabilities, dtype=np.float64)
    logits = np.asarray(record.logits)
    if (
        not record.accuracy > 0.5
        or not np.all(np.abs(p - 0.5) < AT_CHANCE)
        or np.all(logits == logits.flat[0])
    ):
        return []
    spread = format_range(float(logits.min()), float(logits.max()))
    return [
        Finding(
            code="at_chance",
            severity="info",
            title=f"Accuracy {format_share(record.accuracy)}, but only by a hair",
            explanation=(
                f"Every image's probability of label 1 is within {AT_CHANCE:g} of 0.5 (logits "
                f"in {spread}): an image counts as right when it is on the right side of 0.5, "
                "however slightly. Small initial weights start like this. Watch the loss "
                f"instead: {format_number(record.loss)} now, where ln 2 = 0.6931 is what a coin "
                "toss scores; it falls as the network learns to tell the images apart."
            ),
            iteration=record.iteration,
            subject="classifier",
        )
    ]


def _one_label(record: StepRecord, labels: np.ndarray) -> list[Finding]:
    """Data with a single label (images removed or relabelled down to one class; a folder
    like that is refused on loading): nothing to tell apart, so accuracy means nothing."""
    present = np.unique(labels)
    if present.size != 1:
        return []
    label = int(present[0])
    return [
        Finding(
            code="one_label",
            severity="warning",
            title=f"Every image has label {label}",
            explanation=(
                f"All {len(labels)} images have label {label}, so there is nothing to tell "
                f"apart: predicting {label} for everything is 100% right, and the "
                "classifier's bias alone can learn that. Add or relabel images so that both "
                "labels have some; a folder without images of one label is refused."
            ),
            iteration=record.iteration,
            subject="data",
        )
    ]


def one_learning_rate(findings: list[Finding], learning_rate: float) -> list[Finding]:
    """The same smaller learning rate, from the same iteration, on every card of one iteration
    that suggests one.

    Each finding works out its own factor (the conv layer's update ratio asked for ÷1e+07,
    the classifier's for ÷1e+06, a large gradient for ÷10), and a learner shown three could
    not tell which to take. One rate serves both layers: the smallest of them (it brings the
    largest update down too). It goes back as far as the card that needs it most: a filter dead
    since iteration s is revived only from s − 1, and a teacher found one card going back there
    and the next, at the same rate, to a later iteration that cannot revive it (and the large
    gradient's card going back nowhere). A suggestion of a larger rate (a step too small) is
    left as it is. Every factor is a power of ten of ``learning_rate``."""

    def lowers(fix: Fix) -> bool:
        changes = fix.changes
        return set(changes) == {"learning_rate"} and changes["learning_rate"] < learning_rate

    lowering = [fix for f in findings for fix in f.fixes if lowers(fix)]
    rates = {fix.changes["learning_rate"] for fix in lowering}
    rewinds = {fix.rewind_to for fix in lowering}
    if len(rates) < 2 and len(rewinds) < 2:
        return findings
    factor = 10.0 ** round(math.log10(learning_rate / min(rates)))
    going_back = [rewind for rewind in rewinds if rewind is not None]
    rewind_to = min(going_back) if going_back else None
    unified = []
    for finding in findings:
        fixes = []
        for fix in finding.fixes:
            if lowers(fix):
                fix = fix_learning_rate(learning_rate, factor, rewind_to=rewind_to)
            if all(fix.label != kept.label for kept in fixes):
                fixes.append(fix)
        unified.append(replace(finding, fixes=tuple(fixes)))
    return unified


# ---------------------------------------------------------------------------------------------
# Before the first step
# ---------------------------------------------------------------------------------------------


def pretraining_check(
    config: TrainingConfig, initial: StepRecord, preview: StepRecord | None, labels: np.ndarray
) -> tuple[Finding, ...]:
    """Risks visible before training: all-positive initialisation, raw pixels, and what the
    first update (``preview``, computed but not committed) would do.
    """
    findings = []
    pre = initial.pre_activation
    logits = initial.logits
    pre_range = format_range(pre.min(), pre.max()) if pre is not None else "unknown"
    logit_range = format_range(logits.min(), logits.max())
    non_negative_pixels = config.pixel_scaling in ("raw", "unit")
    if non_negative_pixels and not config.conv_can_start_negative() and config.activation == "relu":
        findings.append(
            Finding(
                code="init_all_positive",
                severity="warning",
                title=f"All conv weights start ≥ 0 ({config.init_text('conv')})",
                explanation=(
                    "Every pixel is ≥ 0 and every filter weight starts ≥ 0, so every "
                    f"pre-activation is positive (here {pre_range}) and the logits are large "
                    f"and of one sign ({logit_range}). All weights then receive gradients of "
                    "the same sign and move together: one update can push all of them negative "
                    "at once, after which every ReLU output is 0 and the filter is dead. A "
                    "zero-centred, small initialisation such as N(0, 0.02) avoids this bias."
                ),
                fixes=(fix_small_init(),),
                subject="initialisation",
            )
        )
    if config.pixel_scaling == "raw":
        k = config.kernel_size
        findings.append(
            Finding(
                code="raw_pixels",
                severity="warning",
                title="Inputs are raw 0..255 pixel values",
                explanation=(
                    f"A {k}×{k}×3 filter sums {3 * k * k} pixels of up to 255, so with these "
                    f"weights the pre-activations span {pre_range} and the logits {logit_range}. "
                    "The gradient of each filter weight is a sum of pixel values times "
                    "classifier weights over every position, so it is hundreds of times larger "
                    "than with 0..1 inputs and the same learning rate makes a far larger step."
                ),
                fixes=(fix_unit_pixels(),),
                subject="inputs",
            )
        )
    findings += _runs_of_one_label(config, labels)
    if preview is not None:
        findings += _preview_findings(initial, preview, config)
    findings += _large_maps(config, initial)
    return tuple(findings)


#: Updates in a row on images of one label from which their order is pointed out.
LONG_RUN = 3


def _runs_of_one_label(config: TrainingConfig, labels: np.ndarray) -> list[Finding]:
    """Images updated on one at a time in an order that has long runs of one label (a folder
    loads label 0's images, then label 1's): a learner's twelve images gave six updates on
    crosses, then six on circles, and each fix alone died at the first circle."""
    if config.update_mode != "per_image" or config.shuffle or np.unique(labels).size < 2:
        return []
    starts = np.flatnonzero(np.diff(labels)) + 1
    bounds = np.concatenate(([0], starts, [len(labels)]))
    runs = np.diff(bounds)
    longest = int(runs.max())
    if longest < LONG_RUN:
        return []
    run = int(np.argmax(runs))
    first, label = int(bounds[run]) + 1, int(labels[bounds[run]])
    return [
        Finding(
            code="label_runs",
            severity="info",
            title=f"Images come {longest} of one label in a row, and are not shuffled",
            explanation=(
                f"One image per update, in the dataset's order: updates {first} to "
                f"{first + longest - 1} of every epoch are all on label {label} images. A run "
                "of one label pushes the weights the same way update after update, towards "
                "answering that label, so training swings between the labels rather than "
                "settling on what tells them apart. Shuffling gives every epoch a new, mixed "
                "order."
            ),
            fixes=(fix_shuffle(),),
            subject="data",
        )
    ]


def _fix_float32() -> Fix:
    return Fix("Compute in float32 (half the memory) and start again", {"dtype": "float32"})


def _large_maps(config: TrainingConfig, initial: StepRecord) -> list[Finding]:
    """Maps of one iteration larger than the history's whole budget: said before training,
    with the memory that takes (a robustness pass: 400 images of 128×128 with 8 filters in
    float64 held 2.3-2.7 GB in the training process, and nothing said so before)."""
    pre, act = initial.pre_activation, initial.activation
    if pre is None:
        return []
    maps = pre.nbytes + (0 if act is None or act is pre else act.nbytes)
    budget = config.history_budget_mb * 2**20
    if maps <= max(budget, LARGE_MAPS_BYTES):
        return []
    mib = maps / 2**20
    n, f, h, w = pre.shape
    return [
        Finding(
            code="large_maps",
            severity="warning",
            title=f"One iteration's maps take {mib:,.0f} MiB, more than the history's budget",
            explanation=(
                f"{format_count(n, 'image')} × {format_count(f, 'filter')} × {h}×{w} outputs, "
                f"before and after the activation, in {config.dtype}: {mib:,.0f} MiB for every "
                f"iteration, against a history budget of {config.history_budget_mb} MiB. The "
                "history then keeps the maps of the latest iterations only, but the training "
                "process holds several iterations' maps at once (the one shown, the next one "
                "computed ahead, the forward pass kept for the update): about three times "
                f"{mib:,.0f} MiB in all (measured: 2.3-2.7 GB for 800 MiB of maps). With less "
                "memory, use float32, fewer images or filters, or smaller images."
            ),
            fixes=(_fix_float32(),) if config.dtype == "float64" else (),
            subject="memory",
        )
    ]


def _filters_named(numbers: list[int]) -> str:
    """'filter 0', 'filters 0–3'."""
    return f"filter {numbers[0]}" if len(numbers) == 1 else f"filters {_listed(numbers)}"


def useful_fixes(findings: Iterable[Finding], config: TrainingConfig) -> list[Finding]:
    """``findings`` without the fixes that would change nothing in ``config`` ("Scale pixels to
    0..1" when they are: clicking it started the run again as it was), nor a "divide the
    learning rate" that would raise the rate in use, nor a fix that would make the same run as
    one before it on its card (the answer's whole fix with pixels 0..1 and its rate set already
    is "Initialise both layers with N(0, 0.02)": two buttons, one run, the same note).

    For display, against the settings in use when they are shown: a record keeps every fix
    it was made with (recomputed from history after a live change, it must come out the
    same)."""

    def run_of(fix: Fix) -> tuple | None:
        """What clicking ``fix`` does to ``config``: the settings it changes (to what), the
        iteration it goes back to, and whether it starts again (it names a setting that
        needs a reset, changed or not); None when it would change nothing."""
        if fix.lowers_rate and fix.changes["learning_rate"] > config.learning_rate:
            # A card made at a larger rate than the one set since: "Divide by 1000 (→ 0.001)"
            # raised a rate of 0.0001 tenfold (a newcomer pass). At the fix's own rate it still
            # goes back, below.
            return None
        changed = tuple(
            sorted(
                (name, repr(value))
                for name, value in fix.changes.items()
                if getattr(config, name) != value
            )
        )
        # (Going back is a change too: the rate may already be the fix's, the bad update not
        # yet undone.)
        if not changed and fix.rewind_to is None:
            return None
        return changed, fix.rewind_to, fix.needs_reset

    def kept(fixes: tuple[Fix, ...]) -> tuple[Fix, ...]:
        runs, out = set(), []
        for fix in fixes:
            run = run_of(fix)
            if run is not None and run not in runs:
                runs.add(run)
                out.append(fix)
        return tuple(out)

    shown = []
    for f in findings:
        fixes = kept(f.fixes)
        shown.append(f if fixes == f.fixes else replace(f, fixes=fixes))
    return shown


def _preview_findings(
    initial: StepRecord, preview: StepRecord, config: TrainingConfig
) -> list[Finding]:
    lr = preview.settings.learning_rate
    before = initial.params["conv.weight"]
    after = preview.params["conv.weight"]
    grad = preview.grads["conv.weight"]
    ratio = preview.metrics["conv_update_ratio"]
    move = (
        f"The first update will be -learning rate × gradient = -{format_number(lr)} × "
        f"{format_range(grad.min(), grad.max())}, moving the filter weights from "
        f"{format_range(before.min(), before.max())} to {format_range(after.min(), after.max())}"
    )
    newly_dead = [f for f in preview.dead_filters if f not in initial.dead_filters]
    if newly_dead or not np.all(np.isfinite(after)):
        outcome = (
            "the weights overflow to NaN or infinity"
            if not np.all(np.isfinite(after))
            else f"every ReLU output of {_filters_named(newly_dead)} becomes 0 for every "
            "image: "
            + ("the filter dies" if len(newly_dead) == 1 else "they die")
            + " at iteration 1 and can never learn again"
        )
        return [
            Finding(
                code="first_update_kills",
                severity="error",
                title=(
                    "Pressing Step now will overflow"
                    if not newly_dead
                    else "Pressing Step now will kill the filter"
                    if after.shape[0] == 1
                    else f"Pressing Step now will kill {_filters_named(newly_dead)}"
                ),
                explanation=f"{move}; after it {outcome}.",
                # The answer's fixes first: a learning rate small enough for raw pixels and
                # all-positive weights is absurd (the factor says how absurd).
                fixes=(
                    *_answer_fixes(config),
                    fix_small_init(),
                    fix_unit_pixels(),
                    # (not when the initial weights overflow already: no rate helps then)
                    *(
                        (fix_learning_rate(lr, _factor_for(ratio)),)
                        if np.all(np.isfinite(initial.losses))
                        else ()
                    ),
                ),
                subject="first update",
            )
        ]
    if math.isfinite(ratio) and ratio >= LARGE_UPDATE_RATIO:
        return [
            Finding(
                code="first_update_large",
                severity="warning",
                title=f"The first update will be {format_number(ratio)}× the size of the filter",
                explanation=f"{move}. Healthy updates change weights by about 0.1%.",
                fixes=(fix_learning_rate(lr, _factor_for(ratio)),),
                subject="first update",
            )
        ]
    return []
