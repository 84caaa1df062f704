"""Graph convolutional encoder (Kipf & Welling 2017) as used by DGI, from torch_geometric."""

from __future__ import annotations

from torch import Tensor, nn

from benchmark.encoders.registry import ENCODERS


@ENCODERS.register("gcn")
class GCN(nn.Module):
    """Node features (N, F) and edge_index (2, E) -> node embeddings (N, hidden)."""

    def __init__(self, input_shape: tuple[int, ...], *, hidden: int = 128, layers: int = 1) -> None:
        super().__init__()
        from torch_geometric.nn import GCNConv  # imported here: slow, and only graphs need it

        dims = [input_shape[-1]] + [hidden] * layers
        self.convs = nn.ModuleList(
            GCNConv(a, b, cached=False) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.acts = nn.ModuleList(nn.PReLU(b) for b in dims[1:])
        self.out_dim = hidden
        self.is_graph = True

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        for conv, act in zip(self.convs, self.acts, strict=True):
            x = act(conv(x, edge_index))
        return x
