"""A modality whose data carries a class the reference lacks: where do its items land?

    python benchmarks/partial_vocabulary.py --work pv [--set training.seed=1] [--unmapped-out-of-cls]

Writes a small digits reference recipe, and a caption file whose labels are the digits zero to
eight (no scene holds a nine) plus ``cat``, a class the reference lacks: one caption in five is
about a cat and nothing else ("a sleepy kitten"). The captions' recipe drops ``cat`` with
``cat = ""`` (as ``alice recipe init --reference`` writes it), so the reference class ``nine`` is one
this adapter does not annotate. It builds the space (once; ``--fresh`` builds it again), adds the
captions, and prints, over held-out cat captions, the probability C_ref puts on the classes the
adapter does not annotate, how many carry a warning, and the predicted labels; and the adapter's
val AUROC on the classes it annotates. ``--unmapped-out-of-cls`` trains the alternative ALICE does not
take, the cat captions left out of the classification loss (docs/your-data.md has both).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import warnings
from pathlib import Path

import numpy as np

import alice
from alice.data.recipes import load_recipe
from alice.plugin.manager import get_registry
from alice.train.jobs import add_modality, build_reference

REFERENCE = """stage = "reference"
family = "pv"
modality = "image"

[data]
dataset = "digits-image"
train = 3000
val = 300
test = 300

[backbone]
name = "pixels"
size = 20

[model]
latent_dim = 32
encoder_hidden = [128, 128]
classifier_hidden = [128, 128]

[intervention]
design = "nonlinear"
hidden = 128
condition = "onehot"

[training]
steps = 1500
batch_size = 128
rec_weight = 1.0
eval_every = 0
"""

CAPTIONS = """stage = "modality"
family = "pv"
modality = "text"

[data]
dataset = "text-file"
path = "{path}"

[backbone]
name = "minilm"

[labels]
mapper = "by-name"
[labels.aliases]
cat = ""

[model]
encoder_hidden = [128, 128]

[training]
steps = 600
batch_size = 128
rec_weight = 1.0
eval_every = 0
"""

ADJECTIVES = ["small", "black", "white", "sleepy", "grey", "striped", "young", "old", "fat", "tiny", "ginger", "fluffy"]
NOUNS = ["cat", "kitten", "tabby", "house cat", "tomcat"]
FRAMES = ["a {a} {n}", "the {a} {n}", "one {a} {n}", "a photo of a {a} {n}", "just a {a} {n}"]
#: adjectives whose cat captions only the test split holds
HELD_OUT = {"ginger", "fluffy"}


def cat_captions() -> tuple[list[str], list[str]]:
    """(train, test) captions about a cat and nothing else; the test ones use adjectives training never saw."""
    train, test = [], []
    for a, n, f in itertools.product(ADJECTIVES, NOUNS, FRAMES):
        (test if a in HELD_OUT else train).append(f.format(a=a, n=n))
    return train, test


def write_captions(path: Path) -> list[str]:
    """The caption file (digit captions without nine, and cat captions); returns the held-out cat captions."""
    digits = get_registry().dataset("digits-text")(train=1500, val=300, test=300)
    vocab = digits.vocabulary
    cats_train, cats_test = cat_captions()
    rng = np.random.default_rng(0)
    rows = []
    for split in ("train", "val", "test"):
        s = digits.split(split)
        for i, (text, labels) in enumerate(zip(s.inputs, s.labels)):
            names = [vocab[c] for c in np.flatnonzero(labels)]
            if "nine" in names:
                continue
            row = {"text": text, "labels": names, "split": split}
            if s.pair_ids:
                row["pair_id"] = s.pair_ids[i]
            rows.append(row)
    # one caption in five about a cat: train and val from the training adjectives, test from the held-out ones
    n_train = sum(r["split"] == "train" for r in rows) // 4
    picks = rng.permutation(len(cats_train))
    for j in range(n_train):
        rows.append({"text": cats_train[picks[j % len(picks)]], "labels": ["cat"], "split": "train"})
    for j in range(len(cats_train) // 4):
        rows.append({"text": cats_train[picks[-1 - j]], "labels": ["cat"], "split": "val"})
    for text in cats_test:
        rows.append({"text": text, "labels": ["cat"], "split": "test"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return cats_test


def leave_unmapped_out_of_cls() -> None:
    """The alternative not taken: the cat captions out of L_cls too, so they train reconstruction (and L_sem) only.

    Every other caption here holds a digit, so the rows without an annotated label are the cat captions.
    """
    from alice.core.losses import masked_bce
    from alice.train.stages import AdapterTrainer

    main_losses = AdapterTrainer._main_losses

    def without(self, x, y):
        z, rec, _, align = main_losses(self, x, y)
        labelled = y.sum(1) > 0
        return z, rec, masked_bce(self.classifier(z), y, self.annotated[None, :] & labelled[:, None]), align

    AdapterTrainer._main_losses = without


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="Folder for the files and the space.")
    parser.add_argument("--fresh", action="store_true", help="Build the space again even if it exists.")
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], help="A setting of the captions' recipe, section.key=value."
    )
    parser.add_argument(
        "--unmapped-out-of-cls",
        action="store_true",
        help="Train the alternative not taken: those items out of the classification loss too.",
    )
    args = parser.parse_args()
    if args.unmapped_out_of_cls:
        leave_unmapped_out_of_cls()
    work = args.work.absolute()
    work.mkdir(parents=True, exist_ok=True)
    (work / "reference.toml").write_text(REFERENCE, encoding="utf-8")
    cats = write_captions(work / "captions.jsonl")
    (work / "captions.toml").write_text(CAPTIONS.format(path=work / "captions.jsonl"), encoding="utf-8")
    space_dir = work / "space"
    if args.fresh and space_dir.exists():
        shutil.rmtree(space_dir)
    if not space_dir.exists():
        build_reference(load_recipe(str(work / "reference.toml")), space_dir)
    add_modality(space_dir, load_recipe(str(work / "captions.toml"), args.sets), overwrite=True)

    space = alice.load(space_dir)
    masked = [c for c in space.vocabulary if c not in space.annotated("text")]
    cols = [space.vocabulary.index(c) for c in masked]
    z = space.encode("text", cats)
    p = space.classify(z)[:, cols]
    ref_thresholds = space.thresholds(space.reference_modality)[cols]
    over = (p >= ref_thresholds).any(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = space.labels(z, "text")
    # Space.warnings flags a reading that rests on a class the adapter does not annotate (absent before it existed)
    flagged = getattr(space, "warnings", None)
    flagged_rows = sum(bool(w) for w in flagged(z, "text")) if flagged is not None else 0
    auroc = space.adapter("text").manifest.metrics["val"]["auroc"]
    print(f"classes the text adapter does not annotate: {', '.join(masked)}")
    print(f"{len(cats)} held-out cat captions:")
    print(f"  probability on them: mean {float(p.max(1).values.mean()):.3f}, max {float(p.max()):.3f}")
    print(f"  at or above the reference modality's threshold: {int(over.sum())} of {len(cats)}")
    print(f"  with a warning: {flagged_rows} of {len(cats)}")
    print(f"  with a predicted label: {sum(bool(x) for x in labels)} of {len(cats)}")
    print(f"text adapter val AUROC (classes it annotates): {auroc:.3f}")


if __name__ == "__main__":
    main()
