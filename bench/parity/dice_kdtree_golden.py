#!/usr/bin/python3
"""The expected values of tests/unit/test_dice.cpp's DiceKdTree.RoundsLikeDiceMl, from dice-ml 0.12.

A three-feature problem small enough to write out in the test: `a` (4 decimals,
like the diabetes data's ltg), `t` (1 decimal, some values with 2, like tch;
precision 1 from its mode 2.0) and `c` (an immutable integer). The black box is
a step on t: p1 = 0.9 where t >= 3.5, else 0.1. dice-ml's kdtree, default
arguments, total_CFs=1, desired_class="opposite", features_to_vary=[a, t],
explains the query and this prints the CF it reports (final_cfs_df_sparse) with
17 significant digits, and the precisions dice-ml derived.

    SENSECF_PARITY_REFS=/path/to/refs /usr/bin/python3 bench/parity/dice_kdtree_golden.py

Needs the dice-ml checkout of bench/parity/README.md; never downloads anything.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# (a, t, c) per training row; the same rows as the unit test.
TRAIN = [
    (4.4773, 3.85, 50), (4.2, 3.6, 60), (4.9, 4.0, 40), (4.3, 2.0, 50), (4.6, 2.5, 45),
    (4.25, 3.0, 55), (4.65, 2.0, 52), (4.7, 2.2, 48), (4.35, 2.0, 51), (4.75, 2.8, 53),
    (4.4, 1.5, 47), (4.8, 3.2, 49),
]
QUERY = (4.5109, 2.0, 50)


class StepOnT:
    """sklearn-style black box: p1 = 0.9 where t >= 3.5, else 0.1."""

    def predict_proba(self, data):
        import numpy as np
        t = data["t"].astype(np.float64).to_numpy()
        p = np.where(t >= 3.5, 0.9, 0.1)
        return np.column_stack([1.0 - p, p])

    def predict(self, data):
        return self.predict_proba(data).argmax(axis=1)


def main():
    refs = os.environ.get("SENSECF_PARITY_REFS", "")
    if not refs or not os.path.isdir(os.path.join(refs, "dice")):
        print("skipped: SENSECF_PARITY_REFS must name a folder with the dice/ checkout (bench/parity/README.md)")
        return 0
    sys.path[:0] = [os.path.join(HERE, "shims"), os.path.join(refs, "dice")]
    import pandas as pd
    import dice_ml
    train = pd.DataFrame(TRAIN, columns=["a", "t", "c"])
    train["y"] = [int(t >= 3.5) for t in train["t"]]
    data = dice_ml.Data(dataframe=train, continuous_features=["a", "t", "c"], outcome_name="y")
    model = dice_ml.Model(model=StepOnT(), backend="sklearn", model_type="classifier")
    exp = dice_ml.Dice(data, model, method="kdtree")
    query = pd.DataFrame([QUERY], columns=["a", "t", "c"])
    res = exp.generate_counterfactuals(query, total_CFs=1, desired_class="opposite", features_to_vary=["a", "t"],
                                       verbose=False)
    ex = res.cf_examples_list[0]
    print("precisions (a, t, c):", data.get_decimal_precisions()[:3])
    print("CF before post-hoc sparsity (final_cfs_df):",
          [f"{float(v):.17g}" for v in ex.final_cfs_df[["a", "t", "c"]].iloc[0]])
    print("CF (final_cfs_df_sparse):", [f"{float(v):.17g}" for v in ex.final_cfs_df_sparse[["a", "t", "c"]].iloc[0]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
