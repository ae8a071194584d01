"""Click-protocol evaluation: splits (`datasets`), click simulator (`clicker`), metrics, runner,
classic baselines and the tables (`python -m hrsam_model.evaluation`, `run_evaluation`)."""


def run_evaluation(*args, **kwargs) -> str:
    """See `hrsam_model.evaluation.command.run_evaluation` (imported lazily: it pulls in torch)."""
    from .command import run_evaluation as run

    return run(*args, **kwargs)


def main(argv=None) -> int:
    from .command import main as run_main

    return run_main(argv)
