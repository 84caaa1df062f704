"""torchvision ResNet-18 with the small-image stem of CIFAR work (3x3 conv, no max-pool)."""

from __future__ import annotations

from torch import Tensor, nn

from benchmark.encoders.registry import ENCODERS


@ENCODERS.register("resnet18")
class ResNet18(nn.Module):
    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        import torchvision  # imported here: slow, and only resnet18 needs it

        net = torchvision.models.resnet18(weights=None)  # never downloads weights
        net.conv1 = nn.Conv2d(input_shape[0], 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.net = net
        self.out_dim = 512

    def local(self, x: Tensor) -> Tensor:
        n = self.net
        x = n.relu(n.bn1(n.conv1(x)))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
