"""The model families. `ModelConfig` is the registry: one discriminated union on `family`.

Adding a family is "write the file, add one name here"; pydantic then rejects an unknown
family and lists the valid ones.
"""

from __future__ import annotations

import sys
from typing import Annotated

from pydantic import Field

from neuralab.models.autoencoder import AutoEncoder, AutoEncoderConfig
from neuralab.models.charlm import CharLM, CharLMConfig
from neuralab.models.cnn import CNN, CNNConfig
from neuralab.models.gan import GAN, GANConfig
from neuralab.models.mlp import MLP, MLPConfig
from neuralab.models.module import ModuleConfig
from neuralab.models.recurrent import RecurrentNetwork, RNNConfig
from neuralab.models.resnet import ResNet, ResNetConfig
from neuralab.models.seq2seq import Seq2Seq, Seq2SeqConfig
from neuralab.models.transformer import Transformer, TransformerConfig

ModelConfig = Annotated[
    MLPConfig
    | CNNConfig
    | ResNetConfig
    | RNNConfig
    | TransformerConfig
    | AutoEncoderConfig
    | Seq2SeqConfig
    | CharLMConfig
    | GANConfig
    | ModuleConfig,
    Field(discriminator="family"),
]
FAMILIES = (
    MLPConfig,
    CNNConfig,
    ResNetConfig,
    RNNConfig,
    TransformerConfig,
    AutoEncoderConfig,
    Seq2SeqConfig,
    CharLMConfig,
    GANConfig,
    ModuleConfig,
)
# Families that read token ids, each for the one task it serves.
TOKEN_FAMILIES: dict[str, type[CharLMConfig] | type[Seq2SeqConfig]] = {
    "language_model": CharLMConfig,
    "seq2seq": Seq2SeqConfig,
}

__all__ = [
    "CNN",
    "AutoEncoder",
    "AutoEncoderConfig",
    "CharLM",
    "CharLMConfig",
    "FAMILIES",
    "GAN",
    "GANConfig",
    "MLP",
    "CNNConfig",
    "MLPConfig",
    "ModelConfig",
    "ModuleConfig",
    "RNNConfig",
    "RecurrentNetwork",
    "ResNet",
    "ResNetConfig",
    "Seq2Seq",
    "Seq2SeqConfig",
    "TOKEN_FAMILIES",
    "Transformer",
    "TransformerConfig",
    "describe_models",
]


def describe_models() -> list[tuple[str, str]]:
    """(family, one-line description) for every registered model family."""
    return [
        (
            cls.model_fields["family"].default,
            (sys.modules[cls.__module__].__doc__ or "").splitlines()[0],
        )
        for cls in FAMILIES
    ]
