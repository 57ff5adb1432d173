"""What the offline Step Functions runner raises."""

from __future__ import annotations


class UnsupportedDefinition(ValueError):
    """The definition uses something the runner does not implement (or is not valid ASL); nothing ran."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class TaskFailed(Exception):
    """A task's error as Step Functions names it: ``error`` (e.g. the Lambda errorType) and ``cause``."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error, self.cause = error, cause


class ExecutionFailed(Exception):
    """The execution ended in failure: the error, its cause and the state where it ended.

    ``caught`` is the first error a Catch handled on the way (its state, error and cause), so a run
    that ends in a Fail state after its clean-up and dead-letter steps still says which step failed.
    """

    def __init__(self, error: str, cause: str, state: str, caught: dict | None = None) -> None:
        super().__init__(f"{state}: {error}: {cause}" if cause else f"{state}: {error}")
        self.error, self.cause, self.state, self.caught = error, cause, state, caught
