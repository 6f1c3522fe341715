"""A data set's label vocabulary, and mapping it onto the reference vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from alice import console
from alice.errors import AliceError
from alice.plugin.dataset import label_key


@dataclass
class LabelMapping:
    """A data set's labels expressed in the reference vocabulary.

    ``annotated[c]`` is true for the reference classes this data set says
    anything about; the others are unknown and masked out of its losses.
    """

    mapping: dict[str, str | None]
    reference: list[str]

    @property
    def annotated(self) -> np.ndarray:
        hit = {t for t in self.mapping.values() if t is not None}
        return np.array([c in hit for c in self.reference], dtype=bool)

    def matrix(self, source: list[str]) -> np.ndarray:
        """[len(source), len(reference)] 0/1 matrix; labels @ matrix maps multi-hot labels."""
        m = np.zeros((len(source), len(self.reference)), dtype=np.float32)
        index = {c: i for i, c in enumerate(self.reference)}
        for s, label in enumerate(source):
            target = self.mapping.get(label)
            if target is not None:
                m[s, index[target]] = 1.0
        return m

    def apply(self, labels: np.ndarray, source: list[str]) -> np.ndarray:
        return (labels @ self.matrix(source) > 0).astype(np.float32)

    def check(self, source_name: str) -> None:
        if not self.annotated.any():
            raise AliceError(f"no label of data set {source_name!r} maps onto the reference vocabulary")


#: the rule, in the words every message about label spellings uses
CASE_RULE = "labels are compared without case or surrounding spaces"


def check_vocabulary(vocabulary: list[str], source_name: str) -> None:
    """A vocabulary is a non-empty list of distinct, non-empty label names (what a reference built from it keeps);
    distinct under :func:`label_key`, since a label mapper could never tell 'Coins' from 'coins'."""
    if not vocabulary:
        raise AliceError(f"data set {source_name!r} has no labels")
    bad = [v for v in vocabulary if not isinstance(v, str) or not v.strip()]
    if bad:
        raise AliceError(f"data set {source_name!r}: label {bad[0]!r} is not a name; every label needs one")
    exact: set[str] = set()
    seen: dict[str, str] = {}
    for v in vocabulary:
        if v in exact:
            raise AliceError(f"data set {source_name!r} names label {v!r} twice in its vocabulary")
        exact.add(v)
        first = seen.setdefault(label_key(v), v)
        if first != v:
            raise AliceError(
                f"data set {source_name!r} names one label two ways, {first!r} and {v!r} ({CASE_RULE}); give it one "
                "spelling"
            )


def _shown(labels: list[str], limit: int = 8) -> str:
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(repr(c) for c in labels[:limit]) + more


def _alias_key(label: str) -> str:
    """How ``label`` is written as a key of ``[labels.aliases]`` in TOML."""
    return label if label.replace("-", "").replace("_", "").isalnum() else f'"{label}"'


def source_aliases(source: list[str], aliases: dict[str, str], source_name: str) -> dict[str, str]:
    """The recipe's ``[labels.aliases]`` keyed by the data set's own spellings (:func:`label_key` matches them).

    An alias naming no label of the data set is refused: a typo there would leave its label mapped by name, or
    not at all, silently.
    """
    by_key = {label_key(s): s for s in source}
    out: dict[str, str] = {}
    for alias, target in aliases.items():
        label = alias if alias in source else by_key.get(label_key(alias))
        if label is None:
            raise AliceError(
                f"labels.aliases names {alias!r}, which is no label of data set {source_name!r} "
                f"(its labels: {', '.join(source[:20])}{' …' if len(source) > 20 else ''})"
            )
        if label in out:
            raise AliceError(f"labels.aliases names the label {label!r} twice ({CASE_RULE}); keep one entry")
        out[label] = target
    return out


def settle_mapping(
    answer: Any,
    source: list[str],
    reference: list[str],
    aliases: dict[str, str],
    mapper: str,
    plugin: str,
    source_name: str,
) -> LabelMapping:
    """A label mapper's answer checked and put in the reference's spellings.

    Each source label must be covered (a key of the answer, or aliased); each label it names must be the
    reference's under :func:`label_key` (the mapper's 'Coins' is the reference's 'coins'); the recipe's aliases
    win over the answer. Two source labels reaching one reference class are refused when the mapper itself sent
    them there, or when one of them is the name of another reference class (its items would be trained as a class
    not theirs while their own exists); a merge the recipe's aliases ask for (``kitten = "cat"`` beside ``cat``)
    is said in one warning line.
    """
    who = f"label mapper {mapper!r} (plugin {plugin!r})"
    if not isinstance(answer, dict):
        raise AliceError(f"{who} returned {type(answer).__name__}, not a dict")
    uncovered = uncovered_labels(source, answer, aliases)
    if uncovered:
        raise AliceError(uncovered_message(source_name, uncovered, reference, who))
    by_source = {label_key(s): s for s in source}
    by_reference = {label_key(r): r for r in reference}
    mapping: dict[str, str | None] = {}
    for key, target in answer.items():
        label = key if key in source else by_source.get(label_key(key)) if isinstance(key, str) else None
        if label is None or label in mapping:
            continue  # not a label of this data set (or its spelling given twice): nothing to map
        if target is None:
            mapping[label] = None
        elif isinstance(target, str) and (target in reference or label_key(target) in by_reference):
            mapping[label] = target if target in reference else by_reference[label_key(target)]
        else:
            raise AliceError(
                f"{who} maps label {label!r} of data set {source_name!r} onto {target!r}, which is not in the "
                f"reference vocabulary ({', '.join(reference[:12])}{' …' if len(reference) > 12 else ''})"
            )
    for label, target in aliases.items():  # the recipe's word wins over any mapper's
        if target and label_key(target) not in by_reference:
            raise AliceError(f"label alias {label!r} -> {target!r}: {target!r} is not in the reference vocabulary")
        mapping[label] = by_reference[label_key(target)] if target else None
    _check_merges(mapping, source, by_reference, aliases, who, source_name)
    result = LabelMapping(mapping, list(reference))
    result.check(source_name)
    return result


def _check_merges(
    mapping: dict[str, str | None],
    source: list[str],
    by_reference: dict[str, str],
    aliases: dict[str, str],
    who: str,
    source_name: str,
) -> None:
    """Refuse (or, for the recipe's own aliases, say) two source labels sent to one reference class."""
    onto: dict[str, list[str]] = {}
    for label in source:
        if mapping.get(label) is not None:
            onto.setdefault(str(mapping[label]), []).append(label)
    for target, labels in onto.items():
        if len(labels) < 2:
            continue
        by_mapper = [s for s in labels if s not in aliases]
        displaced = [s for s in labels if by_reference.get(label_key(s), target) != target]
        names = " and ".join(repr(s) for s in labels)
        if len(by_mapper) > 1 or displaced:
            renamed = [s for s in by_mapper if label_key(s) != label_key(target)]
            moved = displaced[0] if displaced else (renamed or by_mapper)[-1]
            why = (
                f"{moved!r} is a reference class of its own, so its items would be trained as {target!r}"
                if displaced
                else "the items of one would be trained as the other"
            )
            sender = who if len(by_mapper) > 1 else "the recipe's [labels.aliases]"
            raise AliceError(
                f"{sender} sends labels {names} of data set {source_name!r} to one reference class, {target!r}: {why}; "
                f'map {moved!r} in the recipe\'s [labels.aliases] ({_alias_key(moved)} = "<reference label>"), or drop '
                f'it with "" ({_alias_key(moved)} = "")'
            )
        console.warn(
            f"data set {source_name!r}: labels {names} become one reference class, {target!r}, as the recipe's "
            "[labels.aliases] asks; their items are trained as one class"
        )


def uncovered_labels(source: list[str], mapping: dict[str, str | None], aliases: dict[str, str]) -> list[str]:
    """The source labels that neither the mapper (a key of its result) nor an alias accounts for."""
    keys = {label_key(k) for k in mapping if isinstance(k, str)}
    return [c for c in source if c not in mapping and label_key(c) not in keys and c not in aliases]


def uncovered_message(source_name: str, uncovered: list[str], reference: list[str], who: str = "") -> str:
    """One line: which labels have no place in the reference, under which mapper, and the two ways to give them one."""
    ref = ", ".join(reference[:12]) + (" …" if len(reference) > 12 else "")
    key = _alias_key(uncovered[0])
    under = f" under {who}" if who else ""
    return (
        f"data set {source_name!r}: label(s) {_shown(uncovered)} match no label of the reference ({ref}){under}; map "
        f'each in the recipe\'s [labels.aliases] table ({key} = "<reference label>"), or drop it with "" ({key} = "")'
    )
