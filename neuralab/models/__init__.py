"""The model families. `ModelConfig` is the registry: one discriminated union on `family`.

Adding a family is "write the file, add one name here"; pydantic then rejects an unknown
family and lists the valid ones.
"""

from __future__ import annotations

import sys
from typing import Annotated, get_args

from pydantic import Field

from neuralab.baselines import BASELINES, BaselineConfig
from neuralab.data import DataMeta
from neuralab.errors import Problem
from neuralab.family import Family
from neuralab.models.autoencoder import AutoEncoder, AutoEncoderConfig
from neuralab.models.charlm import CharLM, CharLMConfig
from neuralab.models.cnn import CNN, CNNConfig
from neuralab.models.gan import GAN, GANConfig
from neuralab.models.mlp import MLP, MLPConfig
from neuralab.models.module import ModuleConfig
from neuralab.models.network import NetworkConfig
from neuralab.models.recurrent import RecurrentNetwork, RNNConfig
from neuralab.models.resnet import ResNet, ResNetConfig
from neuralab.models.seq2seq import Seq2Seq, Seq2SeqConfig
from neuralab.models.transformer import Transformer, TransformerConfig

# The deep families; `FAMILIES` and the baselines' `BASELINES` are read off the unions.
NetworkSpec = (
    MLPConfig
    | CNNConfig
    | ResNetConfig
    | RNNConfig
    | TransformerConfig
    | AutoEncoderConfig
    | Seq2SeqConfig
    | CharLMConfig
    | GANConfig
    | ModuleConfig
)
# The registry: every model an experiment can name, deep or classical.
ModelConfig = Annotated[NetworkSpec | BaselineConfig, Field(discriminator="family")]
FAMILIES: tuple[type[NetworkConfig], ...] = get_args(NetworkSpec)
EVERY_FAMILY: tuple[type[Family], ...] = (*FAMILIES, *BASELINES)


def family_names(data_task: str) -> list[str]:
    """The families that learn from data of this kind (`DataMeta.task`)."""
    return [
        cls.model_fields["family"].default for cls in EVERY_FAMILY if data_task in cls.data_tasks
    ]


def data_problem(spec: Family, meta: DataMeta, dataset: str) -> Problem | None:
    """Why `spec` cannot learn from this dataset, with what to use instead (None: it can)."""
    if meta.task in spec.data_tasks:
        return None
    wanted = ", ".join(spec.data_tasks)
    hint = spec.data_hint or f"use family: {' or '.join(family_names(meta.task))}"
    return Problem(
        "model.family",
        f"'{spec.family}' learns from {wanted} data, but dataset '{dataset}' is {meta.task}",
        hint,
    )


__all__ = [
    "CNN",
    "AutoEncoder",
    "AutoEncoderConfig",
    "CharLM",
    "CharLMConfig",
    "EVERY_FAMILY",
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
    "Transformer",
    "TransformerConfig",
    "data_problem",
    "describe_models",
    "family_names",
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
