"""Report tables for transfer and multi-task runs: where the weights came from, which
parameters trained at what rate, and the test metrics of every head.

Each function returns `(heading, header, rows)` tables; `html.py` renders them.
"""

from __future__ import annotations

from typing import Any

from neuralab.card import Card, Transfer

Table = tuple[str, list[str], list[list[Any]]]


def transfer_tables(transfer: Transfer) -> list[Table]:
    """Trained and frozen parameters, learning-rate multipliers, and `init_from` by layer."""
    frozen, until = transfer.frozen, transfer.unfreeze_at_epoch
    rows: list[list[Any]] = [
        ["trained", f"{transfer.trainable_parameters:,}"],
        [
            "frozen" + (f" (until epoch {until})" if until else ""),
            f"{transfer.frozen_parameters:,}" + (f": {', '.join(frozen)}" if frozen else ""),
        ],
    ]
    rows += [[f"lr x {factor:g}", prefix] for prefix, factor in transfer.lr_factors.items()]
    tables: list[Table] = [("Trainable parameters", ["parameters", "count / names"], rows)]
    init = transfer.init_from
    if init:
        layers = [[name, "loaded"] for name in init.loaded]
        layers += [[name, "rebuilt: the classes differ"] for name in init.rebuilt]
        layers += [line.split(": ", 1) for line in init.skipped]
        layers += [[name, "in the source run only"] for name in init.unused]
        tables.append((f"Initialised from {init.run}", ["layer", "what happened"], layers))
    return tables


def heads_table(card: Card) -> Table:
    """One row per head: its task, loss weight and test metrics."""
    test, rows = card.metrics["test"], []
    for head in card.task_settings["heads"]:
        prefix = f"{head['name']}_"
        scores = ", ".join(
            f"{key.removeprefix(prefix)} {value:.4f}"
            for key, value in test.items()
            if key.startswith(prefix)
        )
        rows.append([head["name"], head["task"], head["weight"], scores])
    return ("Heads", ["head", "task", "loss weight", "test metrics"], rows)
