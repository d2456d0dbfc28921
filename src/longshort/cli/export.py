"""`longshort export onnx --model DIR --out FILE.onnx`: a saved model to ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import out_file


def _export_onnx(args: argparse.Namespace) -> int:
    from . import UserError

    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UserError(
            "ONNX export needs the onnx package: install the extra from the repository with "
            "`.venv/bin/pip install -e '.[onnx]'` (or `make test`, which installs it too)"
        ) from None
    from ..io import load, to_onnx

    model = load(args.model)
    out = Path(args.out)
    if out.suffix != ".onnx":
        raise UserError(f"--out must end in .onnx, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        proto = to_onnx(
            model,
            out,
            opset=args.opset,
            lengths=not args.no_lengths,
            states=not args.no_states,
            dtype=args.dtype,
        )
    except TypeError as e:  # a model kind or setting ONNX export cannot express: say which
        raise UserError(f"{args.model}: {e}") from None
    ins = ", ".join(i.name for i in proto.graph.input)
    outs = ", ".join(o.name for o in proto.graph.output)
    print(
        f"wrote {out} ({type(model).__name__}, opset {args.opset}, {args.dtype}; "
        f"inputs: {ins}; outputs: {outs})"
    )
    return 0


def register(sub) -> None:
    """Add `longshort export onnx` to the subcommand parser."""
    p = sub.add_parser("export", help="export a saved model (ONNX)")
    fmt = p.add_subparsers(dest="format", metavar="<format>", required=True)
    o = fmt.add_parser("onnx", help="write an ONNX file (opset 14+) for ONNX Runtime")
    o.add_argument("--model", required=True, help="model directory written by longshort.io.save")
    o.add_argument("--out", required=True, type=out_file, help="output file, FILE.onnx")
    o.add_argument("--opset", type=int, default=17, help="ONNX opset, 14 or newer (default 17)")
    o.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    o.add_argument("--no-lengths", action="store_true", help="no `lengths` input")
    o.add_argument("--no-states", action="store_true", help="no initial-state inputs")
    o.set_defaults(func=_export_onnx)
