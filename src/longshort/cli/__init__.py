"""`longshort <command>`: argument parsing and printing live in this package only.

Each subcommand lives in its own module with a `register(subparsers)` function that adds its
parser and sets `func`; `func(args)` returns the exit code. Errors a user can fix (bad files,
columns, options) are raised as `UserError` or ValueError/KeyError/FileNotFoundError and printed as
one line, exit code 2, never a traceback. Output paths are checked as arguments are parsed, before
any work (`--out` with `type=out_dir` or `type=out_file`). Ctrl-C prints one line, exit code 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .._blas_threads import blas_threads

# Subcommand modules, in the order `longshort --help` lists them.
COMMANDS = ["demo", "export", "forecast", "lab", "inspect", "text", "classify"]


class UserError(Exception):
    """A problem with the user's input or options: printed as one line, exit code 2."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a message saying where the command stopped (printed as one line, exit 130)."""


def _out(path: str, directory: bool) -> str:
    p = Path(path)
    if directory and p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file, not a directory; give a directory "
                                         "(created if missing) or remove the file")  # fmt: skip
    if not directory and p.is_dir():
        raise argparse.ArgumentTypeError(
            f"{path} is a directory, not a file; give the path of the file to write"
        )
    for q in p.parents:  # the first existing ancestor must be a directory, or mkdir fails
        if q.exists():
            if not q.is_dir():
                raise argparse.ArgumentTypeError(
                    f"{q} is a file, so {path} cannot be created in it; give another path"
                )
            break
    return path


def out_dir(path: str) -> str:
    """argparse type of an output directory (`add_argument("--out", type=out_dir)`): an existing
    file, or a file among its parents, is a one-line error as the arguments are parsed."""
    return _out(path, directory=True)


def out_file(path: str) -> str:
    """argparse type of an output file: an existing directory at `path` (or a file among its
    parents) is a one-line error as the arguments are parsed."""
    return _out(path, directory=False)


def seed_type(text: str) -> int:
    """argparse type of `--seed`: a non-negative integer (NumPy's generators reject negative
    seeds), checked as the arguments are parsed (argparse names the option in the error)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a non-negative integer seed such as 0, got {text!r}"
        ) from None
    if v < 0:
        raise argparse.ArgumentTypeError(
            f"seed must be a non-negative integer (0, 1, 2, ...), got {v}"
        )
    return v


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: unknown options and invalid choices name the problem and
    point at --help instead of printing the whole usage block (subparsers inherit the class)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="longshort", description="LSTM networks on NumPy.")
    sub = p.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return p


def _leaf(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The (sub)parser the command words in argv lead to: `text train ...` -> its own parser."""
    for word in argv:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            if word.startswith("-"):
                continue
            break
        parser = subs[0].choices[word]
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the subcommand whose options these are not (argparse names the top level)
        _leaf(parser, argv).error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        with blas_threads(1):  # NumPy's idle BLAS threads would spin on the kernels' cores
            return int(args.func(args) or 0)
    except KeyboardInterrupt as e:  # Ctrl-C: where it stopped, not a traceback
        msg = e.args[0] if isinstance(e, Interrupted) and e.args else "interrupted"
        print(f"longshort: {msg}", file=sys.stderr)
        return 130
    except (UserError, ValueError, KeyError, FileNotFoundError, IsADirectoryError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"longshort: error: {msg}", file=sys.stderr)
        return 2
