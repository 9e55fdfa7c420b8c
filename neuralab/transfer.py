"""Reusing what an earlier run learned: start from its weights, keep some fixed, train parts
at their own rates.

`load_pretrained` copies every layer of the source run whose name and shape match and
reports the rest layer by layer; the output head is left freshly initialised when the
classes differ (its layers are found by building the model with one more output and
seeing which shapes change, so this works for every family). `freeze` stops gradients to
named parameters, `Unfreeze` lets them train again at a given epoch, and
`parameter_groups` gives each name prefix its own learning-rate multiplier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from neuralab.card import CARD, read_card
from neuralab.data import DataMeta
from neuralab.errors import NeuralabError, Problem, did_you_mean
from neuralab.models.network import NetworkConfig
from neuralab.runs import WEIGHTS
from neuralab.train.callbacks import Callback, TrainState


def find_run(pattern: str) -> Path:
    """The run directory `pattern` names; a glob (`runs/pretrain-*`) picks the newest match."""
    path = Path(pattern)
    if not path.exists() and any(c in pattern for c in "*?["):
        matches = [p for p in Path().glob(pattern) if (p / CARD).is_file()]
        if not matches:
            raise NeuralabError(
                "model.init_from", f"no run directory matches '{pattern}'", "train that run first"
            )
        path = max(matches, key=lambda p: (p / CARD).stat().st_mtime)
    if not (path / WEIGHTS).is_file():
        raise NeuralabError(
            "model.init_from",
            f"'{pattern}' is not a run directory with network weights ({WEIGHTS})",
            "pass a folder printed by `neuralab train` for a network family",
        )
    return path


def load_pretrained(
    model: torch.nn.Module, spec: NetworkConfig, meta: DataMeta, pattern: str
) -> dict[str, Any]:
    """Copy the layers of the run `pattern` (`spec.init_from`) that match `model` by name
    and shape.

    Returns what happened to each layer (`loaded`, `rebuilt` head layers, `skipped` with the
    reason, `unused` source layers), for the card and the report.

    Raises:
        NeuralabError: Listing every mismatched layer, unless `spec.init_strict` is false.
    """
    source = find_run(pattern)
    card = read_card(source)
    weights = load_file(str(source / WEIGHTS))
    own = model.state_dict()
    same_classes = (
        card.data.label_names == meta.label_names and card.data.num_outputs == meta.num_outputs
    )
    head = set() if same_classes else _head_layers(model, spec, meta)
    loaded, rebuilt, skipped = [], sorted(head), []
    for name, tensor in own.items():
        if name in head:
            continue
        if name not in weights:
            skipped.append(f"{name}: not in the source run")
        elif weights[name].shape != tensor.shape:
            skipped.append(
                f"{name}: shape {list(weights[name].shape)} in the source, "
                f"{list(tensor.shape)} here"
            )
        else:
            loaded.append(name)
    if skipped and spec.init_strict:
        raise NeuralabError.many(
            Problem(
                "model.init_from",
                f"layer {line}",
                "set model.init_strict: false to load only the layers that match",
            )
            for line in skipped
        )
    model.load_state_dict({name: weights[name] for name in loaded}, strict=False)
    unused = sorted(set(weights) - set(own))
    return {
        "run": str(source),
        "loaded": loaded,
        "rebuilt": rebuilt,
        "skipped": skipped,
        "unused": unused,
    }


def _head_layers(model: torch.nn.Module, spec: NetworkConfig, meta: DataMeta) -> set[str]:
    """Names of the layers whose shape follows the number of outputs: the output head."""
    with torch.random.fork_rng():  # the probe's initialisation must not move the seed
        probe = spec.build(input_shape=meta.input_shape, num_outputs=meta.num_outputs + 1)  # type: ignore[attr-defined]
    probe_shapes = {name: tensor.shape for name, tensor in probe.state_dict().items()}
    return {
        name
        for name, tensor in model.state_dict().items()
        if probe_shapes.get(name) != tensor.shape
    }


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _check_prefixes(model: torch.nn.Module, prefixes: list[str], where: str) -> None:
    names = [name for name, _ in model.named_parameters()]
    modules = sorted({name.split(".")[0] for name in names})
    for prefix in prefixes:
        if not any(_matches(name, prefix) for name in names):
            raise NeuralabError(
                f"{where}",
                f"'{prefix}' names no parameter of this model",
                did_you_mean(prefix, modules),
            )


def freeze(model: torch.nn.Module, prefixes: tuple[str, ...]) -> list[torch.nn.Parameter]:
    """Stop gradients to every parameter named by one of `prefixes`; returns those."""
    _check_prefixes(model, list(prefixes), "model.freeze")
    frozen = [
        parameter
        for name, parameter in model.named_parameters()
        if any(_matches(name, prefix) for prefix in prefixes)
    ]
    for parameter in frozen:
        parameter.requires_grad_(False)
    return frozen


class Unfreeze(Callback):
    """Lets frozen parameters train from epoch `epoch` (1-based) on, also after a resume."""

    def __init__(self, parameters: list[torch.nn.Parameter], epoch: int) -> None:
        self.parameters, self.epoch = parameters, epoch

    def on_fit_start(self, state: TrainState) -> None:
        self._maybe_unfreeze(state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._maybe_unfreeze(state)

    def _maybe_unfreeze(self, state: TrainState) -> None:
        if state.epoch + 1 >= self.epoch:  # the next epoch to run is `state.epoch + 1`
            for parameter in self.parameters:
                parameter.requires_grad_(True)


def parameter_groups(
    model: torch.nn.Module, lr: float, factors: dict[str, float]
) -> list[torch.nn.Parameter] | list[dict[str, Any]]:
    """Optimizer parameter groups: each parameter at `lr` x the factor of its longest
    matching prefix in `factors` (1 if none matches). Without factors, the plain list.

    Frozen parameters are included, so unfreezing them later needs no new optimizer.
    """
    if not factors:
        return list(model.parameters())
    _check_prefixes(model, list(factors), "optim.param_groups")
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        prefixes = [p for p in factors if _matches(name, p)]
        factor = factors[max(prefixes, key=len)] if prefixes else 1.0
        groups.setdefault(factor, []).append(parameter)
    return [{"params": params, "lr": lr * factor} for factor, params in groups.items()]


def trainable_summary(
    model: torch.nn.Module, frozen: list[torch.nn.Parameter], factors: dict[str, float]
) -> dict[str, Any]:
    """Which parameters were trained, and at what rate multiplier, for the card."""
    frozen_ids = {id(p) for p in frozen}
    names = [name for name, p in model.named_parameters() if id(p) in frozen_ids]
    return {
        "trainable_parameters": sum(
            p.numel() for p in model.parameters() if id(p) not in frozen_ids
        ),
        "frozen_parameters": sum(p.numel() for p in frozen),
        "frozen": names,
        "lr_factors": dict(factors),
    }
