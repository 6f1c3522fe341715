"""Why a few pairs pulled an aligned space down, and what holds it up: variants of paired fine-tuning, measured.

    python benchmarks/paired_variants.py artifacts/digits-image out.jsonl 100,1000 1 base,lr3e-6,freeze-b,es

Each variant fine-tunes the two encoders of a space (the first adapter a, the second b: on digits image and
text) with CLIP's loss on N seeded pairs, as ``alice align clip --holdout 0 --lr 1e-4`` does (from ALICE a rate of
1e-5, the default before held-out pairs chose the step), with one thing changed:
the learning rate (``lr*``), the temperature (``tfix`` not learned, ``tfit`` fitted to the space's similarity
scale, ``s5``/``s30`` fixed), the batch (``fnm``: pairs whose items C_ref reads as the same label set are no
negatives of each other), which encoders move (``freeze-a``/``freeze-b``: one side frozen, locked-reference
tuning), stage 2's own losses kept as regularisers (``reg``: reconstruction, classification through C_ref,
consistency through M_ref, the alignment pull; ``regcls``: classification alone), the partner's label set as
C_ref reads it taught to each paired item through C_ref (``pl``: pairs as labels), a pull toward the start
latents (``anchor``), and early stopping on 20% of the N pairs held out (``es``: the step with the lowest
held-out loss, the start included; ``es-r1``: the highest held-out R@1; ``sig``: a step replaces the kept one
only when its held-out loss is lower by more than 2 standard errors of the per-pair change, as ``alice align
clip`` does; ``sig2``: and neither direction's loss is higher). Prints and appends one JSON line per run: R@1
and label exact both ways, the temperature, and how C_ref reads each side's test latents after tuning
(``read_a``/``read_b``: exact label set at 0.5, the BCE, and the mean cosine to the start latents). The first
line is the start: its retrieval, the same readings, how C_ref reads the first side's paired split (scenes no
step of training saw), and the R@1 of ranking the gallery by the likelihood of each item's label set under
C_ref's reading of the query side (``likelihood``: what the first side's reading allows a search by label sets).
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from alice.artifacts.loaded import ReferenceSpace
from alice.core.alignment import AlignmentTarget, SearchEncoder, alignment_loss
from alice.core.losses import masked_bce, reconstruction_loss
from alice.evaluation.contrastive import clip_loss, draw_pairs, improves
from alice.evaluation.paired import load_for_pairing, retrieval_both_ways
from alice.plugin.dataset import PAIRED
from alice.train.stages import semantic_loss

torch.set_num_threads(1)

BASE = dict(
    lr=1e-5,
    steps=1000,
    bs=256,
    train_a=True,
    train_b=True,
    temp="fixed",
    learn_temp=True,
    reg=0.0,
    holdout=0.0,
    every=50,
    stop="loss",
    anchor=0.0,
    steps_per_n=None,
    fnm="",
    scale=None,
    reg_parts="all",
    pairlabel=0.0,
)
VARIANTS = {
    "base": {},
    "lr3e-6": dict(lr=3e-6),
    "lr1e-6": dict(lr=1e-6),
    "lr3e-5": dict(lr=3e-5),
    "steps200": dict(steps=200),
    "freeze-a": dict(train_a=False),
    "freeze-b": dict(train_b=False),
    "tfit": dict(temp="fit"),
    "tfix": dict(learn_temp=False),
    "tfitfix": dict(temp="fit", learn_temp=False),
    "reg": dict(reg=1.0),
    "es": dict(holdout=0.2),
    "es-r1": dict(holdout=0.2, stop="r1"),
    "freeze-a-reg": dict(train_a=False, reg=1.0),
    "freeze-a-tfit": dict(train_a=False, temp="fit"),
    "freeze-a-reg-tfit": dict(train_a=False, reg=1.0, temp="fit"),
    "freeze-a-reg-tfit-es": dict(train_a=False, reg=1.0, temp="fit", holdout=0.2),
    "reg-tfit": dict(reg=1.0, temp="fit"),
    "reg-tfit-es": dict(reg=1.0, temp="fit", holdout=0.2),
    "freeze-a-reg-es": dict(train_a=False, reg=1.0, holdout=0.2),
    "freeze-a-es": dict(train_a=False, holdout=0.2),
    "anchor": dict(anchor=1.0),
    "fnm": dict(fnm="either"),
    "fnm-b": dict(fnm="b"),
    "freeze-a-fnm": dict(train_a=False, fnm="either"),
    "fnm-es": dict(fnm="either", holdout=0.2),
    "fnm-anchor": dict(fnm="either", anchor=1.0),
    "fnm-s5": dict(fnm="either", scale=5.0, learn_temp=False),
    "fnm-s30": dict(fnm="either", scale=30.0, learn_temp=False),
    "s5": dict(scale=5.0, learn_temp=False),
    "s30": dict(scale=30.0, learn_temp=False),
    "freeze-a-lr1e-4": dict(train_a=False, lr=1e-4),
    "fnm-lr3e-5": dict(fnm="either", lr=3e-5),
    "fnm-lr1e-4": dict(fnm="either", lr=1e-4),
    "freeze-a-fnm-lr1e-4": dict(train_a=False, fnm="either", lr=1e-4),
    "es-lr1e-4": dict(holdout=0.2, lr=1e-4),
    "sig": dict(holdout=0.2, stop="sig"),
    "sig2": dict(holdout=0.2, stop="sig2"),
    "sig-freeze-a-lr1e-4": dict(holdout=0.2, stop="sig", lr=1e-4, train_a=False),
    "sig-freeze-b-lr1e-4": dict(holdout=0.2, stop="sig", lr=1e-4, train_b=False),
    "sig2-lr1e-4": dict(holdout=0.2, stop="sig2", lr=1e-4),
    "sig2-lr3e-5": dict(holdout=0.2, stop="sig2", lr=3e-5),
    "sig-lr1e-4": dict(holdout=0.2, stop="sig", lr=1e-4),
    "sig-lr3e-5": dict(holdout=0.2, stop="sig", lr=3e-5),
    "sig-lr1e-3": dict(holdout=0.2, stop="sig", lr=1e-3),
    "es-lr3e-5": dict(holdout=0.2, lr=3e-5),
    "es-lr1e-4-fnm": dict(holdout=0.2, lr=1e-4, fnm="either"),
    "es-lr1e-4-regcls": dict(holdout=0.2, lr=1e-4, reg=1.0, reg_parts="cls"),
    "es-lr1e-4-reg": dict(holdout=0.2, lr=1e-4, reg=1.0),
    "es-lr1e-4-anchor": dict(holdout=0.2, lr=1e-4, anchor=1.0),
    "freeze-a-es-lr1e-4": dict(holdout=0.2, lr=1e-4, train_a=False),
    "es-lr3e-6": dict(holdout=0.2, lr=3e-6),
    "es-freeze-b": dict(holdout=0.2, train_b=False),
    "es-freeze-b-lr3e-6": dict(holdout=0.2, train_b=False, lr=3e-6),
    "es-lr3e-6-s3000": dict(holdout=0.2, lr=3e-6, steps=3000),
    "es-freeze-b-lr1e-4": dict(holdout=0.2, train_b=False, lr=1e-4),
    "es-freeze-b-lr1e-3": dict(holdout=0.2, train_b=False, lr=1e-3),
    "es-freeze-b-fnmb-lr1e-4": dict(holdout=0.2, train_b=False, lr=1e-4, fnm="b"),
    "es-freeze-b-regcls-lr1e-4": dict(holdout=0.2, train_b=False, lr=1e-4, reg=1.0, reg_parts="cls"),
    "es-freeze-b-pl-lr1e-4": dict(holdout=0.2, train_b=False, lr=1e-4, pairlabel=1.0),
    "es-freeze-b-pl-regcls-lr1e-4": dict(holdout=0.2, train_b=False, lr=1e-4, pairlabel=1.0, reg=1.0, reg_parts="cls"),
    "es-freeze-b-pl-regcls-lr1e-3": dict(holdout=0.2, train_b=False, lr=1e-3, pairlabel=1.0, reg=1.0, reg_parts="cls"),
    "es-pl-lr1e-4": dict(holdout=0.2, lr=1e-4, pairlabel=1.0),
}


def masked_clip(za, zb, log_scale, same):
    """CLIP with the negatives that the space reads as the same label set left out (``same`` [B, B], diagonal False)."""
    logits = log_scale.exp().clamp(max=100.0) * za @ zb.T
    logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(za.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


@torch.no_grad()
def read_sets(ref, side, x):
    """Label sets as C_ref reads them with the adapter's thresholds: [n, C] bool (annotated classes only)."""
    probs = torch.sigmoid(ref.classifier(side.adapter.encoder(x)))
    th = torch.as_tensor(side.adapter.manifest.thresholds, dtype=probs.dtype)
    return (probs >= th) & side.data.annotated


def inner(enc):
    return enc.encoder if isinstance(enc, SearchEncoder) else enc


class Regulariser:
    """Stage 2's own losses on one side's labelled train split: rec (D frozen), cls via C_ref, sem via M_ref, align."""

    def __init__(self, ref, side, device, seed):
        self.ref = ref
        ad = side.adapter
        self.data = ad.load_data(("train",), device)
        self.x, self.y = self.data.features["train"], self.data.labels["train"]
        self.annotated = self.data.annotated
        self.decoder = copy.deepcopy(ad.decoder)
        for p in self.decoder.parameters():
            p.requires_grad_(False)
        t = ad.manifest.training.get("settings", {})
        self.w = dict(rec=t.get("rec_weight", 1.0), cls=t.get("cls_weight", 1.0), sem=t.get("sem_weight", 1.0))
        la = ad.manifest.latent_alignment or {}
        self.target = None
        if la.get("weight") and ref.statistics is not None:
            self.target = AlignmentTarget(ref.statistics, self.annotated, la.get("loss", "conditional-mean"), device)
            self.w["align"] = la["weight"]
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(seed + 7)

    def __call__(self, encoder, bs=256, parts="all"):
        idx = torch.randint(self.x.shape[0], (bs,), generator=self.gen)
        x, y = self.x[idx], self.y[idx]
        z = encoder(x)
        C, M = self.ref.classifier, self.ref.intervention
        loss = self.w["cls"] * masked_bce(C(z), y, self.annotated)
        if parts == "all":
            loss = loss + self.w["rec"] * reconstruction_loss(self.decoder(z), x)
            loss = loss + self.w["sem"] * semantic_loss(z, y, self.annotated, encoder, self.decoder, C, M, self.gen)
        if self.target is not None:
            loss = loss + self.w["align"] * alignment_loss(z, y, self.target)
        return loss


def fit_log_scale(za, zb):
    with torch.no_grad():
        best = None
        for s in np.linspace(0, math.log(100), 60):
            v = clip_loss(za, zb, torch.tensor(float(s))).item()
            if best is None or v < best[0]:
                best = (v, float(s))
    return best[1]


@torch.no_grad()
def held_out_losses(ea, eb, pa, pb):
    """Each held-out pair's own share of the symmetric loss (the held-out pairs in one batch, at 1/0.07)."""
    logits = (1 / 0.07) * ea.eval()(pa) @ eb.eval()(pb).T
    t = torch.arange(len(pa))
    return torch.stack([F.cross_entropy(logits, t, reduction="none"), F.cross_entropy(logits.T, t, reduction="none")])


def better(cur, best, z=2.0, each=False):
    """A step replaces the kept one only when its held-out pairs' losses (both directions summed) are lower by more
    than z standard errors; ``each``: and neither direction's mean is higher."""
    if each and bool(((cur - best).mean(1) > 0).any()):
        return False
    return improves(cur.mean(0), best.mean(0), z)


@torch.no_grad()
def heldout_score(ea, eb, pa, pb, kind):
    za, zb = ea.eval()(pa), eb.eval()(pb)
    if kind == "loss":
        return -clip_loss(za, zb, torch.tensor(math.log(1 / 0.07))).item()
    s = za @ zb.T
    t = torch.arange(len(za))
    return 0.5 * ((s.argmax(1) == t).float().mean() + (s.argmax(0) == t).float().mean()).item()


@torch.no_grad()
def reading(ref, side, enc, reg):
    """How C_ref reads the tuned encoder's test latents: BCE and exact label set at 0.5, and drift from the start."""
    x, y = side.data.features["test"], side.data.labels["test"]
    z = inner(enc).eval()(x)
    z0 = side.adapter.encoder(x)
    logits = ref.classifier(z)
    ann = side.data.annotated
    exact = ((torch.sigmoid(logits) > 0.5) == (y > 0.5))[:, ann].all(1).float().mean().item()
    return {
        "bce": masked_bce(logits, y, ann).item(),
        "exact": exact,
        "cos_to_start": F.cosine_similarity(z, z0, dim=-1).mean().item(),
    }


@torch.no_grad()
def likelihood_ranking(ref, a, b):
    """R@1 both ways when the gallery is ranked by the log-likelihood of the b items' label sets (as C_ref reads
    them) under C_ref's probabilities for the a items; b items read as the same set tie, broken at random."""
    ann = torch.as_tensor(a.data.mapping.annotated & b.data.mapping.annotated)
    pa = torch.sigmoid(ref.classifier(a.adapter.encoder(a.data.features["test"])))[:, ann].clamp(1e-6, 1 - 1e-6)
    sb = (torch.sigmoid(ref.classifier(b.adapter.encoder(b.data.features["test"])))[:, ann] > 0.5).float()
    s = pa.log() @ sb.T + (1 - pa).log() @ (1 - sb).T  # [a items, b items]
    ida, idb = a.data.pair_ids["test"], b.data.pair_ids["test"]
    a_to_b = []
    for i, p in enumerate(ida):
        tied = s[i] >= s[i].max() - 1e-6
        mine = torch.tensor([q == p for q in idb])
        a_to_b.append(float((tied & mine).sum()) / float(tied.sum()))
    b_to_a = [float(ida[int(s[:, j].argmax())] == p) for j, p in enumerate(idb)]
    return {f"{a.name} -> {b.name}": float(np.mean(a_to_b)), f"{b.name} -> {a.name}": float(np.mean(b_to_a))}


@torch.no_grad()
def paired_reading(ref, side):
    x, y = side.data.features[PAIRED], side.data.labels[PAIRED]
    probs = torch.sigmoid(ref.classifier(side.adapter.encoder(x)))
    return ((probs > 0.5) == (y > 0.5))[:, side.data.annotated].all(1).float().mean().item()


def run(ref, a, b, n, seed, cfg, regs):
    ia, ib = draw_pairs(a.data.pair_ids[PAIRED], b.data.pair_ids[PAIRED], n, seed)
    pa = a.data.features[PAIRED][torch.as_tensor(ia)]
    pb = b.data.features[PAIRED][torch.as_tensor(ib)]
    hold = None
    if cfg["fnm"] or cfg["pairlabel"]:
        ra, rb = read_sets(ref, a, pa), read_sets(ref, b, pb)
    if cfg["holdout"]:
        g = np.random.default_rng(seed + 1)
        perm = g.permutation(n)
        k = max(2, int(round(n * cfg["holdout"])))
        hold = (pa[perm[:k]], pb[perm[:k]])
        pa, pb = pa[perm[k:]], pb[perm[k:]]
        if cfg["fnm"] or cfg["pairlabel"]:
            ra, rb = ra[perm[k:]], rb[perm[k:]]
    ea, eb = copy.deepcopy(a.adapter.search_encoder()), copy.deepcopy(b.adapter.search_encoder())
    for enc, on in ((ea, cfg["train_a"]), (eb, cfg["train_b"])):
        for p in enc.parameters():
            p.requires_grad_(on)
    with torch.no_grad():
        s0 = fit_log_scale(ea.eval()(pa[:1024]), eb.eval()(pb[:1024])) if cfg["temp"] == "fit" else math.log(1 / 0.07)
        if cfg["scale"]:
            s0 = math.log(cfg["scale"])
    log_scale = torch.tensor(s0, requires_grad=cfg["learn_temp"])
    params = [p for e in (ea, eb) for p in e.parameters() if p.requires_grad]
    if cfg["learn_temp"]:
        params.append(log_scale)
    opt = torch.optim.Adam(params, lr=cfg["lr"])
    gen = torch.Generator()
    gen.manual_seed(seed)
    sig = cfg["stop"] in ("sig", "sig2")
    best = None
    if hold:
        first = held_out_losses(ea, eb, *hold) if sig else heldout_score(ea, eb, *hold, cfg["stop"])
        best = (first, 0, copy.deepcopy((ea.state_dict(), eb.state_dict())))
    trace = []
    m = pa.shape[0]
    for step in range(1, cfg["steps"] + 1):
        ea.train(), eb.train()
        idx = torch.randperm(m, generator=gen)[: min(cfg["bs"], m)]
        if cfg["fnm"]:
            same = (ra[idx][:, None] == ra[idx][None]).all(-1)
            if cfg["fnm"] == "either":
                same |= (rb[idx][:, None] == rb[idx][None]).all(-1)
            else:
                same = (rb[idx][:, None] == rb[idx][None]).all(-1)
            same.fill_diagonal_(False)
            loss = masked_clip(ea(pa[idx]), eb(pb[idx]), log_scale, same)
        else:
            loss = clip_loss(ea(pa[idx]), eb(pb[idx]), log_scale)
        if cfg["reg"]:
            for key, enc in (("a", ea), ("b", eb)):
                if cfg[f"train_{key}"]:
                    loss = loss + cfg["reg"] * regs[key](inner(enc), parts=cfg["reg_parts"])
        if cfg["pairlabel"]:  # the partner's reading by C_ref as the label set of each paired item
            for key, enc, x, target in (("a", ea, pa, rb), ("b", eb, pb, ra)):
                if cfg[f"train_{key}"]:
                    z = inner(enc)(x[idx])
                    ann = (a if key == "a" else b).data.annotated
                    loss = loss + cfg["pairlabel"] * masked_bce(ref.classifier(z), target[idx].float(), ann)
        if cfg["anchor"]:
            for key, enc, side in (("a", ea, a), ("b", eb, b)):
                if cfg[f"train_{key}"]:
                    x = (pa if key == "a" else pb)[idx]
                    with torch.no_grad():
                        z0 = side.adapter.encoder(x)
                    loss = loss + cfg["anchor"] * (inner(enc)(x) - z0).pow(2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if hold and step % cfg["every"] == 0:
            if sig:
                sc = held_out_losses(ea, eb, *hold)
                trace.append((step, round(sc.mean().item(), 4)))
                if better(sc, best[0], each=cfg["stop"] == "sig2"):
                    best = (sc, step, copy.deepcopy((ea.state_dict(), eb.state_dict())))
                continue
            sc = heldout_score(ea, eb, *hold, cfg["stop"])
            trace.append((step, round(sc, 4)))
            if sc > best[0]:
                best = (sc, step, copy.deepcopy((ea.state_dict(), eb.state_dict())))
    if hold:
        ea.load_state_dict(best[2][0]), eb.load_state_dict(best[2][1])
    ea.eval(), eb.eval()
    res = retrieval_both_ways(ea, eb, a, b)
    out = {
        "R@1": {d: r["R@1"] for d, r in res.items()},
        "label_exact": {d: r["label_exact"] for d, r in res.items()},
        "scale": math.exp(log_scale.item()),
        "scale0": math.exp(s0),
        "read_a": reading(ref, a, ea, None),
        "read_b": reading(ref, b, eb, None),
    }
    if hold:
        out["best_step"] = best[1]
    return out


def main():
    space, out, ns, seeds, variants = sys.argv[1:6]
    ref = ReferenceSpace.load(space)
    dev = torch.device("cpu")
    a, b = load_for_pairing(ref, "image", dev), load_for_pairing(ref, "text", dev)
    ref.classifier.eval(), ref.intervention.eval()
    for p in (*ref.classifier.parameters(), *ref.intervention.parameters()):
        p.requires_grad_(False)
    start = retrieval_both_ways(a.adapter.search_encoder(), b.adapter.search_encoder(), a, b)
    print(
        "start",
        {d: (r["R@1"], r["label_exact"]) for d, r in start.items()},
        "read",
        reading(ref, a, a.adapter.encoder, None),
        reading(ref, b, b.adapter.encoder, None),
        "read_a on the paired split",
        round(paired_reading(ref, a), 3),
        "likelihood",
        likelihood_ranking(ref, a, b),
        flush=True,
    )
    regs = None
    names = variants.split(",")
    if any(VARIANTS[v].get("reg") for v in names):
        regs = {"a": Regulariser(ref, a, dev, 0), "b": Regulariser(ref, b, dev, 0)}
    for v in names:
        cfg = {**BASE, **VARIANTS[v]}
        for n in [int(x) for x in ns.split(",")]:
            for seed in range(int(seeds)):
                t0 = time.time()
                r = run(ref, a, b, n, seed, cfg, regs)
                r.update(variant=v, n=n, seed=seed, seconds=round(time.time() - t0, 1))
                print(json.dumps(r), flush=True)
                with open(out, "a") as f:
                    f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
