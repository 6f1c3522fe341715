"""Semantic interventions: "replace class i with class j" in latent space.

An intervention k = (remove i, add j) acts on labels as Delta_k(y): y_i <- 0,
y_j <- 1. The intervention module M_k acts on latents so that the classifier
sees Delta_k(y) in M_k(z). Three designs from the paper, each registered
through the ``alice_register_interventions`` hook like any plugin's design:

- ``global``:    M(z) = z + b_j - b_i
- ``affine``:    M(z) = z + (A_j - A_i) z + (b_j - b_i)
- ``nonlinear``: M(z) = z + f([z; t_ij]), t_ij an embedding of a sentence such
  as "replace all i with j" (one of several templates per sample)

Every design returns its output on the unit sphere, where the encoder puts
latents, so an edited latent can be searched, classified or edited again like
any other (the paper states this for the non-linear design; for the other two
it changes nothing the classifier could not absorb and keeps the space closed).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

# Sentences the non-linear design is conditioned on; {i} is removed, {j} added.
PROMPT_TEMPLATES: tuple[str, ...] = (
    "replace all {i} with {j}",
    "swap the {i} for a {j}",
    "turn every {i} into a {j}",
    "take out the {i} and put in a {j}",
    "remove {i}, add {j}",
    "change the {i} to a {j}",
    "instead of {i}, show {j}",
    "the same scene with {j} in place of {i}",
    "substitute {j} for {i}",
    "exchange {i} with {j}",
    "no more {i}; there is a {j} now",
    "make the {i} a {j}",
    "put a {j} where the {i} was",
    "{i} out, {j} in",
    "trade the {i} for a {j}",
    "edit the scene: {i} becomes {j}",
)


@dataclass
class InterventionBatch:
    """One sampled intervention per sample: class indices and which are usable."""

    remove: torch.Tensor  # [B] long
    add: torch.Tensor  # [B] long
    valid: torch.Tensor  # [B] bool: the sample had a class to remove and one to add
    template: torch.Tensor  # [B] long, prompt template for designs that use text

    def apply_to_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Delta_k(y): the labels the edited latent should carry (unchanged where not ``valid``)."""
        # written without boolean indexing: no data-dependent shapes, so no host sync on
        # a GPU and nothing that stops CUDA-graph capture; where not valid, the entries
        # are written back unchanged
        rows = torch.arange(y.shape[0], device=y.device)
        out = y.clone()
        out[rows, self.remove] = torch.where(self.valid, torch.zeros_like(y[:, 0]), y[rows, self.remove])
        out[rows, self.add] = torch.where(self.valid, torch.ones_like(y[:, 0]), out[rows, self.add])
        return out

    def __getitem__(self, index: slice) -> InterventionBatch:
        """The interventions of a slice of the batch (one process's share of a global batch)."""
        return InterventionBatch(self.remove[index], self.add[index], self.valid[index], self.template[index])


def sample_interventions(
    y: torch.Tensor,
    annotated: torch.Tensor | None = None,
    num_templates: int = 1,
    generator: torch.Generator | None = None,
) -> InterventionBatch:
    """Draw, per sample, a present class to remove and an absent class to add, uniformly.

    ``annotated`` ([C] bool) restricts both draws to classes this modality
    annotates; an unannotated class is unknown, neither present nor absent.
    """
    B, C = y.shape
    if annotated is None:
        annotated = torch.ones(C, dtype=torch.bool, device=y.device)
    present = (y > 0.5) & annotated
    absent = (y <= 0.5) & annotated
    noise = torch.rand((B, C), device=y.device, generator=generator)
    # argmax of uniform noise over the eligible entries = a uniform draw among them
    remove = torch.where(present, noise, -1.0).argmax(dim=1)
    add = torch.where(absent, noise, -1.0).argmax(dim=1)
    valid = present.any(dim=1) & absent.any(dim=1)
    template = torch.randint(num_templates, (B,), device=y.device, generator=generator)
    return InterventionBatch(remove, add, valid, template)


class Intervention(nn.Module):
    """Base class of intervention designs: ``forward(z, batch) -> edited z``.

    ``settings()`` returns the JSON-able keyword arguments that rebuild the
    module (together with num_classes and latent_dim); they go into
    reference.json. A design that wants sentence embeddings sets
    ``self.uses_prompts`` and receives them through ``set_prompt_embeddings``.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: may be conditioned on sentence embeddings, made by the recipe's ``[intervention.prompt_backbone]``
    takes_prompts: ClassVar[bool] = False

    def __init__(self, num_classes: int, latent_dim: int) -> None:
        super().__init__()
        self.num_classes, self.latent_dim = num_classes, latent_dim
        self.uses_prompts = False

    @classmethod
    def setting_names(cls) -> tuple[str, ...] | None:
        """The settings this design takes: its constructor's keyword arguments after num_classes and latent_dim.

        None when the constructor takes ``**kwargs`` (any setting may be its own).
        """
        params = list(inspect.signature(cls.__init__).parameters.values())[3:]  # self, num_classes, latent_dim
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))

    def settings(self) -> dict[str, Any]:
        return {}

    def forward(self, z: torch.Tensor, k: InterventionBatch) -> torch.Tensor:
        raise NotImplementedError


class GlobalIntervention(Intervention):
    name = "global"
    description = "one learned vector per class: M(z) = z + b_j - b_i"

    def __init__(self, num_classes: int, latent_dim: int) -> None:
        super().__init__(num_classes, latent_dim)
        self.b = nn.Parameter(torch.zeros(num_classes, latent_dim))

    def forward(self, z: torch.Tensor, k: InterventionBatch) -> torch.Tensor:
        return F.normalize(z + self.b[k.add] - self.b[k.remove], dim=-1)


@torch.compiler.disable  # data-dependent groups: compiled, it would specialise (and recompile) on every batch
def _per_class_matvec(A: torch.Tensor, cls: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Row b of the result is A[cls[b]] @ z[b], without gathering a [B, d, d] tensor.

    Samples are grouped by class, so the work is one [n_c, d] x [d, d] matmul
    per class present in the batch (80 x 512 x 512 fp32 matrices gathered per
    sample would be 1 GB at batch 1024).
    """
    order = torch.argsort(cls)
    counts = torch.bincount(cls, minlength=A.shape[0]).tolist()
    groups = z[order].split(counts)
    # views of A, one per class: their backward stacks one gradient of A's size, where
    # indexing A[c] per class made one full-size zero tensor per class (80 of them at paper sizes)
    per_class = A.unbind(0)
    products = torch.cat([g @ per_class[c].T for c, g in enumerate(groups) if g.shape[0]])
    out = torch.empty_like(products)
    out[order] = products
    return out


class AffineIntervention(Intervention):
    name = "affine"
    description = "one learned affine map per class: M(z) = z + (A_j - A_i) z + (b_j - b_i)"

    def __init__(self, num_classes: int, latent_dim: int) -> None:
        super().__init__(num_classes, latent_dim)
        self.A = nn.Parameter(torch.zeros(num_classes, latent_dim, latent_dim))
        self.b = nn.Parameter(torch.zeros(num_classes, latent_dim))

    def forward(self, z: torch.Tensor, k: InterventionBatch) -> torch.Tensor:
        delta = _per_class_matvec(self.A, k.add, z) - _per_class_matvec(self.A, k.remove, z)
        return F.normalize(z + delta + self.b[k.add] - self.b[k.remove], dim=-1)


class NonLinearIntervention(Intervention):
    """M(z) = normalise(z + f([z; t_ij])), f an MLP with one hidden layer.

    ``condition="text"``: t_ij is a sentence embedding of a template filled
    with the class names, computed once at build time by a text backbone and
    stored in the reference artifact (buffer ``prompts``: [C, C, T, d]), so
    using M_ref never needs that backbone. ``condition="onehot"``:
    t_ij = [onehot(i); onehot(j)], for users without a text backbone.
    """

    name = "nonlinear"
    description = 'an MLP on [z; t_ij], t_ij an embedding of "replace all i with j": M(z) = z + f([z; t_ij])'
    takes_prompts = True

    def __init__(
        self,
        num_classes: int,
        latent_dim: int,
        hidden: int = 1024,
        condition: str = "text",
        prompt_dim: int = 384,
        num_templates: int = len(PROMPT_TEMPLATES),
        init_scale: float = 0.01,
    ) -> None:
        super().__init__(num_classes, latent_dim)
        if condition not in ("text", "onehot"):
            raise ValueError(f"condition must be 'text' or 'onehot', got {condition!r}")
        self.hidden, self.condition, self.init_scale = hidden, condition, init_scale
        self.uses_prompts = condition == "text"
        if condition == "text":
            self.prompt_dim, self.num_templates = prompt_dim, num_templates
            self.register_buffer("prompts", torch.zeros(num_classes, num_classes, num_templates, prompt_dim))
        else:
            self.prompt_dim, self.num_templates = 2 * num_classes, 1
        self.f = nn.Sequential(nn.Linear(latent_dim + self.prompt_dim, hidden), nn.ELU(), nn.Linear(hidden, latent_dim))
        # start near the identity: the residual branch is scaled down at init
        with torch.no_grad():
            self.f[2].weight.mul_(init_scale)
            self.f[2].bias.zero_()

    def settings(self) -> dict[str, Any]:
        s: dict[str, Any] = {"hidden": self.hidden, "condition": self.condition, "init_scale": self.init_scale}
        if self.condition == "text":
            s.update(prompt_dim=self.prompt_dim, num_templates=self.num_templates)
        return s

    def set_prompt_embeddings(self, prompts: torch.Tensor) -> None:
        """Fill the [C, C, T, d] table of sentence embeddings (row i: removed, column j: added)."""
        if prompts.shape != self.prompts.shape:
            raise ValueError(f"prompt table must be {tuple(self.prompts.shape)}, got {tuple(prompts.shape)}")
        self.prompts.copy_(prompts)

    def condition_vector(self, k: InterventionBatch) -> torch.Tensor:
        if self.condition == "text":
            return self.prompts[k.remove, k.add, k.template % self.num_templates]
        eye = torch.eye(self.num_classes, device=k.add.device)
        return torch.cat([eye[k.remove], eye[k.add]], dim=-1)

    def forward(self, z: torch.Tensor, k: InterventionBatch) -> torch.Tensor:
        t = self.condition_vector(k).to(z.dtype)
        return F.normalize(z + self.f(torch.cat([z, t], dim=-1)), dim=-1)


def prompt_sentences(vocabulary: list[str], num_templates: int) -> list[str]:
    """All sentences of the prompt table, in [i, j, template] order."""
    templates = PROMPT_TEMPLATES[:num_templates]
    return [t.format(i=a, j=b) for a in vocabulary for b in vocabulary for t in templates]


BUILTIN_INTERVENTIONS = (GlobalIntervention, AffineIntervention, NonLinearIntervention)
