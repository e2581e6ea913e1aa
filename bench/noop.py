"""The no-op RQ task: the floor the orchestration benchmark compares a pipeline step against."""


def noop() -> None:
    return None
