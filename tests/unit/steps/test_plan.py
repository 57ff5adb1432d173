"""The Plan step's decisions (steps.plan): shard count, which shards run, and how."""

from datetime import UTC, datetime, timedelta

import pytest
from item_prediction.domain import schema, shards
from item_prediction.steps import plan

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def part(count: int, shard: int, name: str = "a.csv", etag: str = '"e1"') -> dict:
    return {"key": f"validated/ds/n={count}/shard={shard:05d}/{name}.parquet", "count": count, "shard": shard, "etag": etag}


def test_the_count_is_the_manifests_raised_to_the_largest_part_count_then_doubled_while_a_shard_is_too_big(monkeypatch):
    monkeypatch.setattr(schema, "SHARD_MAX_ROWS", 100)
    rows = {1: {0: 150}, 2: {0: 90, 1: 60}, 4: {0: 50, 1: 30, 2: 40, 3: 30}}
    assert plan.shard_count({}, [part(1, 0)], lambda n: {0: 80}) == (1, {0: 80})
    assert plan.shard_count({}, [part(1, 0)], rows.__getitem__) == (2, rows[2])  # 150 > 100: doubled once
    assert plan.shard_count({"shard_count": 4}, [part(1, 0)], rows.__getitem__)[0] == 4  # never shrinks
    assert plan.shard_count({"shard_count": 1}, [part(1, 0), part(2, 1)], rows.__getitem__)[0] == 2


def test_a_parts_signature_covers_every_shard_it_serves_and_changes_with_its_bytes():
    coarse, fine = part(1, 0, "old"), part(2, 1, "new")
    signed = plan.signatures(plan.shard_members([coarse, fine], 2))
    assert set(signed) == {"0", "1"}  # the n=1 part serves both shards of 2
    again = plan.signatures(plan.shard_members([coarse, {**fine, "etag": '"e1"'}], 2))
    assert again == signed  # the same bytes written again: nothing changed
    changed = plan.signatures(plan.shard_members([coarse, {**fine, "etag": '"e2"'}], 2))
    assert changed["0"] == signed["0"] and changed["1"] != signed["1"]


@pytest.mark.parametrize("count", [1, 2, 8, 16])
def test_shard_members_are_the_parts_each_shard_reads_in_listing_order(count):
    """One pass over the listing gives each shard what asking every part (shards.reads_part) gives."""
    listing = [part(n, s, f"week-{week}") for week in range(3) for n in (1, 2, 4, 8) if n <= count for s in range(n)]
    members = plan.shard_members(listing, count)
    for shard in range(count):
        expected = [p for p in listing if shards.reads_part(shard, count, p["shard"], p["count"])]
        assert members.get(shard, []) == expected and expected


def test_only_changed_shards_run_unless_everything_must():
    before = {"shard_count": 4, "signatures": {"0": "a", "1": "b", "2": "c"}}
    now = {"0": "a", "1": "B", "2": "c", "3": "d"}
    assert plan.touched_shards(now, before, 4, everything=False) == [1, 3]
    assert plan.touched_shards({"0": "a", "1": "b"}, before, 4, everything=False) == [2]  # shard 2's rows retracted
    assert plan.touched_shards(now, before, 4, everything=True) == [0, 1, 2, 3]
    assert plan.touched_shards(now, {**before, "shard_count": 2}, 4, everything=False) == [0, 1, 2, 3]
    assert plan.touched_shards(dict(before["signatures"]), before, 4, everything=False) == []


@pytest.mark.parametrize(
    ("latest", "requested", "expected"),
    [
        (None, False, ("train_and_predict", "no model for this shard yet")),
        ({"shard_count": 4, "trained_at": NOW.isoformat()}, True, ("train_and_predict", "retrain requested")),
        ({"shard_count": 2, "trained_at": NOW.isoformat()}, False, ("train_and_predict", "re-sharded from 2 to 4 shards")),
        (
            {"shard_count": 4, "trained_at": (NOW - timedelta(days=28)).isoformat()},
            False,
            ("train_and_predict", "model older than 28 days"),
        ),
        ({"shard_count": 4, "trained_at": (NOW - timedelta(days=27)).isoformat()}, False, ("predict", "latest model")),
    ],
)
def test_a_shard_trains_when_retraining_is_due_else_predicts(latest, requested, expected):
    assert plan.shard_mode(latest, requested=requested, count=4, now=NOW, max_age_days=28) == expected


def test_run_ids_sort_by_time_and_differ_by_owner():
    first, other = plan.new_run_id("raw/a.csv#1", NOW), plan.new_run_id("raw/b.csv#1", NOW)
    later = plan.new_run_id("raw/a.csv#1", NOW + timedelta(seconds=1))
    assert first != other and first < later and first.startswith("20260301T000000.000000Z-")
    again = plan.new_run_id("raw/a.csv#1", NOW + timedelta(microseconds=1))  # the same owner within a second
    assert first < again < later


def test_the_horizon_is_the_events_else_the_settings_else_the_frequencys():
    from item_prediction.aws.settings import Settings

    settings = Settings(bucket="b", table="t")
    assert plan.resolve_horizon(None, settings, "D") == 14 and plan.resolve_horizon(None, settings, "W") == 8
    assert plan.resolve_horizon("5", settings, "D") == 5
    assert plan.resolve_horizon(None, Settings(bucket="b", table="t", forecast_horizon=3), "W") == 3
    with pytest.raises(ValueError, match="from 1 to 366"):
        plan.resolve_horizon(400, settings, "D")


def test_a_model_trained_on_other_known_in_advance_columns_is_retrained():
    latest = {"shard_count": 4, "trained_at": NOW.isoformat(), "known_in_advance": []}
    args = {"requested": False, "count": 4, "now": NOW, "max_age_days": 28}
    assert plan.shard_mode(latest, **args, known=[]) == ("predict", "latest model")
    assert plan.shard_mode(latest, **args, known=["unit_price"]) == (
        "train_and_predict",
        "known_in_advance changed to ['unit_price']",
    )


def test_known_in_advance_is_the_uploads_mapping_else_the_datasets():
    manifest = {"known_in_advance": ["unit_price"]}
    # the mapping's order does not matter: one canonical order, as the features manifest's
    assert plan.known_in_advance_of({"known_in_advance": ["promotion", "unit_price"]}, manifest) == ["unit_price", "promotion"]
    assert plan.known_in_advance_of({"known_in_advance": []}, manifest) == []  # the mapping dropped them
    assert plan.known_in_advance_of({"retracted": True}, manifest) == ["unit_price"]  # no mapping read: the dataset's
    assert plan.known_in_advance_of({}, {}) == []


@pytest.mark.parametrize(
    ("frequency", "data_end", "start"),
    [("D", "2024-03-31", "2024-03-02"), ("W", "2024-03-25", "2023-03-27"), ("M", "2024-03-01", "2023-02-01")],
)
def test_a_predict_window_reaches_back_the_features_history_in_calendar_periods(frequency, data_end, start):
    from item_prediction.domain import features as feats
    from item_prediction.steps import features as feature_step

    assert feature_step.window_start(data_end, frequency) == start, feats.history_needed(frequency)
    assert not feature_step.retrain_due(data_end, data_end, 3, frequency)
    assert feature_step.retrain_due("2024-01-01", "2024-05-01", 3, "M")
    assert not feature_step.retrain_due("2024-01-01", "2024-04-01", 3, "M")
