"""The error type the CLI turns into one line on stderr and exit status 2."""


class UserError(Exception):
    """Bad input from the user (unknown device, bad file, out-of-range option...).

    The message is one line that says what is wrong and, where possible, what to do."""
