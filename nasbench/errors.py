"""The error type the CLI turns into one line on stderr and exit status 2."""


class UserError(Exception):
    """Bad input from the user (unknown device, bad file, out-of-range option...).

    The message is one line that says what is wrong and, where possible, what to do."""


def ensure_writable(path, what: str = "--out", folder: bool = False) -> None:
    """Raises UserError (one line) unless ``path`` can be written: created if it is a
    ``folder``, else its parent folder created and a probe file written and removed
    there. Called before any work, so a read-only destination costs nothing."""
    import os
    import tempfile
    from pathlib import Path
    p = Path(path).expanduser()
    d = p if folder else p.parent
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".nasbench-probe-", dir=d)
        os.close(fd)
        os.unlink(probe)
        if not folder and p.exists() and not os.access(p, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise UserError(f"{what} {p}: not writable ({e.strerror or e}); choose another "
                        f"destination") from None


def read_state(path, reader, what: str, remedy: str):
    """Returns ``reader(path)`` for a state file (checkpoint, study, calibration, cache);
    raises UserError (one line) naming the file and what to do when it is damaged."""
    try:
        return reader(path)
    except (KeyboardInterrupt, UserError):
        raise
    except Exception as e:  # noqa: BLE001 - any damage: one line naming the file
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise UserError(f"{what} {path} is damaged ({e.__class__.__name__}: {first}); "
                        f"{remedy}") from None
