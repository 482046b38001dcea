"""Errors a user can cause. The CLI prints them as one line and exits with code 2; bugs stay loud."""


class UserError(Exception):
    """A mistake in what the user asked for (bad recipe, missing path, wrong size): one line, exit 2."""

    exit_code = 2


class RecipeError(UserError):
    """A recipe that does not validate. Carries every problem found, one per line."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


class DataError(UserError):
    """A data source, tokenizer or prepared dataset that cannot be used."""


class TrainingError(Exception):
    """A training stage stopped for a reason the user must see (non-finite loss, failed save): exit 1."""

    exit_code = 1


class Interrupted(Exception):
    """Ctrl-C while training: the last checkpoint is intact and the same command resumes. Exit 130."""

    exit_code = 130
