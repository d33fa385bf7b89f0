"""The error type the CLI turns into one line on stderr and exit status 2."""


class UserError(Exception):
    """Bad input from the user (unknown device, bad file, out-of-range option...).

    The message is one line that says what is wrong and, where possible, what to do."""


def ensure_writable(path, what: str = "--out", folder: bool = False) -> None:
    """Raises UserError (one line) unless ``path`` (a ``folder``, else a file) could be
    written: the nearest existing folder on its way must be a writable folder, and an
    existing file writable. Creates nothing, so a refused or failed command leaves no
    trace; called before any work, so a read-only destination costs nothing."""
    import os
    from pathlib import Path
    p = Path(path).expanduser()
    if not folder and p.exists() and (p.is_dir() or not os.access(p, os.W_OK)):
        raise UserError(f"{what} {p}: not a writable file; choose another destination")
    d = p if folder else p.parent
    while not d.exists() and d != d.parent:
        d = d.parent
    if not d.is_dir() or not os.access(d, os.W_OK | os.X_OK):
        why = "not a folder" if not d.is_dir() else "read-only"
        raise UserError(f"{what} {p}: not writable ({d} is {why}); choose another "
                        f"destination")


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


def warn_damaged(path, what: str, action: str, exc: BaseException | None = None) -> None:
    """Prints one warning line on stderr naming a damaged cache file (a tuning cache,
    a reference cache...) and what happens instead (``action``, e.g. "it is rebuilt");
    for files whose loss only costs time. State that changes results uses
    :func:`read_state` (an error)."""
    import sys
    why = f" ({exc.__class__.__name__}: {(str(exc).strip().splitlines() or [''])[0][:120]})" \
        if exc is not None else ""
    print(f"warning: {what} {path} is damaged{why}; {action}", file=sys.stderr)
