"""User-facing errors.

Every problem a user can cause (bad arrays, unknown names, corrupt files, incompatible
checkpoints) raises :class:`CrosslError` with a one-line message that names the problem and the
fix. The CLI prints that line and exits with status 2.
"""


class CrosslError(ValueError):
    """A problem with the user's input, files or configuration, explained in one line."""
