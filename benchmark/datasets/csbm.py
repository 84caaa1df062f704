"""Contextual stochastic block model (Deshpande et al. 2018): a graph whose communities are
the classes, node features = class mean + Gaussian noise."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from benchmark.datasets._common import DATASETS, generator, per_class_splits
from benchmark.datasets.base import PreparedData


@DATASETS.register("csbm")
def csbm(
    root: str | Path | None = None,
    seed: int = 0,
    *,
    num_nodes: int = 2500,
    num_classes: int = 5,
    num_features: int = 256,
    signal_dim: int = 16,
    avg_degree: float = 10.0,
    homophily: float = 0.8,
    signal: float = 1.5,
    train_per_class: int = 20,
    val_fraction: float = 0.2,
    test_fraction: float = 0.4,
) -> PreparedData:
    """A seeded CSBM graph, ``kind="graph"``.

    - labels: ``num_nodes`` nodes in ``num_classes`` equal communities (random order).
    - features: ``x_i = mu_{y_i} + eps_i`` in ``num_features`` dimensions, ``eps_i ~ N(0, I)``;
      the class means live in the first ``signal_dim`` coordinates,
      ``mu_k ~ N(0, signal^2 / signal_dim * I)`` there and 0 elsewhere: class means are
      about ``signal * sqrt(2)`` apart against unit noise in a few of many dimensions (as
      bag-of-words features in citation graphs), a weak signal that a classifier trained on
      20 labels per class mostly overfits; averaging over neighbours (homophily 0.8)
      recovers it.
    - edges: each unordered pair i < j is an edge independently with probability p_in (same
      community) or p_out, chosen so that the expected degree is ``avg_degree`` and the
      expected fraction of intra-community edges (edge homophily) is ``homophily``
      (1/num_classes gives a graph that carries no label information).
      ``edge_index`` (2, E) holds both directions of every edge, no self loops.
    - splits (Planetoid-style, as Cora in DGI's evaluation): ``train_per_class`` labelled
      nodes per class (100 with the defaults), ``val_fraction`` (500) and
      ``test_fraction`` (1000) of the nodes at random from the rest; the other nodes are
      unlabelled. ``root`` is unused.
    """
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"csbm: homophily must lie in [0, 1], got {homophily}")
    if not 1 <= signal_dim <= num_features:
        raise ValueError(f"csbm: signal_dim must lie in [1, num_features], got {signal_dim}")
    g = generator(seed)
    n, k = num_nodes, num_classes
    y = (torch.arange(n) % k)[torch.randperm(n, generator=g)]
    means = torch.zeros(k, num_features)
    means[:, :signal_dim] = torch.randn(k, signal_dim, generator=g) * (
        signal / math.sqrt(signal_dim)
    )
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
        splits=per_class_splits(y, seed, train_per_class, val_fraction, test_fraction),
        meta={
            "num_classes": k,
            "homophily": homophily,
            "p_in": p_in,
            "p_out": p_out,
            "num_edges": int(row.numel()),
        },
    )
