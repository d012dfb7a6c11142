"""``deepgrad.models``: assembled networks. ``MLP``, ``LeNet5``, ``AlexNet``, ``VGG`` (11/13/16/19, with and
without batch norm), ``ResNet`` (18/34/50 and a CIFAR-style variant), ``GoogLeNet`` and ``Inception3``
(Inception-v3), sequence models (recurrent and transformer, with positional encodings), DCGAN and a 2-D MLP
GAN, plus a registry of small weights that deepgrad trained itself (:mod:`deepgrad.models.pretrained`).

AlexNet, VGG, ResNet, GoogLeNet and Inception-v3 use torchvision's module names and tensor layouts, so
torchvision's weights load as they are. Export them once where torchvision is installed (three lines)::

    import torchvision, safetensors.torch
    model = torchvision.models.vgg16(weights="IMAGENET1K_V1")
    safetensors.torch.save_file(model.state_dict(), "vgg16.safetensors")

then, in deepgrad (no torch needed)::

    model = deepgrad.models.vgg16()
    deepgrad.transfer.load_pretrained(model, "vgg16.safetensors", strict=True)

Nothing here downloads anything. Shipped weights load by name:

>>> model = deepgrad.models.load_model("lenet5_digits")
"""

from .alexnet import AlexNet, alexnet
from .dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init_
from .gan2d import MLPDiscriminator, MLPGenerator
from .googlenet import GoogLeNet, GoogLeNetOutputs, googlenet
from .inception import Inception3, InceptionOutputs, inception_v3
from .lenet import LeNet5
from .loading import LoadReport, PretrainedLoadError, load_pretrained
from .mlp import MLP
from .pretrained import (
    ARCHITECTURES,
    PRETRAINED,
    build_model,
    list_pretrained,
    load_model,
    pretrained_info,
    save_model,
    weights_path,
)
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50, resnet_cifar
from .sequence import CharLanguageModel, CharVocab, Forecaster, SequenceClassifier
from .transformer import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    TransformerClassifier,
    TransformerLanguageModel,
)
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn

__all__ = [
    "MLP", "LeNet5", "VGG", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50", "resnet_cifar",
    "AlexNet", "alexnet", "GoogLeNet", "GoogLeNetOutputs", "googlenet", "Inception3", "InceptionOutputs",
    "inception_v3",
    "SequenceClassifier", "Forecaster", "CharLanguageModel", "CharVocab",
    "TransformerClassifier", "TransformerLanguageModel", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding",
    "DCGANGenerator", "DCGANDiscriminator", "dcgan_init_", "MLPGenerator", "MLPDiscriminator",
    "ARCHITECTURES", "PRETRAINED", "build_model", "list_pretrained", "load_model", "pretrained_info", "save_model",
    "weights_path", "load_pretrained", "LoadReport", "PretrainedLoadError",
]
