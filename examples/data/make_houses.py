"""Write houses.csv: a small synthetic house-price table for the CSV regression example.

Numeric columns (area, rooms, age, distance) and a categorical one (district) drive the
price through a known, mildly nonlinear formula plus noise, so a good model can reach
R^2 ~0.95 and a user can check what it learned. Run: python examples/data/make_houses.py
"""

import csv
from pathlib import Path

import numpy as np

DISTRICTS = {"harbour": 60.0, "old-town": 35.0, "suburb": 0.0, "industrial": -25.0}


def make_houses(num_rows: int = 800, seed: int = 0) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(num_rows):
        area = rng.uniform(35, 220)
        rooms = int(np.clip(round(area / 30 + rng.normal(0, 0.8)), 1, 8))
        age = rng.uniform(0, 90)
        distance = rng.uniform(0.5, 25)
        district = rng.choice(list(DISTRICTS))
        price = (
            1.6 * area
            + 8.0 * rooms
            - 0.9 * age
            + 40.0 * np.exp(-distance / 6)
            + DISTRICTS[district]
            + rng.normal(0, 12)
        )
        rows.append(
            {
                "area_m2": round(area, 1),
                "rooms": rooms,
                "age_years": round(age, 1),
                "distance_km": round(distance, 2),
                "district": district,
                "price_k": round(price, 1),
            }
        )
    return rows


def main() -> None:
    rows = make_houses()
    path = Path(__file__).with_name("houses.csv")
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
