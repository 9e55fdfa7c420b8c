"""neuralab: train, evaluate and compare the classic deep-learning model families on PyTorch
from one declarative experiment file.

Example:
    >>> import neuralab
    >>> run = neuralab.train("examples/digits-cnn.yaml")  # doctest: +SKIP
    >>> neuralab.load(run.path).predict(images).labels  # doctest: +SKIP
"""

from neuralab.api import Run, evaluate_run, load  # noqa: E402
from neuralab.card import Card  # noqa: E402
from neuralab.compare import Comparison, compare, quickstart  # noqa: E402
from neuralab.config import Experiment, load_config  # noqa: E402
from neuralab.cross_validation import CrossValidation, cross_validate  # noqa: E402
from neuralab.cross_validation import train_experiment as train  # noqa: E402
from neuralab.errors import NeuralabError  # noqa: E402
from neuralab.tune import StudyResult, tune  # noqa: E402
from neuralab.version import __version__

__all__ = [
    "Card",
    "Comparison",
    "CrossValidation",
    "Experiment",
    "NeuralabError",
    "Run",
    "StudyResult",
    "__version__",
    "compare",
    "cross_validate",
    "evaluate_run",
    "load",
    "load_config",
    "quickstart",
    "train",
    "tune",
]
