"""The ``hrsam`` command: segment images and volumes from a shell, without napari.

    hrsam demo [--out DIR]                              clicks on a bundled sample, IoU vs truth
    hrsam segment IMAGE --point X,Y[,1|0] ... --out MASK
    hrsam embed IMAGE_OR_DIR --out STORE.zarr           precompute slice embeddings
    hrsam eval --model hrsam_tiny --dataset nuclei      the click protocol's table
    hrsam export DIR --format coco|tiff --out OUT       saved objects for training
    hrsam series status DIR                             which images of a series are done

Every command drives ``napari_hrsam.engine.session.Session`` (the widget's engine). Errors are
one line on stderr (``hrsam: error: ...``) and a non-zero exit; ``--debug`` shows the
traceback instead.
"""
from __future__ import annotations

import argparse
import re
import sys
from typing import Sequence

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
NUMBER_OPTIONS = ("--point", "--box", "--slice", "--contrast-limits")  # values may start with "-"
# What a user can fix: reported as one line. Anything else is a bug: one line plus a hint.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
               IsADirectoryError, PermissionError, ImportError)


class UsageError(Exception):
    """A command line argparse could not understand."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage + exiting, so main() reports one line."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    from .demo import add_demo
    from .embed import add_embed
    from .eval import add_eval
    from .export import add_export
    from .model import model_options
    from .segment import add_segment
    from .series import add_series

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="show the full traceback when something fails")
    model = model_options()

    parser = _Parser(prog="hrsam", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for add in (add_demo, add_segment, add_embed, add_eval, add_export, add_series):
        add(commands, parents=[common, model])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(_attach_negative_values(argv))
        return int(args.run(args) or 0)
    except SystemExit as done:  # --help, --version
        return int(done.code or 0) if isinstance(done.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        if debug:
            raise
        print("hrsam: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as err:
        if debug:
            raise
        _error(str(err))
        return EXIT_USAGE
    except USER_ERRORS as err:
        if debug:
            raise
        _error(_one_line(err))
        return EXIT_ERROR
    except Exception as err:  # a bug or an unforeseen library failure
        if debug:
            raise
        _error(f"{type(err).__name__}: {_one_line(err)} (run again with --debug for the "
               "traceback)")
        return EXIT_ERROR


def _attach_negative_values(argv: list[str]) -> list[str]:
    """``--point -5,10`` as ``--point=-5,10``: argparse takes a value starting with "-" for an
    option and would report "expected one argument" instead of the point being outside."""
    out = []
    for arg in argv:
        if out and out[-1] in NUMBER_OPTIONS and re.match(r"-[\d.]", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _error(message: str) -> None:
    print(f"hrsam: error: {message}", file=sys.stderr)


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = " ".join(lines) if lines else type(err).__name__
    # FileNotFoundError(errno, msg, name) prints "[Errno 2] msg: 'name'": keep it readable
    return text

