"""``alice report``: one HTML page about a reference space, with PNG figures beside it.

The page (``<reference>/report/index.html`` by default) holds:

1. what the space is (vocabulary, modalities, backbones, hashes), from the manifests;
2. the evaluation tables of ``eval.json`` (Tables 1-3 of ``alice eval``; run first if missing or stale);
3. a 2-D projection of the shared latent space: test items of every modality, coloured by label
   and marked by modality (t-SNE from scikit-learn by default, or PCA), and one small panel per
   class showing which items hold it (the labels are multi-label, so one colour per point
   cannot tell the whole story);
4. a grid of search results: test queries of each modality, their top hits in the other
   modalities with their pictures, text or sound, and counterfactual queries ("replace i with j"
   by M_ref) beside the plain ones.

Everything is computed from the artifact and the cached test features; nothing is downloaded
and the page needs no network (no scripts, fonts or styles from elsewhere). The folder is
written beside its final place and renamed into it, so an old report is replaced whole or
not at all.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from alice import console
from alice.artifacts import ReferenceSpace, write_json_atomic
from alice.errors import AliceError
from alice.search import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from alice.verify import REPORT_FOLDER

MARKERS = ["o", "^", "s", "D", "P", "X", "v", "*"]


@dataclass
class Items:
    """A sample of one modality's test split: latents, labels and the raw inputs to show."""

    name: str
    z: torch.Tensor  # [n, latent]
    labels: np.ndarray  # [n, classes] bool, reference vocabulary
    inputs: list[Any]
    annotated: np.ndarray


# --------------------------------------------------------------------------- showing one input


def preview_kind(item: Any) -> str:
    """How an input is shown: "image", "audio" or "text" (anything else is shown as its text)."""
    if isinstance(item, str) and Path(item).suffix.lower() in IMAGE_SUFFIXES and Path(item).is_file():
        return "image"
    if isinstance(item, (str, Path)) and Path(item).suffix.lower() in AUDIO_SUFFIXES and Path(item).is_file():
        return "audio"
    if isinstance(item, str):
        return "text"
    if hasattr(item, "convert") and hasattr(item, "size"):  # a PIL image
        return "image"
    if hasattr(item, "samples") and hasattr(item, "sample_rate"):  # a waveform of an audio plugin
        return "audio"
    if isinstance(item, tuple) and len(item) == 2 and np.ndim(item[0]) == 1 and isinstance(item[1], (int, np.integer)):
        return "audio"
    arr = np.asarray(item) if isinstance(item, (np.ndarray, list)) else None
    if arr is not None and (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))):
        return "image"
    return "text"


def _save_image(item: Any, path: Path, size: int = 96) -> None:
    from PIL import Image

    if isinstance(item, (str, Path)):
        with Image.open(item) as im:
            image = im.convert("RGB")
    elif hasattr(item, "convert"):
        image = item.convert("RGB")
    else:
        arr = np.asarray(item, dtype=np.float32)
        if arr.max() > 1.0:
            arr = arr / 255.0
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
        image = Image.fromarray(arr.squeeze(-1) if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    image.thumbnail((size, size)) if max(image.size) > size else None
    if max(image.size) < size:  # small images (digits are 20 px) scaled up without blurring
        scale = size // max(image.size)
        image = image.resize((image.size[0] * scale, image.size[1] * scale), Image.NEAREST)
    image.save(path)


def _waveform(item: Any) -> tuple[np.ndarray, int]:
    if isinstance(item, (str, Path)):
        import soundfile

        samples, rate = soundfile.read(str(item), dtype="float32", always_2d=True)
        return samples.mean(axis=1), int(rate)
    if hasattr(item, "samples"):
        return np.asarray(item.samples, dtype=np.float32), int(item.sample_rate)
    return np.asarray(item[0], dtype=np.float32), int(item[1])


def _save_audio(item: Any, png: Path, wav: Path) -> None:
    import matplotlib.pyplot as plt
    import soundfile

    samples, rate = _waveform(item)
    soundfile.write(str(wav), samples, rate)
    fig, ax = plt.subplots(figsize=(1.6, 0.8), dpi=80)
    ax.plot(np.arange(len(samples)) / rate, samples, linewidth=0.5, color="#345")
    ax.set_axis_off()
    fig.savefig(png, bbox_inches="tight", pad_inches=0.02)
    plt.close(fig)


class Gallery:
    """Writes each shown input once (PNG, or PNG + WAV) and gives its HTML."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "items").mkdir(parents=True, exist_ok=True)
        self._done: dict[tuple[str, int], str] = {}

    def html(self, modality: str, row: int, item: Any, caption: str) -> str:
        key = (modality, row)
        if key not in self._done:
            kind = preview_kind(item)
            stem = f"items/{modality}-{row}"
            if kind == "image":
                _save_image(item, self.folder / f"{stem}.png")
                body = f'<img src="{stem}.png" alt="{html.escape(modality)} item {row}">'
            elif kind == "audio":
                _save_audio(item, self.folder / f"{stem}.png", self.folder / f"{stem}.wav")
                body = f'<img src="{stem}.png" alt="waveform of {html.escape(modality)} item {row}"><audio controls src="{stem}.wav"></audio>'
            else:
                body = f'<p class="text">{html.escape(str(item))}</p>'
            self._done[key] = body
        return f'<figure>{self._done[key]}<figcaption>{html.escape(caption)}</figcaption></figure>'


# --------------------------------------------------------------------------- data


def _sample(reference: ReferenceSpace, name: str, n: int, seed: int, device: torch.device) -> Items:
    from alice.evaluation.run import _load

    adapter, data = _load(reference, name, device)
    total = data.features["test"].shape[0]
    rows = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
    with torch.no_grad():
        z = adapter.encoder(data.features["test"][torch.as_tensor(rows, device=device)]).cpu()
    inputs = data.dataset.split("test").inputs
    return Items(name, z, data.labels["test"].cpu().numpy()[rows] > 0.5, [inputs[int(i)] for i in rows], data.mapping.annotated)


def _evaluation(reference: ReferenceSpace, device: torch.device, seeds: int) -> dict[str, Any]:
    """eval.json when it describes this reference and its adapters; otherwise a fresh evaluation.

    A missing eval.json is written (as `alice eval` would); one that describes something else
    is left as it is (it may hold paired rows a plain evaluation would not recompute) and the
    report shows a fresh evaluation instead.
    """
    from alice.evaluation.run import evaluate

    path = reference.path / "eval.json"
    stored: Any = None
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            stored = None
    if isinstance(stored, dict) and isinstance(stored.get("modalities"), dict) and isinstance(stored.get("reference"), dict):
        if stored["reference"].get("sha256") == reference.sha256 and set(stored["modalities"]) == set(reference.adapter_names()):
            if "counterfactual" not in stored:
                console.warn("eval.json predates Table 3 (counterfactual search): run `alice eval` again to add it to the report")
            return stored
    if path.exists():
        console.warn(f"{path} does not describe this reference and its adapters: the report shows a fresh evaluation and leaves the file as it is")
        return evaluate(reference, str(device), seeds=seeds)
    console.info("no eval.json yet: running `alice eval` first")
    from alice.modelcard import write_reference_card

    report = evaluate(reference, str(device), seeds=seeds)
    write_json_atomic(path, report)
    write_reference_card(reference.path)
    return report


# --------------------------------------------------------------------------- figures


def _colours(k: int):
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(k)]


def projection_figures(items: list[Items], vocab: list[str], folder: Path, method: str, seed: int) -> dict[str, Any]:
    """latent-map.png (colour: first label, marker: modality) and latent-by-class.png (one panel per class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = torch.cat([it.z for it in items]).numpy()
    if method == "tsne":
        from sklearn.manifold import TSNE

        xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30.0, max(5.0, (len(z) - 1) / 4))).fit_transform(z)
    elif method == "pca":
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=seed).fit_transform(z)
    else:
        raise AliceError(f"unknown projection {method!r} (tsne or pca)")
    labels = np.concatenate([it.labels for it in items])
    which = np.concatenate([np.full(len(it.z), i) for i, it in enumerate(items)])
    colours = _colours(len(vocab))
    first = np.where(labels.any(1), labels.argmax(1), -1)

    fig, ax = plt.subplots(figsize=(7.5, 6.5), dpi=110)
    for m, it in enumerate(items):
        sel = which == m
        c = [colours[f] if f >= 0 else (0.6, 0.6, 0.6, 1) for f in first[sel]]
        ax.scatter(xy[sel, 0], xy[sel, 1], c=c, marker=MARKERS[m % len(MARKERS)], s=14, alpha=0.75, linewidths=0, label=it.name)
    legend = ax.legend(title="modality", loc="upper right", fontsize=8)
    for h in legend.legend_handles:
        h.set_color("black")
    ax.add_artist(legend)
    shown = [c for c in range(len(vocab)) if (first == c).any()][:20]
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colours[c], label=vocab[c]) for c in shown]
    ax.legend(handles=handles, title="first label", loc="lower right", fontsize=7, ncol=2)
    ax.set_title(f"shared latent space ({method.upper() if method == 'pca' else 't-SNE'}), test items")
    ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(folder / "latent-map.png")
    plt.close(fig)

    counts = labels.sum(0)
    classes = [int(c) for c in np.argsort(-counts, kind="stable") if counts[c] > 0][:12]
    cols = 4
    rows = max(1, -(-len(classes) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.8 * rows), dpi=90, squeeze=False)
    for ax, c in zip(axes.flat, classes):
        ax.scatter(xy[:, 0], xy[:, 1], c="#ddd", s=4, linewidths=0)
        for m in range(len(items)):
            sel = (which == m) & labels[:, c]
            ax.scatter(xy[sel, 0], xy[sel, 1], color=colours[c], marker=MARKERS[m % len(MARKERS)], s=8, linewidths=0)
        ax.set_title(vocab[c], fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    for ax in list(axes.flat)[len(classes):]:
        ax.set_axis_off()
    fig.suptitle("items holding each class (markers: modalities as above)", fontsize=10)
    fig.tight_layout()
    fig.savefig(folder / "latent-by-class.png")
    plt.close(fig)
    return {"method": method, "points": int(len(z)), "classes_in_panels": [vocab[c] for c in classes]}


# --------------------------------------------------------------------------- the page


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape(str(v))


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _eval_tables(report: dict[str, Any]) -> str:
    parts = []
    rows = []
    for name, r in report.get("modalities", {}).items():
        c, ic, idr = r["classification"], r["interventions_cycle"], r["interventions_direct"]
        rows.append([name, r["samples"], c["auroc"], c["balanced_accuracy"], c["balanced_accuracy_min"], ic["changed"], ic["unchanged"], idr["changed"], idr["unchanged"]])
    for label, b in (report.get("baselines") or {}).items():
        c, i = b["classification"], b["interventions"]
        rows.append([f"{b['modality']} ({label})", b["samples"], c["auroc"], c["balanced_accuracy"], c["balanced_accuracy_min"], None, None, i["changed"], i["unchanged"]])
    parts.append(html_table(["modality", "n", "AUROC", "bal. acc", "min bal. acc", "changed", "unchanged", "changed (direct)", "unchanged (direct)"], rows,
                            "Table 1: classification and interventions (test split); interventions read as C(E(D(M(z)))), direct as C(M(z))"))
    rows = [[f"{r['query']} → {r['gallery']}", r["method"], r["pairs"], r["gallery_size"], r["label_exact"], r["label_superset"], r["R@1"], r["R@5"], r["R@10"]]
            for r in report.get("retrieval", [])]
    if rows:
        parts.append(html_table(["query → gallery", "method", "pairs", "gallery", "label exact", "label superset", "R@1", "R@5", "R@10"], rows,
                                "Table 2: cross-modal retrieval (test split)"))
    from alice.evaluation.tables import COUNTERFACTUAL_COLUMNS, COUNTERFACTUAL_NOTE, COUNTERFACTUAL_TITLE, counterfactual_rows

    rows = counterfactual_rows(report)
    if rows:
        parts.append(html_table(COUNTERFACTUAL_COLUMNS, rows, f"{COUNTERFACTUAL_TITLE}: {COUNTERFACTUAL_NOTE}"))
    return "\n".join(parts)


def _names(labels: np.ndarray, vocab: list[str]) -> str:
    return ", ".join(vocab[c] for c in np.flatnonzero(labels)) or "no label"


def _search_grid(space, items: dict[str, Items], gallery: Gallery, queries: int, k: int, seed: int) -> tuple[str, list[dict[str, Any]]]:
    """Rows of (query, its top-k in each other modality), plain and counterfactual."""
    from alice.search import top_k

    vocab = space.vocabulary
    rng = np.random.default_rng(seed)
    out, record = [], []
    for qname, q in items.items():
        for target, g in items.items():
            if target == qname:
                continue
            both = q.annotated & g.annotated
            for row in rng.choice(len(q.z), size=min(queries, len(q.z)), replace=False):
                row = int(row)
                present = [c for c in np.flatnonzero(q.labels[row]) if both[c]]
                absent = [c for c in range(len(vocab)) if both[c] and not q.labels[row, c]]
                edits: list[tuple[str, torch.Tensor, str]] = [("plain", q.z[row : row + 1], "")]
                if present and absent:
                    old, new = int(rng.choice(present)), int(rng.choice(absent))
                    edited = space.intervene(q.z[row : row + 1], (old, new), through=qname).cpu()
                    edits.append(("counterfactual", edited, f"replace {vocab[old]} with {vocab[new]}"))
                for kind, z, what in edits:
                    _, hits = top_k(z, g.z, k)
                    cells = [gallery.html(qname, row, q.inputs[row], f"{qname}: {_names(q.labels[row], vocab)}")]
                    cells.append(f'<div class="edit">{html.escape(what) + " →" if what else ""}</div>')
                    for h in hits[0].tolist():
                        cells.append(gallery.html(target, h, g.inputs[h], _names(g.labels[h], vocab)))
                    out.append(f'<div class="row {kind}"><span class="tag">{kind}: {html.escape(qname)} → {html.escape(target)}</span>{"".join(cells)}</div>')
                    record.append({"query": qname, "gallery": target, "row": row, "kind": kind, "edit": what, "hits": hits[0].tolist()})
    return "\n".join(out), record


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.row { display: flex; align-items: flex-start; gap: 0.6em; margin: 0.5em 0; padding: 0.4em; border-bottom: 1px solid #eee; }
.row.counterfactual { background: #f6f8ff; }
.tag { width: 11em; flex: none; font-size: 0.8em; color: #555; }
.edit { align-self: center; font-size: 0.85em; color: #1a4; width: 7em; }
figure { margin: 0; width: 110px; font-size: 0.75em; }
figure img { display: block; max-width: 100px; image-rendering: pixelated; border: 1px solid #ddd; }
figure audio { width: 100px; height: 24px; }
p.text { margin: 0; padding: 0.3em; background: #fafafa; border: 1px solid #ddd; min-height: 3em; }
img.figure { max-width: 100%; border: 1px solid #ddd; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""


def build_report(
    reference_path: Path, out: Path | None = None, per_modality: int = 300, projection: str = "tsne",
    queries: int = 3, k: int = 5, seed: int = 0, device_name: str = "cpu", seeds: int = 5,
) -> Path:
    """Write the report folder (index.html, PNG figures, items/ and report.json); return the HTML file."""
    import alice

    if projection not in ("tsne", "pca"):
        raise AliceError(f"unknown projection {projection!r} (tsne or pca)")
    reference = ReferenceSpace.load(reference_path)
    names = reference.adapter_names()
    if not names:
        raise AliceError(f"reference {reference.path} has no adapters to report on")
    final = Path(out) if out is not None else reference.path / REPORT_FOLDER
    final = final.resolve()
    if final.exists() and not _is_report(final) and (not final.is_dir() or any(final.iterdir())):
        raise AliceError(f"{final} exists and is not an ALICE report; choose another --out")
    from alice.data import pick_device

    device = pick_device(device_name)
    evaluation = _evaluation(reference, device, seeds)
    space = alice.load(reference.path, device)
    vocab = space.vocabulary
    console.info(f"sampling up to {per_modality} test items of each modality")
    items = {name: _sample(reference, name, per_modality, seed + i, device) for i, name in enumerate(names)}
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        console.info(f"projecting {sum(len(it.z) for it in items.values())} latents ({projection})")
        proj = projection_figures(list(items.values()), vocab, tmp, projection, seed)
        console.info("search examples")
        grid, record = _search_grid(space, items, Gallery(tmp), queries, k, seed)
        m = reference.manifest
        adapters = [[n, space.adapter(n).manifest.get("modality"), (space.adapter(n).manifest.get("backbone") or {}).get("name"),
                     (space.adapter(n).manifest.get("data") or {}).get("dataset"), space.adapter(n).sha256[:12] + "…"] for n in names]
        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ALICE report: {html.escape(str(m.get('name', reference.path.name)))}</title>
<style>{STYLE}</style></head><body>
<h1>ALICE report: {html.escape(str(m.get('name', reference.path.name)))}</h1>
<p>Reference space <code>{html.escape(str(reference.path))}</code>, sha256 <code>{reference.sha256[:16]}…</code>:
{len(vocab)} labels, latent {space.latent_dim}-d, intervention design <code>{html.escape(str((m.get('intervention') or {}).get('design', '?')))}</code>,
reference modality <code>{html.escape(space.reference_modality)}</code>. Labels: {html.escape(', '.join(vocab[:80]))}{'…' if len(vocab) > 80 else ''}.</p>
{html_table(["adapter", "modality", "backbone", "data set", "sha256"], adapters, "Modalities")}
<h2>Evaluation</h2>
<p>From <code>eval.json</code> (written by <code>alice eval</code>), test splits.</p>
{_eval_tables(evaluation)}
<h2>The shared latent space</h2>
<p>{proj['points']} test items ({', '.join(f'{len(it.z)} {n}' for n, it in items.items())}) projected to 2-D together;
colour: the item's first label in vocabulary order, marker: its modality.</p>
<img class="figure" src="latent-map.png" alt="2-D projection of the latent space, coloured by label, marked by modality">
<img class="figure" src="latent-by-class.png" alt="one panel per class: the items holding it">
<h2>Search</h2>
<p>Test queries and their top {k} in each other modality (exact cosine search over the sampled test items).
Counterfactual rows edit the query first with M_ref (through the query modality's decoder and encoder), then search.</p>
{grid}
<p><small>Written by alice {html.escape(alice.__version__)} (<code>alice report</code>).</small></p>
</body></html>
"""
        (tmp / "index.html").write_text(page, encoding="utf-8")
        write_json_atomic(tmp / "report.json", {"reference_sha256": reference.sha256, "projection": proj, "search": record,
                                                "per_modality": per_modality, "seed": seed})
        _replace_folder(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final / "index.html"


def _is_report(folder: Path) -> bool:
    """A folder `alice report` wrote: its report.json names a reference (an index.html alone is not enough)."""
    try:
        return isinstance(json.loads((folder / "report.json").read_text()).get("reference_sha256"), str)
    except (OSError, ValueError, AttributeError):
        return False


def _replace_folder(tmp: Path, final: Path) -> None:
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a report is for reading
    if final.exists():
        if not _is_report(final) and any(final.iterdir()):
            raise AliceError(f"{final} exists and is not an ALICE report; choose another --out")
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
