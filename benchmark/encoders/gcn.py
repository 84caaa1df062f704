"""Graph convolutional encoder (Kipf & Welling 2017) as used by DGI, from torch_geometric."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from benchmark.encoders.registry import ENCODERS


@ENCODERS.register("gcn")
class GCN(nn.Module):
    """Node features (N, F) and edge_index (2, E) -> node embeddings (N, hidden).

    Each layer is a GCNConv followed by a PReLU, with one slope per channel, or one slope
    shared by all channels with ``shared_prelu=True`` (``nn.PReLU()``, as DGI's reference
    code).
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        *,
        hidden: int = 128,
        layers: int = 1,
        shared_prelu: bool = False,
    ) -> None:
        super().__init__()
        from torch_geometric.nn import GCNConv  # imported here: slow, and only graphs need it

        dims = [input_shape[-1]] + [hidden] * layers
        # normalize=False: forward passes the normalised adjacency, computed once per graph
        self.convs = nn.ModuleList(
            GCNConv(a, b, normalize=False) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self._adj: tuple[tuple, Tensor] | None = None
        self.acts = nn.ModuleList(nn.PReLU(1 if shared_prelu else b) for b in dims[1:])
        self.out_dim = hidden
        self.is_graph = True

    def adjacency(self, edge_index: Tensor, num_nodes: int) -> Tensor:
        """D^-1/2 (A + I) D^-1/2 as a sparse CSR matrix, cached for the last graph seen.

        GCNConv would renormalise ``edge_index`` on every call (scatter-based, ~5x slower
        than one sparse matmul on CPU); DGI's corrupted graph and the evaluation reuse the
        same edges, so the normalisation is done once per distinct ``edge_index``.
        """
        from torch_geometric.nn.conv.gcn_conv import gcn_norm

        key = (edge_index.data_ptr(), tuple(edge_index.shape), edge_index.device, num_nodes)
        if self._adj is None or self._adj[0] != key:
            ei, w = gcn_norm(edge_index, None, num_nodes, add_self_loops=True)
            adj = torch.sparse_coo_tensor(
                ei.flip(0), w, (num_nodes, num_nodes), check_invariants=True
            )
            with warnings.catch_warnings():  # "CSR support is in beta": informational
                warnings.simplefilter("ignore", UserWarning)
                self._adj = (key, adj.coalesce().to_sparse_csr())
        return self._adj[1]

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        adj = self.adjacency(edge_index, len(x))
        for conv, act in zip(self.convs, self.acts, strict=True):
            x = act(conv(x, adj))
        return x
