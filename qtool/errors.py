"""The one exception type for bad input.

A ``QtoolError`` message names the problem and the fix on one line; the CLI
prints it as ``error: <message>`` and exits 2 with no traceback.
"""


class QtoolError(Exception):
    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None):
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}; {fix}" if fix else problem)


class Interrupted(QtoolError):
    """The user stopped a run (Ctrl-C); finished work is kept where it can be resumed."""

    exit_code = 130


class ProfilesFailed(QtoolError):
    """Some profiles of a multi-profile run failed; the others' results were written."""

    exit_code = 1
