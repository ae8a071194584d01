"""Click-protocol evaluation: splits (`datasets`), click simulator (`clicker`), metrics, runner,
classic baselines and the tables (`run_evaluation`; the command line is `hrsam eval`)."""


def run_evaluation(*args, **kwargs) -> str:
    """See `hrsam_model.evaluation.command.run_evaluation` (imported lazily: baselines pull in torch)."""
    from .command import run_evaluation as run

    return run(*args, **kwargs)
