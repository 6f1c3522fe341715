"""The two user-facing jobs: build a reference space, add a modality to one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alice import console, distributed
from alice.artifacts import AdapterWeights, ReferenceSpace, now, write_adapter, write_reference
from alice.data import ModalityData, load_modality, make_backbone, pick_device
from alice.errors import AliceError
from alice.evaluation.metrics import classification_metrics, youden_thresholds
from alice.features import extract_features
from alice.interventions import Intervention, prompt_sentences
from alice.modules import Classifier, Encoder
from alice.plugins import get_registry
from alice.recipes import Recipe
from alice import checkpoints
from alice.training import Checkpointing, train_adapter, train_reference, training_summary


def _intervention_from_recipe(recipe: Recipe, vocabulary: list[str], device: torch.device) -> Intervention:
    spec = recipe.intervention
    design = get_registry().intervention(spec.design)
    settings = dict(spec.settings)
    prompt_backbone = None
    if spec.prompt_backbone is not None:
        prompt_backbone, plugin = make_backbone(spec.prompt_backbone)
        if prompt_backbone.modality != "text":
            raise AliceError(f"intervention.prompt_backbone {prompt_backbone.name!r} reads {prompt_backbone.modality}, not text")
        settings.setdefault("prompt_dim", prompt_backbone.feature_dim)
    try:
        module = design(len(vocabulary), recipe.model.latent_dim, **settings)
    except (TypeError, ValueError) as exc:
        raise AliceError(f"intervention design {spec.design!r}: {exc}") from None
    if module.uses_prompts:
        if prompt_backbone is None:
            raise AliceError(
                f"intervention design {spec.design!r} is conditioned on text: set [intervention.prompt_backbone] "
                "in the recipe (for example name = \"minilm\"), or condition = \"onehot\""
            )
        sentences = prompt_sentences(vocabulary, module.num_templates)
        console.info(f"embedding {len(sentences)} intervention prompts with {prompt_backbone.name}")
        emb = extract_features(
            prompt_backbone, sentences,
            dataset_identity={"name": "intervention-prompts", "sentences": sentences[:3], "n": len(sentences), "vocab": vocabulary},
            split="prompts", device=device, plugin=plugin,
        )
        C, T = len(vocabulary), module.num_templates
        module.set_prompt_embeddings(emb.view(C, C, T, -1))
    return module


@torch.no_grad()
def _thresholds_and_metrics(data: ModalityData, encoder: Encoder, classifier: Classifier) -> tuple[np.ndarray, dict[str, Any]]:
    annotated = data.mapping.annotated
    probs = torch.sigmoid(classifier(encoder(data.features["val"]))).cpu().numpy()
    labels = data.labels["val"].cpu().numpy()
    thresholds = youden_thresholds(probs, labels, annotated)
    return thresholds, classification_metrics(probs, labels, thresholds, annotated)


def _adapter_manifest(recipe: Recipe, data: ModalityData, thresholds: np.ndarray, training: dict, metrics: dict) -> dict[str, Any]:
    return {
        "modality": data.modality,
        "recipe": recipe.name,
        "created": now(),
        "data": {"dataset": recipe.data.dataset, "options": recipe.data.options, "vocabulary": data.dataset.vocabulary},
        "backbone": {
            "name": recipe.backbone.name,
            "options": recipe.backbone.options,
            "identity": data.backbone.identity(),
            "feature_dim": data.feature_dim,
            "normalisation": "(x - normalisation.mean) / normalisation.std"
            + (", per-dimension statistics of the train split" if recipe.model.standardise_features else ", mean 0 and std 1 (features used as they are)"),
        },
        "labels": {
            "mapper": recipe.labels.mapper,
            "aliases": recipe.labels.aliases,
            "mapping": data.mapping.mapping,
            "annotated": [c for c, a in zip(data.mapping.reference, data.mapping.annotated) if a],
        },
        "encoder_hidden": recipe.model.encoder_hidden,
        "thresholds": [round(float(v), 6) for v in thresholds],
        "training": training,
        "metrics": {"val": metrics},
        "samples": {split: int(x.shape[0]) for split, x in data.features.items()},
    }


ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_modality(recipe: Recipe) -> None:
    """Before any extraction: the recipe's modality is its data set's."""
    holds = get_registry().dataset(recipe.data.dataset).modality
    if holds != recipe.modality:
        raise AliceError(f"recipe {recipe.name!r} says modality {recipe.modality!r}, but data set {recipe.data.dataset!r} holds {holds}")


def _checkpointing(recipe: Recipe, output: Path, resume: bool, overwrite: bool, stage: str) -> Checkpointing:
    """Checkpoints beside the output; an interrupted run's checkpoint is kept unless asked otherwise."""
    folder = checkpoints.checkpoint_folder(output)
    settings = recipe.to_dict()
    settings["training"] = {k: v for k, v in settings["training"].items() if k not in ("steps", "device", "eval_every", "checkpoint_every")}
    if not resume and (folder.exists() or folder.with_name(folder.name + ".old").exists()):
        if not overwrite:
            raise AliceError(f"an interrupted run left a checkpoint at {folder}: pass --resume to continue it, or --overwrite to start over")
        if distributed.is_main():
            checkpoints.remove(folder)
    distributed.barrier()  # every process has looked before rank 0 writes anything
    return Checkpointing(folder, recipe.training.checkpoint_every, resume, checkpoints.fingerprint({"stage": stage, **settings}))


def build_reference(
    recipe: Recipe, out: Path, overwrite: bool = False, device_name: str | None = None, resume: bool = False
) -> ReferenceSpace:
    if recipe.stage != "reference":
        raise AliceError(f"recipe {recipe.name!r} is a {recipe.stage} recipe; use `alice modality add` with it")
    out = Path(out)
    if out.exists() and not overwrite:  # fail before any work, not after training
        raise AliceError(f"{out} already exists; pass --overwrite to replace it")
    _check_modality(recipe)
    with distributed.session(pick_device(device_name or recipe.training.device)) as device:
        return _build_reference(recipe, out, overwrite, device, resume)


def _build_reference(recipe: Recipe, out: Path, overwrite: bool, device: torch.device, resume: bool) -> ReferenceSpace:
    distributed.batch_slice(recipe.training.batch_size)  # refuse an uneven split before any work
    checkpointing = _checkpointing(recipe, out, resume, overwrite, "reference")
    console.info(f"building reference space {recipe.name!r} on {device}{_processes()}")
    data = load_modality(recipe.data, recipe.backbone, None, device, labels=recipe.labels, extract_batch_size=recipe.training.extract_batch_size,
        standardise=recipe.model.standardise_features,
    )
    vocab = data.dataset.vocabulary
    torch.manual_seed(recipe.training.seed)  # M's initial weights, like E, D, C's, follow the seed
    intervention = _intervention_from_recipe(recipe, vocab, device)
    m = recipe.model
    encoder, decoder, classifier, intervention, history = train_reference(
        data, intervention, recipe.training, m.latent_dim, m.encoder_hidden, m.classifier_hidden, m.classifier_dropout, device, checkpointing
    )
    thresholds, metrics = _thresholds_and_metrics(data, encoder, classifier)
    training = training_summary(recipe.training, history, device)
    manifest = {
        "name": recipe.name,
        "family": recipe.family,
        "created": now(),
        "reference_modality": data.modality,
        "vocabulary": vocab,
        "latent_dim": m.latent_dim,
        "classifier": {"hidden": m.classifier_hidden, "dropout": m.classifier_dropout},
        "intervention": {"design": recipe.intervention.design, "settings": intervention.settings()},
        "recipe": recipe.to_dict(),
        "training": {k: v for k, v in training.items() if k != "history"},
        "metrics": {"val": metrics},
    }
    adapter = AdapterWeights(
        data.modality, encoder, decoder, data.mean, data.std,
        _adapter_manifest(recipe, data, thresholds, training, metrics),
    )
    if distributed.is_main():  # one writer; the others wait for the artifact
        write_reference(out, classifier, intervention, manifest, adapter, overwrite=overwrite)
        checkpoints.remove(checkpointing.folder)
    distributed.barrier()
    console.info(f"wrote {out} (val AUROC {metrics['auroc']:.3f}, {history.seconds:.0f} s of training)")
    return ReferenceSpace.load(out)


def _processes() -> str:
    n = distributed.world_size()
    return f", {n} processes, global batch split evenly" if n > 1 else ""


def add_modality(
    reference_dir: Path, recipe: Recipe, name: str | None = None, overwrite: bool = False,
    device_name: str | None = None, resume: bool = False,
) -> Path:
    if recipe.stage != "modality":
        raise AliceError(f"recipe {recipe.name!r} is a {recipe.stage} recipe; use `alice reference build` with it")
    reference = ReferenceSpace.load(reference_dir)
    name = name or recipe.modality
    if not ADAPTER_NAME.match(name):
        raise AliceError(f"adapter name {name!r} must be letters, digits, '.', '_' or '-' (and start with a letter or digit)")
    if (reference.path / "adapters" / name).exists() and not overwrite:
        raise AliceError(f"reference {reference.path} already has an adapter {name!r}; pass --overwrite to replace it")
    _check_modality(recipe)
    with distributed.session(pick_device(device_name or recipe.training.device)) as device:
        return _add_modality(reference, recipe, name, overwrite, device, resume)


def _add_modality(reference: ReferenceSpace, recipe: Recipe, name: str, overwrite: bool, device: torch.device, resume: bool) -> Path:
    distributed.batch_slice(recipe.training.batch_size)
    checkpointing = _checkpointing(recipe, reference.path / "adapters" / name, resume, overwrite, f"modality:{reference.sha256}")
    console.info(f"adding modality {name!r} to {reference.path} on {device} (C_ref and M_ref frozen){_processes()}")
    data = load_modality(recipe.data, recipe.backbone, reference.vocabulary, device, labels=recipe.labels, extract_batch_size=recipe.training.extract_batch_size,
        standardise=recipe.model.standardise_features,
    )
    encoder, decoder, history = train_adapter(
        data, reference.classifier, reference.intervention, recipe.training, reference.latent_dim, recipe.model.encoder_hidden, device, checkpointing
    )
    thresholds, metrics = _thresholds_and_metrics(data, encoder, reference.classifier)
    training = training_summary(recipe.training, history, device)
    adapter = AdapterWeights(name, encoder, decoder, data.mean, data.std, _adapter_manifest(recipe, data, thresholds, training, metrics))
    path = reference.path / "adapters" / name
    if distributed.is_main():
        path = write_adapter(reference, adapter, overwrite=overwrite)
        checkpoints.remove(checkpointing.folder)
    distributed.barrier()
    console.info(f"wrote {path} (val AUROC {metrics['auroc']:.3f} through C_ref, {history.seconds:.0f} s of training)")
    return path
