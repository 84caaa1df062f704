"""Contextual stochastic block model (Deshpande et al. 2018): a graph whose communities are
the classes, node features = class mean + Gaussian noise."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from benchmark.datasets._common import DATASETS, generator, random_splits
from benchmark.datasets.base import PreparedData


@DATASETS.register("csbm")
def csbm(
    root: str | Path | None = None,
    seed: int = 0,
    *,
    num_nodes: int = 2500,
    num_classes: int = 5,
    num_features: int = 32,
    avg_degree: float = 10.0,
    homophily: float = 0.8,
    signal: float = 1.0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> PreparedData:
    """A seeded CSBM graph, ``kind="graph"``.

    - labels: ``num_nodes`` nodes in ``num_classes`` equal communities (random order).
    - features: ``x_i = mu_{y_i} + eps_i``, ``mu_k ~ N(0, signal^2 / num_features * I)``,
      ``eps_i ~ N(0, I)``: class means are about ``signal * sqrt(2)`` apart against unit
      noise, a weak signal (a linear classifier on features alone reaches ~45-50% with the
      defaults, ~95% after two rounds of neighbour averaging at homophily 0.8).
    - edges: each unordered pair i < j is an edge independently with probability p_in (same
      community) or p_out, chosen so that the expected degree is ``avg_degree`` and the
      expected fraction of intra-community edges (edge homophily) is ``homophily``
      (1/num_classes gives a graph that carries no label information).
      ``edge_index`` (2, E) holds both directions of every edge, no self loops.
    - splits: seeded, stratified node splits 70/15/15. ``root`` is unused.
    """
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"csbm: homophily must lie in [0, 1], got {homophily}")
    g = generator(seed)
    n, k = num_nodes, num_classes
    y = (torch.arange(n) % k)[torch.randperm(n, generator=g)]
    means = torch.randn(k, num_features, generator=g) * (signal / math.sqrt(num_features))
    x = means[y] + torch.randn(n, num_features, generator=g)

    block = n / k  # nodes per community
    p_in = min(1.0, homophily * avg_degree / max(block - 1, 1))
    p_out = min(1.0, (1.0 - homophily) * avg_degree / max(n - block, 1))
    rows, cols = [], []
    chunk = max(1, 4_000_000 // n)  # bound memory: chunk rows of the dense pair matrix
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        same = y[start:stop, None] == y[None, :]
        prob = torch.where(same, p_in, p_out)
        hit = torch.rand(stop - start, n, generator=g) < prob
        upper = torch.arange(start, stop)[:, None] < torch.arange(n)[None, :]
        r, c = torch.nonzero(hit & upper, as_tuple=True)
        rows.append(r + start)
        cols.append(c)
    row, col = torch.cat(rows), torch.cat(cols)
    edge_index = torch.stack([torch.cat([row, col]), torch.cat([col, row])])
    order = torch.argsort(edge_index[0] * n + edge_index[1])
    edge_index = edge_index[:, order]
    return PreparedData(
        name="csbm",
        kind="graph",
        x=x,
        y=y,
        edge_index=edge_index,
        splits=random_splits(y, seed, val_fraction, test_fraction),
        meta={
            "num_classes": k,
            "homophily": homophily,
            "p_in": p_in,
            "p_out": p_out,
            "num_edges": int(row.numel()),
        },
    )
