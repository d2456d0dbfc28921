"""Checkpoints: one safetensors file holding the arrays, with the rest as JSON in its header.

File layout (`<dir>/checkpoint.safetensors`):
    tensors   "<group>/<name>" -> array, e.g. "model/lstm.weight_ih_l0", "optim/state.0.exp_avg"
    metadata  {"longshort": JSON text of everything else: step, data position, RNG states, ...}

One file, so one atomic rename publishes a consistent checkpoint: the bytes go to a temporary file
in the same directory, which is flushed and fsync'ed, then os.replace'd over the old checkpoint
(and the directory fsync'ed). A crash or an exception at any point leaves the previous checkpoint
whole. Nothing is pickled: arrays are safetensors, the rest is JSON.

A training config is also written beside it as `train_config.json` (same atomic write), for
people and tools that want to read it without parsing the checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save as st_save

FORMAT = "longshort-checkpoint-1"
CHECKPOINT_NAME = "checkpoint.safetensors"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, usual_mode())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def usual_mode() -> int:
    """0o666 & ~umask: the mode open() gives a new file (the umask is read by setting and
    restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (not possible on every platform; skipped there)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def save_checkpoint(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Atomically write arrays (name -> array) and a JSON-able dict to one safetensors file."""
    tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    text = json.dumps({"format": FORMAT, **meta}, allow_nan=False)
    atomic_write_bytes(path, st_save(tensors, metadata={"longshort": text}))


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read (arrays, meta) written by `save_checkpoint`.

    Raises:
        FileNotFoundError: no file at `path`. ValueError: the file is not a longshort checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="np") as f:
            header = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as e:
        raise ValueError(f"{path} is not a readable safetensors checkpoint: {e}") from None
    meta = json.loads(header.get("longshort", "{}"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a longshort training checkpoint (format {FORMAT})")
    return arrays, meta


def group(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays under "<prefix>/", with the prefix removed."""
    p = prefix + "/"
    return {k[len(p) :]: v for k, v in arrays.items() if k.startswith(p)}


def prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}/{k}": v for k, v in arrays.items()}


# --- random generators as JSON --------------------------------------------------------------------
def rng_state_to_json(rng: np.random.Generator) -> dict:
    """bit_generator.state with any arrays (e.g. MT19937's key) turned into lists."""
    return _to_json(rng.bit_generator.state)


def rng_state_from_json(rng: np.random.Generator, state: dict) -> None:
    """Restore a generator in place; its bit generator must be of the saved kind."""
    kind = type(rng.bit_generator).__name__
    if state.get("bit_generator") != kind:
        raise ValueError(f"saved RNG state is for {state.get('bit_generator')}, not {kind}")
    rng.bit_generator.state = _from_json(state)


def _to_json(v):
    if isinstance(v, dict):
        return {k: _to_json(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return {"__ndarray__": v.tolist(), "dtype": v.dtype.str}
    if isinstance(v, np.integer):
        return int(v)
    return v


def _from_json(v):
    if isinstance(v, dict):
        if "__ndarray__" in v:
            return np.asarray(v["__ndarray__"], dtype=np.dtype(v["dtype"]))
        return {k: _from_json(x) for k, x in v.items()}
    return v


# --- recurrent states (None, array, or nested tuples / lists of arrays) ---------------------------
def flatten_state(state, prefix: str = "carry") -> tuple[object, dict[str, np.ndarray]]:
    """(JSON structure, arrays) for a carried recurrent state; inverse of `unflatten_state`."""
    arrays: dict[str, np.ndarray] = {}

    def walk(s):
        if s is None:
            return None
        if isinstance(s, tuple | list):
            return {"seq": [walk(x) for x in s], "tuple": isinstance(s, tuple)}
        key = f"{prefix}/{len(arrays)}"
        arrays[key] = np.asarray(s)
        return key

    return walk(state), arrays


def unflatten_state(spec, arrays: dict[str, np.ndarray]):
    if spec is None:
        return None
    if isinstance(spec, dict):
        items = [unflatten_state(x, arrays) for x in spec["seq"]]
        return tuple(items) if spec["tuple"] else items
    return np.array(arrays[spec], copy=True)
