"""The Aggregate step's maths (steps.aggregate): shards' backtest sums give exactly the dataset's metrics."""

import numpy as np
import pandas as pd
import pytest
from item_prediction.ml import model
from item_prediction.steps import aggregate


def sums_of(frame: pd.DataFrame) -> dict:
    """A shard's additive totals, as model.backtest reports them."""
    return {
        "abs_error": float((frame["actual"] - frame["prediction"]).abs().sum()),
        "naive_abs_error": float((frame["actual"] - frame["baseline"]).abs().sum()),
        "actual": float(frame["actual"].abs().sum()),
        "count": len(frame),
    }


@pytest.mark.parametrize("shards", [1, 3, 8])
def test_combined_shard_sums_equal_one_scoring_over_all_held_out_rows(shards):
    rng = np.random.default_rng(shards)
    frame = pd.DataFrame({"actual": rng.poisson(3.0, 500).astype(float), "prediction": rng.gamma(2.0, 1.5, 500)})
    frame["baseline"] = rng.poisson(3.0, 500).astype(float)
    shuffled = frame.sample(frac=1.0, random_state=1)
    bounds = sorted(rng.choice(np.arange(1, 500), size=shards - 1, replace=False))  # unequal shards
    parts = [shuffled.iloc[start:end] for start, end in zip([0, *bounds], [*bounds, 500], strict=True)]
    combined = aggregate.combine([sums_of(part) for part in parts], horizon=7)
    whole_model = model.scores(frame["actual"], frame["prediction"])
    whole_naive = model.scores(frame["actual"], frame["baseline"])
    assert combined["model"] == {**whole_model, "coverage_p10_p90": None} and combined["seasonal_naive"] == whole_naive
    assert combined["holdout_rows"] == 500 and combined["horizon"] == 7 and combined["shards"] == shards
    ratio = whole_model["mae"] / whole_naive["mae"]
    assert combined["mae_ratio"] == round(ratio, 4) and combined["beats_baseline"] == (ratio < 1)


def test_a_backtests_sums_reproduce_its_own_scores():
    from ..ml.test_model import feature_set

    frame, manifest = feature_set(items=2, stores=2, periods=120, seed=3)
    result = model.backtest(frame, manifest, 7)
    sums = result["sums"]
    assert sums["count"] == result["holdout_rows"]
    assert round(sums["abs_error"] / sums["count"], 6) == result["model"]["mae"]
    assert round(sums["naive_abs_error"] / sums["count"], 6) == result["seasonal_naive"]["mae"]
    assert round(sums["abs_error"] / sums["actual"], 6) == result["model"]["wape"]


def test_coverage_is_the_share_of_all_shards_held_out_rows_inside_their_intervals():
    parts = [
        {"abs_error": 4.0, "naive_abs_error": 5.0, "actual": 10.0, "count": 10, "inside_p10_p90": 9},
        {"abs_error": 6.0, "naive_abs_error": 5.0, "actual": 30.0, "count": 30, "inside_p10_p90": 21},
    ]
    combined = aggregate.combine(parts)
    assert combined["sums"]["inside_p10_p90"] == 30
    assert combined["coverage_p10_p90"] == combined["model"]["coverage_p10_p90"] == 0.75  # 30 / 40, not the mean 0.8
    # A shard without a calibrated interval (too short a history): no dataset coverage rather than a biased one.
    uncalibrated = aggregate.combine([parts[0], {k: v for k, v in parts[1].items() if k != "inside_p10_p90"}])
    assert "inside_p10_p90" not in uncalibrated["sums"] and uncalibrated["model"]["coverage_p10_p90"] is None


def test_a_backtests_sums_reproduce_its_coverage():
    from ..ml.test_model import feature_set

    frame, manifest = feature_set(items=2, stores=2, periods=200, seed=3)
    result = model.backtest(frame, manifest, 7)
    combined = aggregate.combine([result["sums"]], horizon=7)
    assert result["coverage_p10_p90"] is not None
    assert combined["coverage_p10_p90"] == combined["model"]["coverage_p10_p90"] == result["coverage_p10_p90"]


def test_the_plan_a_run_used_is_named():
    assumed = [{"shard": 0, "plan": "assumed_last_price_no_promotion", "plan_key": None}, {"shard": 1, "skipped": True}]
    assert aggregate.plan_used(assumed) == {"plan": "assumed_last_price_no_promotion", "plan_key": None}
    planned = [*assumed, {"shard": 2, "plan": "file", "plan_key": "raw/shop/plan/june.csv"}]
    assert aggregate.plan_used(planned) == {"plan": "file", "plan_key": "raw/shop/plan/june.csv"}


def test_nothing_sold_gives_no_wape_and_no_verdict_without_a_baseline_error():
    combined = aggregate.combine([{"abs_error": 0.0, "naive_abs_error": 0.0, "actual": 0.0, "count": 4}])
    assert combined["model"] == {"mae": 0.0, "wape": None, "coverage_p10_p90": None} and combined["mae_ratio"] is None
    assert combined["beats_baseline"] is False


def test_re_run_shards_take_their_new_entry_and_the_others_keep_theirs():
    previous = {
        "shard_count": 4,
        "shards": {
            "00000": {"forecast_id": "r1", "sums": {"count": 1}},
            "00001": {"forecast_id": "r1", "sums": {"count": 2}},
            "00002": {"forecast_id": "r1", "sums": {"count": 3}},
        },
    }
    plan = {"shard_count": 4, "shards": {"1": {}, "2": {}, "3": {}}}
    results = [
        {"shard": 1, "mode": "predict", "forecast_id": "r2", "sums": None},  # predicted: keeps its model's sums
        {"shard": 2, "skipped": True, "reason": "no validated rows"},  # retracted: no forecast any more
        {"shard": 3, "mode": "train_and_predict", "forecast_id": "r2", "sums": {"count": 9}},
    ]
    table = aggregate.shard_table(previous, plan, results)
    assert {name: entry["forecast_id"] for name, entry in table.items()} == {"00000": "r1", "00001": "r2", "00003": "r2"}
    assert [table[name]["sums"] for name in table] == [{"count": 1}, {"count": 2}, {"count": 9}]
    resharded = aggregate.shard_table(previous, {**plan, "shard_count": 8}, results)
    assert set(resharded) == {"00001", "00003"}  # nothing is kept across a re-shard
