"""The correlation id every log line of a pipeline run carries."""

from __future__ import annotations

import pytest
from item_prediction.aws import runtime


@pytest.mark.parametrize(
    ("key", "version", "expected"),
    [
        ("raw/sales/jan.csv", "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", "raw/sales/jan.csv#3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"),
        ("raw/sales/jan.csv", None, "raw/sales/jan.csv"),
        ("raw/sales/jan.csv", "", "raw/sales/jan.csv"),
    ],
)
def test_the_correlation_id_is_key_and_version_or_the_key_alone(key, version, expected):
    runtime.correlate(key, version)
    assert runtime.logger.get_correlation_id() == expected
