"""User-facing errors: one clear line, never a traceback."""


class TunebenchError(Exception):
    """A mistake in the user's input or setup. The CLI prints `str(err)` on one line and exits 2.

    The message names the file / row / column involved and says what to do about it.
    """
