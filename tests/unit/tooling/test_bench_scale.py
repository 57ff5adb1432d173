"""scripts/bench_scale.py without the emulator: the cost arithmetic (billed GB-seconds, Lambda,
Step Functions transitions and Express children), the per-stage and per-shard figures, the
transition count from the runner's progress lines, the ratios, and the whole script at a tiny size
with the main job replaced by a recorded one (the yardstick runs for real). No timing asserted."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from ...conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "bench_scale.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(function: str, duration_ms: float, memory_size_mb: int, max_memory_mb: int, *, shard=None, init_ms=None, error=None):
    return {
        "function": function,
        "shard": shard,
        "duration_ms": duration_ms,
        "init_ms": init_ms,
        "memory_size_mb": memory_size_mb,
        "max_memory_mb": max_memory_mb,
        "error": error,
    }


# A Standard workflow: Plan, a Distributed Map of EXPRESS children (BuildFeatures -> Predict), Aggregate.
FANOUT = {
    "StartAt": "Plan",
    "States": {
        "Plan": {"Type": "Task", "Next": "Shards"},
        "Shards": {
            "Type": "Map",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "BuildFeatures",
                "States": {"BuildFeatures": {"Type": "Task", "Next": "Predict"}, "Predict": {"Type": "Task", "End": True}},
            },
            "Next": "Aggregate",
        },
        "Aggregate": {"Type": "Task", "End": True},
    },
}
FANOUT_LINES = [
    "==> state Plan",
    "    REPORT RequestId: x\tDuration: 1.00 ms",
    "==> state Shards",
    "==> state BuildFeatures",
    "==> state BuildFeatures",
    "==> state Predict",
    "==>   retry 1 of Predict after States.TaskFailed in 1.0s",
    "==> state Predict",
    "==> state Aggregate",
]


def test_billed_gb_seconds_round_each_invocation_up_to_the_millisecond(bench):
    assert bench.billed_gb_seconds(1000.2, 1024) == pytest.approx(1.001)
    assert bench.billed_gb_seconds(0.1, 2048) == pytest.approx(0.002)
    assert bench.billed_gb_seconds(4000, 512) == pytest.approx(2.0)


def test_stage_figures_bill_init_and_duration_at_the_memory_size(bench):
    calls = [
        call("DataValidationFunction", 2000, 1024, 300, init_ms=500),
        call("PredictionsFunction", 3000, 2048, 900, shard=0),
        call("PredictionsFunction", 1000, 2048, 1200, shard=1, error={"errorType": "Runtime.OutOfMemory"}),
    ]
    validation, predictions = bench.stage_figures(calls)
    assert validation["function"] == "DataValidationFunction" and validation["invocations"] == 1
    assert validation["gb_seconds"] == pytest.approx(2.5)  # (2,000 + 500 init) ms at 1 GB
    assert validation["lambda_usd"] == pytest.approx(2.5 * bench.LAMBDA_USD_PER_GB_SECOND + bench.LAMBDA_USD_PER_REQUEST)
    assert validation["compute_s"] == 2.0 and validation["init_s"] == 0.5
    assert predictions["invocations"] == 2 and predictions["compute_s"] == 4.0
    assert predictions["gb_seconds"] == pytest.approx(8.0)
    assert predictions["peak_mb"] == 1200 and predictions["peak_share"] == pytest.approx(1200 / 2048, abs=0.001)
    assert predictions["errors"] == ["Runtime.OutOfMemory"]


def test_stage_figures_say_where_the_compute_went_step_by_step(bench):
    first = {**call("PredictionsFunction", 3000, 3008, 900, shard=0), "durations_ms": {"fit": 2000.0, "forecast": 500.0}}
    second = {**call("PredictionsFunction", 2000, 3008, 900, shard=1), "durations_ms": {"fit": 1500.0, "write_items": 400.0}}
    (stage,) = bench.stage_figures([first, second])
    assert stage["steps_s"] == {"fit": 3.5, "forecast": 0.5, "write_items": 0.4}
    assert list(stage["steps_s"]) == ["fit", "forecast", "write_items"]  # largest first


def test_shard_figures_cover_only_the_invocations_inside_a_map(bench):
    calls = [call("DataValidationFunction", 9000, 1024, 999)]
    calls += [
        call("FeatureEngineeringFunction", ms, 2048, mb, shard=s)
        for s, (ms, mb) in enumerate([(1000, 100), (3000, 300), (2000, 250)])
    ]
    (features,) = bench.shard_figures(calls)
    assert features["function"] == "FeatureEngineeringFunction" and features["shards"] == 3
    assert (features["seconds_median"], features["seconds_max"]) == (2.0, 3.0)
    assert (features["peak_mb_median"], features["peak_mb_max"]) == (250, 300)
    assert bench.shard_figures(calls[:1]) == []


def test_transitions_count_the_parent_states_retries_and_one_per_child_execution(bench):
    counted = bench.count_transitions(FANOUT_LINES, FANOUT)
    # Plan, Shards, Aggregate + 2 child executions; the children's 4 states and 1 retry are Express (billed by time)
    assert counted == {"standard": 5, "child_executions": 2, "express_children": True, "child_states": 5}
    standard = json.loads(json.dumps(FANOUT))
    standard["States"]["Shards"]["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] = "STANDARD"
    assert bench.count_transitions(FANOUT_LINES, standard)["standard"] == 10  # Standard children: their states count too
    one_stage = ["==> state Validate", "==> state AnythingToPredict", "==> state BuildFeatures", "==> state Predict"]
    flat = {"StartAt": "Validate", "States": {name: {"Type": "Task"} for name in ("Validate", "BuildFeatures", "Predict")}}
    assert bench.count_transitions(one_stage, flat) == {
        "standard": 4,
        "child_executions": 0,
        "express_children": False,
        "child_states": 0,
    }


def test_workflow_cost_adds_express_children_by_request_and_100_ms_steps(bench):
    calls = [call("FeatureEngineeringFunction", 120, 2048, 1, shard=0), call("PredictionsFunction", 20, 3008, 1, shard=0)]
    calls += [call("PredictionsFunction", 50, 3008, 1, shard=1), call("DataValidationFunction", 5000, 1024, 1)]
    assert sorted(bench.child_durations(calls)) == [50, 140]
    transitions = bench.count_transitions(FANOUT_LINES, FANOUT)
    express = 2 * bench.SFN_EXPRESS_USD_PER_REQUEST + (0.2 + 0.1) * 64 / 1024 * bench.SFN_EXPRESS_USD_PER_GB_SECOND
    assert bench.express_cost([140, 50]) == pytest.approx(express)
    assert bench.workflow_cost(transitions, calls) == pytest.approx(5 * bench.SFN_USD_PER_TRANSITION + express)


def test_rows_are_a_list_of_sizes_and_nonsense_is_refused_in_one_line(bench, capsys):
    assert bench.build_parser().parse_args(["--rows", "20000,3_000_000"]).rows == [20_000, 3_000_000]
    assert bench.build_parser().parse_args([]).rows == [1_000_000, 3_000_000, 10_000_000]
    for bad in ("lots", "10", ""):
        with pytest.raises(SystemExit):
            bench.build_parser().parse_args(["--rows", bad])
        assert "--rows" in capsys.readouterr().err


def test_the_main_job_command_passes_concurrency_only_where_the_runner_takes_it(bench, monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "runner_takes", lambda option: True)
    command = bench.main_job_command(tmp_path / "f.csv.gz", "scale20000", None)
    assert command == [str(REPO_ROOT / "deploy.sh"), "--local", "--input", str(tmp_path / "f.csv.gz")] + [
        "--dataset",
        "scale20000",
        "--skip-build",
        "--format",
        "json",
    ]
    assert bench.main_job_command(tmp_path / "f.csv", "d", 8)[-2:] == ["--concurrency", "8"]
    monkeypatch.setattr(bench, "runner_takes", lambda option: False)
    assert "--concurrency" not in bench.main_job_command(tmp_path / "f.csv", "d", 8)
    assert "--concurrency" not in bench.main_job_command(tmp_path / "f.csv", "d", None)


def test_run_main_job_reads_the_summary_and_the_progress_lines(bench):
    script = "import sys, json; print('==> state Validate', file=sys.stderr); print(json.dumps({'invocations': []}))"
    run = bench.run_main_job([sys.executable, "-c", script])
    assert run["summary"] == {"invocations": []} and run["lines"] == ["==> state Validate"] and run["exit_code"] == 0
    assert 0 <= run["pipeline_wall_s"] <= run["wall_s"]
    failed = bench.run_main_job([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(1)"])
    assert failed["exit_code"] == 1 and failed["summary"]["failure"]["cause"] == "boom"


def test_the_whole_script_at_a_tiny_size_with_a_recorded_main_job(bench, monkeypatch, capsys):
    seen = []

    def recorded(command):
        seen.append(command)
        invocations = [call("DataValidationFunction", 1000, 1024, 100, init_ms=300), call("PredictionsFunction", 3000, 3008, 500)]
        lines = ["==> state Validate", "==> state AnythingToPredict", "==> state BuildFeatures", "==> state Predict"]
        summary = {"invocations": invocations, "failure": None, "validation": {"rows_in": 1}}
        return {"summary": summary, "lines": lines, "exit_code": 0, "wall_s": 9.0, "pipeline_wall_s": 7.0}

    monkeypatch.setattr(bench, "run_main_job", recorded)
    stopped = []
    monkeypatch.setattr(bench, "stop_kept_stack", lambda: stopped.append(True))
    assert bench.main(["--rows", "3000,6000", "--days", "60", "--format", "json", "--skip-build"]) == 0
    report = json.loads(capsys.readouterr().out)
    small, large = report["sizes"]
    assert [size["rows_asked"] for size in report["sizes"]] == [3000, 6000] and len(seen) == 4 and len(stopped) == 2
    assert "scale3000" in seen[0] and seen[0][seen[0].index("--input") + 1].endswith("m5like_3000.csv.gz")
    assert "--keep-running" in seen[0] and "--keep-running" in seen[1]  # the history, then its next week, same stack
    assert seen[1][seen[1].index("--input") + 1].endswith("m5like_3000_week.csv.gz") and "scale3000" in seen[1]
    assert small["input"]["days"] == 53 and small["weekly"]["input"]["days"] == 7
    assert report["ratios"]["weekly_upload_3000_vs_full"] == 1.0  # the recorded week costs what the history did
    assert (
        small["compute_s"] == 4.0 and small["transitions"]["standard"] == 5
    )  # 2 parent states, 1 child execution, its 2 states (STANDARD children)
    assert small["cost_usd"]["total"] == pytest.approx(small["cost_usd"]["lambda"] + 5 * bench.SFN_USD_PER_TRANSITION)
    assert report["yardstick"]["path"] == large["input"]["path"]  # the size nearest to 1 M rows
    assert report["yardstick"]["rows"] == large["input"]["rows"] and report["yardstick"]["seconds"] > 0
    assert report["ratios"]["compute_vs_yardstick"] == pytest.approx(4.0 / report["yardstick"]["seconds"], rel=0.01)
    assert report["yardstick"]["threads"] == 1  # Predictions' 3,008 MB: one whole vCPU, as its environments get
    cores = report["yardstick"]["all_cores"]
    assert cores["rows"] == large["input"]["rows"] and cores["threads"] == os.cpu_count()
    assert report["ratios"]["compute_vs_yardstick_all_cores"] == pytest.approx(4.0 / cores["seconds"], rel=0.01)
    assert report["ratios"]["compute_6000_vs_3000"]["compute"] == 1.0
    assert "load_1m" in small["load_before"] and "omp_num_threads" in report["environment"]


def test_repeats_add_each_runs_figures_and_their_medians(bench, monkeypatch, capsys):
    """Three repeats of one size: each repeat's compute and weekly compute (a recorded main job
    whose Predictions take 1, 5 and 2 s in the full runs), their medians, the sizes of the first."""
    full = iter([1000, 5000, 2000])
    weekly = iter([100, 300, 200])

    def recorded(command):
        duration = next(weekly) if "m5like_3000_week" in " ".join(command) else next(full)
        summary = {"invocations": [call("PredictionsFunction", duration, 3008, 500)], "failure": None}
        return {"summary": summary, "lines": ["==> state Validate"], "exit_code": 0, "wall_s": 2.0, "pipeline_wall_s": 1.0}

    monkeypatch.setattr(bench, "run_main_job", recorded)
    monkeypatch.setattr(bench, "stop_kept_stack", lambda: None)
    monkeypatch.setattr(bench, "yardstick", lambda path, threads=None: {"seconds": 0.5, "steps": {}, "rows": 1, "threads": 1})
    assert bench.main(["--rows", "3000", "--days", "60", "--repeats", "3", "--format", "json", "--skip-build"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [repeat["compute_s"] for repeat in report["repeats"]] == [{"3000": 1.0}, {"3000": 5.0}, {"3000": 2.0}]
    assert [repeat["weekly_compute_s"]["3000"] for repeat in report["repeats"]] == [0.1, 0.3, 0.2]
    assert report["sizes"][0]["compute_s"] == 1.0  # the first repeat's, in full
    middle = report["medians"]
    assert middle["compute_s"] == {"3000": 2.0} and middle["weekly_compute_s"] == {"3000": 0.2}
    assert middle["ratios"]["compute_vs_yardstick"] == 4.0  # of 2, 10 and 4
    assert middle["ratios"]["weekly_upload_3000_vs_full"] == 0.1  # of 0.1, 0.06 and 0.1
    text = "\n".join(bench.render_repeats(report["repeats"], middle))
    assert "3 repeats" in text and "median    compute 3,000 rows 2.00 s" in text


@pytest.mark.parametrize("value", ["0", "21", "two"])
def test_a_bad_repeat_count_is_refused_in_one_line(value):
    completed = subprocess.run(
        [sys.executable, "scripts/bench_scale.py", "--repeats", value], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 2 and f"--repeats {value!r}: a whole number from 1 to 20" in completed.stderr


def test_the_text_report_names_failures_and_shards(bench):
    failed = call("PredictionsFunction", 3000, 3008, 3008, shard=0, error={"errorType": "Runtime.OutOfMemory"})
    stages = bench.stage_figures([{**failed, "durations_ms": {"read_features": 250.0, "fit": 1500.0}}])
    size = {
        "rows_asked": 3_000_000,
        "input": {
            "rows": 3_001_000,
            "series": 2,
            "items": 1,
            "stores": 2,
            "days": 9,
            "zero_share": 0.6,
            "bytes": 9,
            "generate_s": 1,
        },
        "failure": {"state": "Predict", "error": "Runtime.OutOfMemory", "cause": "exceeded 3008 MB"},
        "stages": stages,
        "shards": bench.shard_figures([call("PredictionsFunction", 3000, 3008, 3008, shard=0)]),
        "compute_s": 3.0,
        "gb_seconds": 8.8,
        "transitions": {"standard": 4, "child_executions": 1, "express_children": True, "child_states": 2},
        "cost_usd": {"lambda": 0.1, "step_functions": 0.01, "total": 0.11},
        "wall_s": 5.0,
        "pipeline_wall_s": 4.0,
        "load_before": {"load_1m": 1.0},
        "load_after": {"load_1m": 2.0},
    }
    text = bench.render({"environment": {}, "sizes": [size], "yardstick": {"error": "no file"}, "ratios": {}})
    assert "FAILED in Predict: Runtime.OutOfMemory" in text
    assert "      steps: fit 1.5 s, read_features 0.2 s" in text.splitlines()
    stage_line = next(line for line in text.splitlines() if line.strip().startswith("PredictionsFunction"))
    assert stage_line.endswith("Runtime.OutOfMemory") and "100%" in stage_line  # the stage that died, at its size
    assert "1 child executions (EXPRESS)" in text and "per shard" in text and "yardstick FAILED: no file" in text


def test_split_work_tells_validation_shards_and_the_rest_apart(bench):
    monolith = bench.split_work(
        [call("DataValidationFunction", 1000, 1024, 1), call("FeatureEngineeringFunction", 2000, 2048, 1)]
        + [call("PredictionsFunction", 3000, 3008, 1)]
    )
    assert monolith["monolith"] and monolith["shard"]["shards"] == 1 and monolith["shard"]["compute_s"] == 5.0
    assert monolith["validation"]["invocations"] == 1 and monolith["other"]["invocations"] == 0
    sharded = bench.split_work(
        [call("DataValidationFunction", 1000, 1024, 1), call("FeatureEngineeringFunction", 500, 1024, 1)]  # plan
        + [call(f, 1000, 1024, 1, shard=s) for s in (0, 1) for f in ("FeatureEngineeringFunction", "PredictionsFunction")]
        + [call("PredictionsFunction", 250, 1024, 1)]  # aggregate
    )
    assert not sharded["monolith"] and sharded["shard"] == {"invocations": 4, "compute_s": 4.0, "gb_seconds": 4.0, "shards": 2}
    assert sharded["other"] == {"invocations": 2, "compute_s": 0.75, "gb_seconds": 0.75}


def measured(rows=1_000_000, shards=2):
    """A run of ``rows`` rows: validation 10 s (1e-5 s a row), 20 s per shard, plan + aggregate 2 s."""
    return {
        "input": {"rows": rows},
        "failure": None,
        "transitions": {"standard": 5 + shards, "child_executions": shards},
        "work": {
            "validation": {"invocations": 1, "compute_s": 10.0, "gb_seconds": 10.0},
            "shard": {"invocations": 2 * shards, "compute_s": 20.0 * shards, "gb_seconds": 40.0 * shards, "shards": shards},
            "other": {"invocations": 2, "compute_s": 2.0, "gb_seconds": 4.0},
            "monolith": False,
        },
    }


def test_projection_scales_per_shard_work_by_rows_per_shard_and_runs_shards_in_waves(bench):
    from item_prediction.domain import schema
    from item_prediction.domain.shards import shard_count_for

    rows = bench.M5_ROWS
    shards = shard_count_for(rows)
    scale = rows / shards / 500_000  # projected rows per shard over the measured 500,000
    wide, narrow = bench.project(measured(), rows, 1_000), bench.project(measured(), rows, 16)
    assert wide["shards"] == shards and wide["rows_per_shard"] <= schema.SHARD_TARGET_ROWS
    assert wide["concurrency"] == min(1_000, shards) and narrow["concurrency"] == 16
    assert wide["shard_s"] == pytest.approx(20 * scale, abs=0.1)
    assert wide["wall_s"] == pytest.approx(rows * 1e-5 + 2 + 20 * scale, abs=0.1)  # one file, one wave
    assert narrow["wall_s"] == pytest.approx(rows * 1e-5 + 2 + shards / 16 * 20 * scale, abs=0.1)
    assert wide["compute_s"] == pytest.approx(rows * 1e-5 + 2 + shards * 20 * scale, abs=0.1)
    gb_s = rows * 1e-5 + 4 + shards * 40 * scale
    assert wide["gb_seconds"] == pytest.approx(gb_s, abs=0.1)
    assert wide["cost_usd"] > gb_s * bench.LAMBDA_USD_PER_GB_SECOND
    ten = bench.project(measured(), 10 * rows, 1_000)
    files = -(-10 * rows // 72_000_000)  # equal files of at most 720 s of validation (80% of 900 s)
    assert ten["validation_files"] == files and wide["validation_files"] == 1
    assert ten["wall_s"] == pytest.approx(10 * rows / files * 1e-5 + 2 + -(-ten["shards"] // 1_000) * ten["shard_s"], abs=0.2)


def test_projected_step_functions_cost_counts_standard_childrens_states_per_shard(bench):
    """A STANDARD child's states are transitions of their own, paid per shard; an EXPRESS child's
    are billed by duration: the parent's transitions are paid once per validation file."""
    standard = {"standard": 7 + 2 + 2 * 2, "child_executions": 2, "express_children": False, "child_states": 4}
    express = {"standard": 7 + 2, "child_executions": 2, "express_children": True, "child_states": 4}
    price = bench.SFN_USD_PER_TRANSITION
    assert bench._projected_workflow(standard, 3, 64, 5.0) == pytest.approx((3 * 7 + 64 * 3) * price)
    assert bench._projected_workflow(express, 3, 64, 5.0) == pytest.approx(
        (3 * 7 + 64) * price + bench.express_cost([5_000.0] * 64)
    )


def test_projections_start_from_the_largest_size_that_ran_through(bench):
    small, large, failed = measured(1_000_000), measured(3_000_000, shards=8), measured(10_000_000, shards=32)
    failed["failure"] = {"error": "Runtime.OutOfMemory"}
    m5, ten = bench.projections([small, large, failed], 1_000)
    assert m5["from_rows"] == 3_000_000 and m5["rows"] == bench.M5_ROWS and ten["rows"] == 10 * bench.M5_ROWS
    assert bench.projections([failed], 1_000) == []
    assert "on paper, from the 3,000,000-row run (per-shard figures)" in "\n".join(bench.render_projections([m5, ten]))


def test_a_failed_build_stops_the_benchmark_before_any_size(bench, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(
        bench.subprocess, "run", lambda command, **kw: ran.append(command) or bench.subprocess.CompletedProcess(command, 2)
    )
    monkeypatch.setattr(bench, "bench_size", lambda *args: pytest.fail("a size ran after a failed build"))
    assert bench.main(["--rows", "3000"]) == 1
    assert ran == [[str(REPO_ROOT / "build.sh")]]
    assert "error: the build failed (run ./build.sh to see why)" in capsys.readouterr().err


def test_the_weekly_upload_is_shown_against_the_full_run(bench):
    stages = bench.stage_figures([call("DataValidationFunction", 500, 1024, 111), call("PredictionsFunction", 9500, 3008, 900)])
    weekly = {
        "input": {"rows": 7_280},
        "stages": stages,
        "compute_s": 10.0,
        "cost_usd": {"total": 0.001},
        "pipeline_wall_s": 12.0,
        "failure": None,
    }
    text = "\n".join(bench.render_weekly(weekly, 200.0))
    assert "next week uploaded to the same dataset: 7,280 rows, compute 10.0 s (5% of the full run's)" in text
    assert "DataValidationFunction 1 x, 0.5 s" in text and "PredictionsFunction 1 x, 9.5 s" in text
    assert bench.render_weekly(None, 200.0) == []
