"""Write iris.csv from scikit-learn's embedded copy of Fisher's iris data (150 rows), for
the multi-task example: species (3 classes) and petal width (numeric) as two targets.
Run: python examples/data/make_iris.py
"""

import csv
from pathlib import Path

from sklearn.datasets import load_iris


def main() -> None:
    iris = load_iris()
    names = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
    path = Path(__file__).with_name("iris.csv")
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([*names, "species"])
        for row, target in zip(iris.data, iris.target, strict=True):
            writer.writerow([*(f"{v:.1f}" for v in row), iris.target_names[target]])
    print(f"wrote {len(iris.data)} rows to {path}")


if __name__ == "__main__":
    main()
