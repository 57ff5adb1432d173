"""Parquet intermediates round-trip the canonical columns exactly."""

import tempfile

import numpy as np
import pandas as pd
from item_prediction.aws import columnar


def test_round_trip_keeps_values_and_types():
    frame = pd.DataFrame(
        {
            "item_id": ["=A", "b#1", "ü"],
            "store_id": ["S", "_", "S"],
            "date": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "quantity": [1.0, 2.5, 0.0],
            "unit_price": [np.nan, 2.0, 3.5],
            "promotion": np.array([0, 1, 0], dtype="int8"),
        },
        index=[7, 8, 9],
    )
    with tempfile.TemporaryFile() as handle:
        columnar.write_frame(frame, handle)
        handle.seek(0)
        assert handle.read(4) == b"PAR1"
        handle.seek(0)
        back = columnar.read_frame(handle)
    pd.testing.assert_frame_equal(
        back.astype({"item_id": object, "store_id": object, "date": object}),
        frame.reset_index(drop=True).astype({"item_id": object, "store_id": object, "date": object}),
    )
    with tempfile.TemporaryFile() as handle:
        columnar.write_frame(frame, handle)
        handle.seek(0)
        assert list(columnar.read_frame(handle, columns=["quantity"]).columns) == ["quantity"]
