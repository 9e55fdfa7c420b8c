"""Pre-flight inspection: everything that can go wrong before training, found in seconds.

`inspect_experiment` validates the config, loads the data, builds the model, optimizer and
schedule, and runs one training batch forward and backward. It measures what a person
sizing a model wants to know: each layer's output shape and parameters (torchinfo), the
multiply-adds per sample (PyTorch's own FlopCounterMode), and the activation memory one
batch holds for the backward pass (the tensors autograd saves). A classical baseline has
no layers or batches: it is fitted on the training split, and its stored numbers counted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, cast

import torch
import torchinfo
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from neuralab.baselines import Baseline, BaselineSpec, TaskName
from neuralab.config import Experiment
from neuralab.data import DataBundle
from neuralab.errors import NeuralabError
from neuralab.plan import plan
from neuralab.tasks import Task
from neuralab.train.loop import num_batches
from neuralab.train.steps import training_loss


@dataclass(frozen=True)
class Layer:
    """One row of the layer table. `parameters` are the layer's own (not its children's),
    so the column sums to the model's total."""

    name: str
    kind: str
    depth: int
    output_shape: tuple[int, ...] | None
    parameters: int
    trainable: bool | None  # None: the layer has no parameters of its own


@dataclass(frozen=True)
class Inspection:
    """What `neuralab inspect` reports. Network-only fields are None for a baseline."""

    experiment: Experiment
    bundle: DataBundle
    num_parameters: int
    num_trainable: int
    layers: list[Layer] = field(default_factory=list)
    multiply_adds_per_sample: int | None = None
    activation_bytes_per_batch: int | None = None
    initial_loss: float | None = None
    reference_loss: tuple[str, float] | None = None  # (a trivial model, its first-batch loss)
    task: Task | None = None
    without_gradient: list[str] = field(default_factory=list)
    estimator: str | None = None
    seconds: float = 0.0

    def class_counts(self) -> dict[str, list[int]] | None:
        """Samples per class in each split (classification with class-index targets)."""
        meta, bundle = self.bundle.meta, self.bundle
        if meta.task != "classification" or bundle.y_train.ndim != 1:
            return None
        splits = {"train": bundle.y_train, "val": bundle.y_val, "test": bundle.y_test}
        return {
            name: torch.bincount(y, minlength=meta.num_outputs).tolist()
            for name, y in splits.items()
        }


def inspect_experiment(experiment: Experiment) -> Inspection:
    """Check an experiment end to end without training it; see the module docstring."""
    started = time.perf_counter()
    planned = plan(experiment)
    bundle, task = planned.bundle, planned.task
    if isinstance(experiment.model, BaselineSpec):
        inspection = _inspect_baseline(experiment, experiment.model, task, bundle)
    else:
        inspection = _inspect_network(experiment, task, bundle)
    return replace(inspection, task=task, seconds=time.perf_counter() - started)


def _inspect_network(experiment: Experiment, task: Task, bundle: DataBundle) -> Inspection:
    meta = bundle.meta
    model = experiment.network.initialised(meta, seed=experiment.seed)
    optim = experiment.optim  # `lr: auto` is found when training starts; 1.0 stands in
    if optim.lr == "auto":
        optim = optim.model_copy(update={"lr": 1.0})
    optimizer = optim.build(model.parameters())
    steps = num_batches(len(bundle.x_train), experiment.train.batch_size)
    experiment.schedule.build(optimizer, epochs=experiment.train.epochs, steps_per_epoch=steps)
    x = bundle.x_train[: experiment.train.batch_size]
    y = bundle.y_train[: experiment.train.batch_size]
    layers = _layer_table(model, x)
    multiply_adds = _multiply_adds(model, x) // len(x)
    loss, activation_bytes, output = _forward_backward(model, task, x, y)
    if not math.isfinite(loss):
        raise NeuralabError(
            "inspect",
            f"the loss of the first batch is {loss} before any training",
            "check the data for nan/inf values, or lower model.init's scale",
        )
    return Inspection(
        experiment,
        bundle,
        num_parameters=sum(p.numel() for p in model.parameters()),
        num_trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        layers=layers,
        multiply_adds_per_sample=multiply_adds,
        activation_bytes_per_batch=activation_bytes,
        initial_loss=loss,
        reference_loss=(
            task.trivial_output,
            task.loss(torch.zeros_like(output), y).item(),
        ),
        without_gradient=[n for n, p in model.named_parameters() if p.grad is None],
    )


def _layer_table(model: nn.Module, x: torch.Tensor) -> list[Layer]:
    statistics = torchinfo.summary(model, input_data=x, verbose=0, depth=32, mode="eval")
    return [
        Layer(
            name=_dotted_name(info),
            kind=info.class_name,
            depth=info.depth,
            output_shape=tuple(info.output_size) if info.output_size else None,
            parameters=info.num_params if info.is_leaf_layer else info.leftover_params(),
            trainable=info.trainable_params > 0 if info.num_params else None,
        )
        for info in statistics.summary_list
        # depth 0 is the model itself (its own parameters are a row of their own); a
        # module called again (a decoder cell, step by step) is listed at its first call
        if info.depth > 0 and not info.is_recursive
    ] + _own_parameters_row(model)


def _dotted_name(info: Any) -> str:
    names = []
    while info is not None and info.depth > 0:
        names.append(info.var_name)
        info = info.parent_info
    return ".".join(reversed(names))


def _own_parameters_row(model: nn.Module) -> list[Layer]:
    """Parameters held by the model itself (e.g. a class token), outside any layer."""
    own = list(model.parameters(recurse=False))
    if not own:
        return []
    count = sum(p.numel() for p in own)
    trainable = any(p.requires_grad for p in own)
    return [Layer("(model)", type(model).__name__, 1, None, count, trainable)]


def _lstm_flops(input_shape, weight_ih_shape, weight_hh_shape, *args, **kwargs) -> int:
    """FLOPs of one fused LSTM layer on CPU (mkldnn), which FlopCounterMode cannot see:
    a multiply-add per weight per time step per sample, counted twice like its mm formula."""
    steps_times_batch = input_shape[0] * input_shape[1]
    weights = math.prod(weight_ih_shape) + math.prod(weight_hh_shape)
    return 2 * steps_times_batch * weights


def _multiply_adds(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward pass of `x` (matmuls, convolutions, attention).

    Element-wise work (activations, norms, pooling) is not counted, as in every MAC count.
    """
    mapping = {torch.ops.aten.mkldnn_rnn_layer: _lstm_flops}
    # training mode with autograd on: inference fast paths (fused transformer layers)
    # would hide their matmuls from the counter
    model.train()
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        model(x)
    return counter.get_total_flops() // 2  # FLOPs count a multiply and an add separately


def _forward_backward(
    model: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, int, torch.Tensor]:
    """One training batch forward and backward: its loss, the bytes of the tensors autograd
    keeps for the backward pass (parameters excluded, shared storage once), and the output.

    The loss is the one training minimises, a VAE's KL term included."""
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        # by the tensor's own size: a batch sliced from the training set shares its storage
        pointer = tensor.untyped_storage().data_ptr()
        if pointer not in parameters:
            saved[pointer] = max(saved.get(pointer, 0), tensor.nbytes)
        return tensor

    model.train()
    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output, loss = training_loss(model, task, x, y)
    loss.backward()
    return loss.item(), sum(saved.values()), output.detach()


def _inspect_baseline(
    experiment: Experiment, spec: BaselineSpec, task: Task, bundle: DataBundle
) -> Inspection:
    baseline = Baseline.fit(
        spec,
        bundle.x_train,
        bundle.y_train,
        task=cast(TaskName, task.name),  # the task the family implied, which it learns
        num_outputs=bundle.meta.num_outputs,
        seed=experiment.seed,
    )
    stored = baseline.num_parameters()
    return Inspection(
        experiment,
        bundle,
        num_parameters=stored,
        num_trainable=stored,
        estimator=repr(baseline.estimator),
    )
