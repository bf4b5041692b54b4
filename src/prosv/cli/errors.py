"""Which errors are the user's (one line, exit 2) and which are prosv's (a traceback)."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for: reported as one line, exit status 2."""


def is_user_error(err: Exception) -> bool:
    """Errors that come from what the user asked for or gave (files, options, models, servers), not from
    a bug in prosv."""
    from ..data.tables import DataValidationError
    from ..judges import JudgeAPIError
    from ..models import ModelNotAvailable
    from ..training import TrainingError
    from ..vectors import VectorFileError, VectorModelMismatch

    return isinstance(
        err,
        (
            UserError,
            ValueError,
            KeyError,
            FileNotFoundError,
            DataValidationError,
            ModelNotAvailable,
            VectorFileError,
            VectorModelMismatch,
            TrainingError,
            JudgeAPIError,
        ),
    )
