"""argparse's own errors (unknown option values, bad numbers) are one line through every command,
exit code 2, naming the problem and pointing at --help."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "argv",
    [
        ["forecast", "train", "--data", "x.csv", "--time", "t", "--target", "y", "--horizon", "3",
         "--out", "o", "--baseline", "seasnal"],
        ["forecast", "backtest", "--data", "x.csv", "--time", "t", "--target", "y", "--horizon",
         "3", "--folds", "2", "--out", "o", "--ensemble", "abc"],
        ["lab", "run", "--task", "copy", "--model", "lsmt"],
        ["text", "train", "--data", "x.txt", "--out", "o", "--level", "byte"],
        ["nope"],
    ],
)  # fmt: skip
def test_argparse_errors_are_one_line(argv, tmp_path):
    code = "import sys; from longshort.cli import main; sys.exit(main())"
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                       text=True, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("longshort") and "error:" in lines[0] and "--help" in lines[0]


def test_time_and_target_must_be_different_columns(tmp_path, capsys):
    from longshort.cli import main

    f = tmp_path / "d.csv"
    f.write_text("year,v\n" + "".join(f"{2000 + i},{i % 7}\n" for i in range(60)))
    rc = main(["forecast", "train", "--data", str(f), "--time", "year", "--target", "year",
               "--horizon", "3", "--out", str(tmp_path / "m")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "'year' is given as both the time and the target column" in err[0]
