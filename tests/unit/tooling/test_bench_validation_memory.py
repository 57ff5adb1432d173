"""scripts/bench_validation_memory.py end to end on a small file: the same export with every field
quoted validates to the same counts as without quotes."""

from .scripts import run_json


def test_quoted_and_unquoted_exports_validate_the_same():
    runs = {}
    for quoting in ("minimal", "all"):
        report = run_json("bench_validation_memory.py", "--rows", "3000", "--days", "50", "--quoting", quoting)
        assert report["quoting"] == quoting
        (run,) = report["runs"]
        runs[quoting] = run
    plain, quoted = runs["minimal"], runs["all"]
    assert quoted["input"]["bytes"] > plain["input"]["bytes"], "every field quoted: more bytes"
    counts = ("rows_in", "rows_clean", "rows_quarantined", "series", "shard_count")
    assert [quoted["validation"][name] for name in counts] == [plain["validation"][name] for name in counts]
    assert plain["validation"]["rows_in"] == 3000 and plain["validation"]["rows_quarantined"] < 20
