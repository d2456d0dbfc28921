"""Reading saved-model files with one-line errors that name the file, the problem and the fix.

Every model loader (layers, classifier, forecaster, text model) reads its weights through
`read_safetensors` and its JSON through `read_json_object`, so a truncated, corrupted or foreign
file is a ValueError (or FileNotFoundError) whose message names the path, never a traceback from
the safetensors or json modules.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

RESAVE = "re-save or retrain the model"


def read_safetensors(path: str | os.PathLike, hint: str = RESAVE) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file, name -> array.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not readable safetensors (truncated, corrupted, not safetensors).
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    p = Path(path)
    if not p.is_file():
        what = "is a directory, not a file" if p.is_dir() else "not found"
        raise FileNotFoundError(f"{p} {what}: the model's weights are missing; {hint}")
    try:
        return load_file(str(p))
    except (SafetensorError, OSError, ValueError, TypeError, OverflowError, MemoryError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(
            f"{p} is not a readable safetensors file (truncated or corrupted: {why}); {hint}"
        ) from None


def read_json_object(path: str | os.PathLike, hint: str = RESAVE) -> dict:
    """The JSON object (dict) in `path`.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: not UTF-8, not valid JSON (e.g. truncated) or not a JSON object.
    """
    p = Path(path)
    if not p.is_file():
        what = "is a directory, not a file" if p.is_dir() else "not found"
        raise FileNotFoundError(f"{p} {what}; {hint}")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{p} is not UTF-8 text (byte {e.start}); it is corrupted; {hint}"
        ) from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not valid JSON (truncated or corrupted: {e}); {hint}") from None
    except OSError as e:
        raise ValueError(f"{p} cannot be read ({e.strerror or e}); {hint}") from None
    if not isinstance(d, dict):
        raise ValueError(
            f"{p} holds a JSON {_json_kind(d)}, not the object a longshort model file has; {hint}"
        )
    return d


def check_format(meta: dict, path: str | os.PathLike, expected: str, hint: str = RESAVE) -> None:
    """Raise a ValueError naming the format found in `path` when it is not `expected`."""
    found = meta.get("format")
    if found == expected:
        return
    p = Path(path)
    if found is None:
        raise ValueError(f'{p} has no "format" key, so it is not a {expected} file; {hint}')
    family = expected.rsplit("-", 1)[0]
    if isinstance(found, str) and found.rsplit("-", 1)[0] == family:
        raise ValueError(
            f"{p} has format {found!r} but this version of longshort reads {expected!r}; "
            f"upgrade longshort or {hint}"
        )
    raise ValueError(f"{p} has format {found!r}, not {expected!r}; pass a directory saved as a "
                     f"{expected} model, or {hint}")  # fmt: skip


def require_keys(meta: dict, path: str | os.PathLike, keys, hint: str = RESAVE) -> None:
    """Raise a ValueError naming the keys of `keys` that `meta` (read from `path`) lacks."""
    missing = [k for k in keys if k not in meta]
    if missing:
        names = ", ".join(repr(k) for k in missing)
        s = "s" if len(missing) > 1 else ""
        raise ValueError(f"{Path(path)} is missing the key{s} {names} (edited or written by "
                         f"another program?); {hint}")  # fmt: skip


def _json_kind(v) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(v), "null" if v is None else type(v).__name__
    )
