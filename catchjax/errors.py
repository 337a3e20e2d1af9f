"""The one exception type catchjax raises for bad input.

Every message names the problem and how to fix it; the CLI prints it without a traceback.
"""


class CatchjaxError(ValueError):
    """Bad input: a wrong name, config, file or value, with a message saying how to fix it."""
