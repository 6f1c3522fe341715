"""Exact nearest neighbours on the unit sphere: cosine similarity is an inner product.

One implementation serves search (an index read block by block from disk) and
evaluation (a gallery tensor in memory): the gallery is multiplied in blocks of
rows, each block's top-k merged into a running top-k, so no ``[queries, n]``
similarity matrix larger than one block ever exists.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

#: queries multiplied at once: with BLOCK_ROWS, at most 4,096 x 65,536 similarities (1 GiB) exist at a time
QUERY_ROWS = 4_096
#: rows of the gallery multiplied at once: 65,536 x 512 float32 is 128 MiB
BLOCK_ROWS = 65_536


def top_k(
    queries: torch.Tensor, blocks: Iterator[tuple[int, torch.Tensor]] | torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k by inner product: ``(scores [q, k], rows [q, k])``, best first.

    ``blocks`` is a gallery tensor or an iterator of ``(first row, block)``; only one block's
    ``[q, rows]`` similarities exist at a time, merged into a running top-k.
    """
    q = queries.to(torch.float32)
    if q.ndim == 1:
        q = q.unsqueeze(0)
    if isinstance(blocks, torch.Tensor):
        gallery = blocks
        if q.shape[0] > QUERY_ROWS:  # many queries (evaluation): in chunks, each over the whole gallery
            parts = [top_k(q[lo : lo + QUERY_ROWS], gallery, k) for lo in range(0, q.shape[0], QUERY_ROWS)]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        blocks = ((lo, gallery[lo : lo + BLOCK_ROWS]) for lo in range(0, gallery.shape[0], BLOCK_ROWS))
    best_scores = torch.full((q.shape[0], 0), float("-inf"))
    best_rows = torch.zeros((q.shape[0], 0), dtype=torch.long)
    for lo, block in blocks:
        sims = q @ block.to(q.device, torch.float32).T
        s, i = sims.topk(min(k, sims.shape[1]), dim=1)
        scores = torch.cat([best_scores.to(s.device), s], dim=1)
        rows = torch.cat([best_rows.to(i.device), i + lo], dim=1)
        keep = scores.topk(min(k, scores.shape[1]), dim=1).indices
        best_scores, best_rows = scores.gather(1, keep), rows.gather(1, keep)
    return best_scores.cpu(), best_rows.cpu()
