"""Recipes: named TOML files saying what to train, on what, and how.

``alice reference build NAME`` and ``alice modality add MODALITY`` look NAME up
(as ``NAME.toml``) in, in order: the folders of ``ALICE_RECIPE_PATH``
(``os.pathsep``-separated), then folders plugins register (the built-in
``registry/`` among them). NAME may also be a path to a TOML file.
No recipe is ever executed: they are plain data, checked field by field.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_type_hints

import tomllib

from alice import console
from alice.config.modality import BackboneSpec, DataSpec
from alice.config.training import ALIGNMENT_LOSSES, FAST_PATH_CHOICES, STAGES, InterventionSpec, Recipe
from alice.errors import AliceError
from alice.plugin.manager import get_registry
from alice.reading import MAX_TOML_BYTES, memory_bytes, parse_toml, size_text

# Tables whose unknown keys are options for a plugin rather than recipe fields.
_OPTION_TABLES = {DataSpec: ("dataset",), BackboneSpec: ("name",)}


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _build(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a TOML table; ``where`` is the field path for error messages."""
    if not isinstance(raw, dict):
        raise AliceError(f"{where or 'recipe'} must be a table, got {type(raw).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    raw = dict(raw)
    kwargs: dict[str, Any] = {}
    if cls in _OPTION_TABLES:
        known = set(_OPTION_TABLES[cls])
        kwargs["options"] = {k: raw.pop(k) for k in list(raw) if k not in known}
    elif cls is InterventionSpec:
        known = {"design", "prompt_backbone"}
        kwargs["settings"] = {k: raw.pop(k) for k in list(raw) if k not in known}
    for key, value in raw.items():
        if key not in fields or key == "source":
            raise AliceError(
                f"unknown field {_join(where, key)!r} (known: {', '.join(k for k in fields if k != 'source')})"
            )
        kwargs[key] = _coerce(hints[key], value, _join(where, key))
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise AliceError(f"missing required field {_join(where, name)!r}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = getattr(hint, "__origin__", None)
    args = getattr(hint, "__args__", ())
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if type(None) in args:  # Optional[X]
        inner = next(a for a in args if a is not type(None))
        return None if value is None else _coerce(inner, value, where)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool, float):
        if type(value) is not hint:
            raise AliceError(f"{where} must be {hint.__name__}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise AliceError(f"{where} must be a list, got {value!r}")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise AliceError(f"{where} must be a table, got {value!r}")
        if args and args[1] is str:
            for k, v in value.items():
                if not isinstance(v, str):
                    raise AliceError(f"{where}.{k} must be str, got {v!r}")
        return dict(value)
    return value


#: what only stage 1 uses: a modality recipe trains E and D against a reference that fixed these already
REFERENCE_ONLY = ("intervention", "model.latent_dim", "model.classifier_hidden", "model.classifier_dropout")


def _reference_only_fields(raw: dict[str, Any]) -> list[str]:
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    return [f for f in REFERENCE_ONLY if (f in raw if "." not in f else f.split(".", 1)[1] in model)]


def _settle_design(spec: InterventionSpec) -> list[str]:
    """Drop the settings of other designs from ``spec`` (returns their names); refuse settings no design takes.

    Each design declares its settings (:meth:`Intervention.setting_names`, its constructor's
    keywords), so a recipe written for one design can switch to another with
    ``--set intervention.design=...``: the first design's settings are left out.
    """
    registry = get_registry()
    design = registry.intervention(spec.design)
    own = design.setting_names()
    if own is None:  # a design taking **kwargs: every setting may be its own
        return []
    others: dict[str, str] = {}
    for name in registry.names("intervention"):
        if name != spec.design:
            for key in registry.intervention(name).setting_names() or ():
                others.setdefault(key, name)
    dropped = [k for k in spec.settings if k not in own and k in others]
    unknown = [k for k in spec.settings if k not in own and k not in others]
    if unknown:
        raise AliceError(
            f"intervention.{unknown[0]} is no setting of design {spec.design!r} (it takes: {', '.join(own) or 'none'})"
        )
    for key in dropped:
        del spec.settings[key]
    if spec.prompt_backbone is not None and not design.takes_prompts:
        spec.prompt_backbone = None
        dropped.append("prompt_backbone")
    return dropped


def parse_recipe(raw: dict[str, Any], name: str, source: str = "", quiet: bool = False) -> Recipe:
    """A recipe from its TOML table; ``quiet``: say nothing of settings of other designs left out."""
    raw = dict(raw)
    raw.setdefault("name", name)
    if raw.get("stage") == "modality" and (fields := _reference_only_fields(raw)):
        raise AliceError(
            f"recipe {raw['name']!r}: {', '.join(fields)} belong to reference recipes; a modality recipe trains only "
            "the "
            "new modality's encoder and decoder against the reference's own classifier, interventions and latent size"
        )
    try:
        recipe: Recipe = _build(Recipe, raw, "")
    except AliceError as exc:
        raise AliceError(f"recipe {raw['name']!r}: {exc}") from None
    recipe.source = source
    if recipe.stage not in STAGES:
        raise AliceError(f"recipe {recipe.name!r}: stage must be one of {', '.join(STAGES)}, got {recipe.stage!r}")
    if not recipe.family:
        recipe.family = recipe.name.rsplit("-", 1)[0]
    t = recipe.training
    try:
        _check_values(recipe)
    except AliceError as exc:
        raise AliceError(f"recipe {recipe.name!r}: {exc}") from None
    # feature size and classes unknown yet: a lower bound, against all of this machine's memory (a GPU's is
    # checked before training, alice.train.jobs)
    lower = model_parameters(recipe, latent_dim=1 if recipe.stage == "modality" else None)
    total = memory_bytes(available=False)
    check_model_fits(recipe, lower, (total, f"this machine has {size_text(total)} of memory"), at_least=True)
    for label, known in FAST_PATH_CHOICES.items():
        value = getattr(t, label)
        if value not in known:
            raise AliceError(
                f"recipe {recipe.name!r}: training.{label} must be one of {', '.join(known)}, got {value!r}"
            )
    a = recipe.alignment
    if a.paper:  # one setting for the paper's method on recipes that align by default
        a.weight, a.centre, a.project = 0.0, False, 0.0
    if a.weight < 0 or a.loss not in ALIGNMENT_LOSSES or not 0 <= a.project <= 1:
        raise AliceError(
            f"recipe {recipe.name!r}: alignment.weight must be 0 or more, alignment.project from 0 to 1 and "
            f"alignment.loss one of {', '.join(ALIGNMENT_LOSSES)} (got {a.weight}, {a.project}, {a.loss!r})"
        )
    if recipe.stage == "reference":
        try:
            dropped = _settle_design(recipe.intervention)
        except AliceError as exc:
            raise AliceError(f"recipe {recipe.name!r}: {exc}") from None
        if dropped and not quiet:
            console.info(
                f"intervention design {recipe.intervention.design!r} takes no {', '.join(dropped)} (settings of "
                "another design in the recipe): left out"
            )
    return recipe


#: the most training steps a recipe may ask for: 1,000 times the paper's 100,000 (days of training at any size)
MAX_STEPS = 100_000_000
#: the largest whole number a recipe may hold anywhere (torch, numpy and the seeds take 64-bit integers)
MAX_INT = 2**63 - 1

#: settings that must be above zero, and at zero or above (every number must also be finite)
POSITIVE = ("training.steps", "training.batch_size", "training.lr", "model.latent_dim")
NON_NEGATIVE = (
    "training.rec_weight",
    "training.cls_weight",
    "training.sem_weight",
    "training.seed",
    "training.eval_every",
    "training.log_every",
    "training.checkpoint_every",
    "training.extract_batch_size",
)


def _numbers(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every number in a recipe (dataclasses, tables and lists walked), with its field's name."""
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            if f.name != "source":
                yield from _numbers(getattr(value, f.name), _join(where, f.name))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, _join(where, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{where}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield where, value


def _check_values(recipe: Recipe) -> None:
    """Finite numbers everywhere; sizes positive, weights not negative, each named by its field."""
    if recipe.training.steps > MAX_STEPS:
        raise AliceError(
            f"training.steps must be at most {MAX_STEPS:,} (the paper trains 100,000), got {recipe.training.steps:,}"
        )
    found = dict(_numbers(recipe, ""))
    for where, value in found.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise AliceError(f"{where} must be a finite number, got {value}")
        if isinstance(value, int) and abs(value) > MAX_INT:
            raise AliceError(f"{where} must be a number of at most 19 digits (below 2**63), got {value}")
    for where in POSITIVE:
        if found[where] <= 0:
            raise AliceError(f"{where} must be positive, got {found[where]}")
    for where in NON_NEGATIVE:
        if found[where] < 0:
            raise AliceError(f"{where} must be zero or more, got {found[where]}")
    for where in ("model.encoder_hidden", "model.classifier_hidden"):
        for i, width in enumerate(getattr(recipe.model, where.split(".")[1])):
            if width <= 0:
                raise AliceError(f"{where}[{i}] must be a positive width, got {width}")
    if not 0 <= recipe.model.classifier_dropout < 1:
        dropout = recipe.model.classifier_dropout
        raise AliceError(f"model.classifier_dropout must be at least 0 and below 1, got {dropout}")
    _check_design_settings(recipe.intervention)


def mlp_parameters(sizes: list[int]) -> int:
    """The weights and biases of :func:`alice.core.modules.mlp` over layer ``sizes``, counted without building it."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def model_parameters(recipe: Recipe, feature_dim: int = 1, classes: int = 1, latent_dim: int | None = None) -> int:
    """What a recipe trains besides its intervention: E and D, and for a reference C (``latent_dim``: the
    reference's, for a modality recipe). The defaults of 1 give a lower bound before the data is known."""
    m, latent = recipe.model, latent_dim or recipe.model.latent_dim
    n = mlp_parameters([feature_dim, *m.encoder_hidden, latent]) + mlp_parameters(
        [latent, *reversed(m.encoder_hidden), feature_dim]
    )
    return n + (mlp_parameters([latent, *m.classifier_hidden, classes]) if recipe.stage == "reference" else 0)


def check_model_fits(
    recipe: Recipe,
    parameters: int,
    memory: tuple[int, str],
    at_least: bool = False,
    intervention: bool = False,
) -> None:
    """Refuse, before anything is allocated, a model whose training needs more than ``memory`` (bytes, and the
    words for them: "this machine has 16.0 GiB of memory"): float32 weights and gradients, and Adam's moments.
    ``intervention``: the count includes the intervention's parameters (its settings are named too)."""
    per_parameter = 4 * (2 + (3 if recipe.training.amsgrad else 2))
    if parameters * per_parameter <= memory[0]:
        return
    m = recipe.model
    sizes = [f"model.encoder_hidden {m.encoder_hidden}"]
    if recipe.stage == "reference":
        sizes = [f"model.latent_dim {m.latent_dim}", *sizes, f"model.classifier_hidden {m.classifier_hidden}"]
        if intervention:
            sizes += [f"intervention.{k} {v}" for k, v in recipe.intervention.settings.items() if isinstance(v, int)]
    raise AliceError(
        f"recipe {recipe.name!r}: the model's sizes ({', '.join(sizes)}) make {'at least ' if at_least else ''}"
        f"{parameters:,} parameters, {size_text(4 * parameters)} of float32 weights and about "
        f"{size_text(per_parameter * parameters)} to train them (weights, gradients, Adam's moments); {memory[1]}: "
        "choose smaller sizes"
    )


def _check_design_settings(spec: InterventionSpec) -> None:
    """A design's settings whose default is a positive whole number (a width, a count) must be one too."""
    try:
        design = get_registry().intervention(spec.design)
    except AliceError:
        return  # an unknown design is named when the run starts, with the known ones
    defaults = {n: p.default for n, p in inspect.signature(design.__init__).parameters.items()}
    for key, value in spec.settings.items():
        default = defaults.get(key)
        sized = isinstance(default, int) and not isinstance(default, bool) and default > 0
        if sized and isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            raise AliceError(f"intervention.{key} must be positive, got {value}")


def search_path() -> list[Path]:
    env = [Path(p) for p in os.environ.get("ALICE_RECIPE_PATH", "").split(os.pathsep) if p]
    return env + get_registry().recipe_dirs()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return parse_toml(f.read(MAX_TOML_BYTES + 1), f"recipe {path}")
    except tomllib.TOMLDecodeError as exc:
        raise AliceError(f"recipe {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        where = f"byte {exc.object[exc.start]:#04x} at {exc.start}"
        raise AliceError(f"recipe {path} is not UTF-8 text ({where})") from None
    except OSError as exc:
        raise AliceError(f"cannot read recipe {path}: {exc.strerror}") from None


def find_recipe(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        if not p.is_file():
            raise AliceError(f"recipe file {name_or_path} does not exist")
        return p
    for folder in search_path():
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(r.name for r in list_recipes())) or "none"
    # a plugin that failed to load registered no recipe folder: its recipes are missing too
    raise AliceError(f"unknown recipe {name_or_path!r} (known: {known}){get_registry().missing_hint()}")


def load_recipe(name_or_path: str, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe by name or path; ``overrides`` are ``section.key=value`` strings."""
    path = find_recipe(name_or_path)
    raw = _read_toml(path)
    for item in overrides or []:
        _apply_override(raw, item)
    return parse_recipe(raw, path.stem, str(path))


def _apply_override(raw: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise AliceError(f"--set expects section.key=value, got {item!r}")
    key, text = item.split("=", 1)
    try:
        value = parse_toml(f"v = {text}", f"--set {key}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word is a string
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise AliceError(f"--set {key}: {part!r} is not a table")
    node[parts[-1]] = value


def data_overrides(items: list[str]) -> dict[str, Any]:
    """``data.KEY=VALUE`` strings (``alice eval --set``) as data set options; anything else is refused."""
    raw: dict[str, Any] = {}
    for item in items:
        if not item.strip().startswith("data.") or item.strip().startswith("data.dataset="):
            raise AliceError(
                f"--set here takes data.KEY=VALUE, an option of the adapters' own data sets (e.g. "
                f"data.max_digits=9), got {item!r}"
            )
        _apply_override(raw, item)
    return dict(raw.get("data", {}))


def list_recipes(stage: str | None = None) -> list[Recipe]:
    """Every recipe on the search path (first one wins per name); broken files are skipped."""
    seen: dict[str, Recipe] = {}
    for folder in search_path():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            if path.stem in seen:
                continue
            try:
                seen[path.stem] = parse_recipe(_read_toml(path), path.stem, str(path), quiet=True)
            except AliceError:
                continue
    return [r for r in seen.values() if stage is None or r.stage == stage]


def modality_recipe_for(family: str, modality: str) -> str:
    """The name ``alice modality add MODALITY`` uses for a reference of ``family``."""
    return f"{family}-{modality}"
