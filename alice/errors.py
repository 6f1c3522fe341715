"""The one exception type a user ever sees: a short sentence naming the problem."""


class AliceError(Exception):
    """A problem with the user's input, files or plugins.

    The CLI prints ``str(error)`` on one line and exits non-zero; no traceback.
    Raise it with a message that names the thing at fault and, where there is
    one, what to do about it.
    """

    exit_code = 2


class Interrupted(AliceError):
    """Ctrl-C: the CLI prints the message (what was kept, how to go on) and exits 130, as shells expect."""

    exit_code = 130
