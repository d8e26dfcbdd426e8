"""The ``sigmarrow`` command line.

Each subcommand is a module of this package, named in :data:`SUBCOMMANDS`, with ``HELP``
(its line in ``sigmarrow --help``), ``add_arguments(parser)`` and ``run(args) -> int`` (the
exit status). Only the module of the subcommand being run is asked for its arguments, and
they import what they need when they run, so ``sigmarrow --help`` and ``sigmarrow scan
--help`` need neither the engine nor pySigma.

Exit statuses (all subcommands): 0 done; 1 ``scan --fail-on-match`` found hits; 2 bad usage
or bad input (one message on stderr, no traceback); 3 an internal error, which is a bug
(``SIGMARROW_DEBUG=1`` shows its traceback); 130 interrupted (Ctrl-C); 143 and 129 for
SIGTERM and SIGHUP, which are handled as Ctrl-C is (no partial output, no temporaries left).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from types import FrameType, ModuleType

from sigmarrow.errors import SigmarrowError, UsageError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_MATCHED",
    "EXIT_OK",
    "SUBCOMMANDS",
    "UsageError",
    "delegate",
    "main",
]

EXIT_OK = 0
EXIT_MATCHED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130

#: The subcommands of ``sigmarrow``: name -> module, in the order ``--help`` lists them.
SUBCOMMANDS: dict[str, str] = {
    "scan": "sigmarrow.cli.scan",
    "compile": "sigmarrow.cli.compile",
    "bench": "sigmarrow.cli.bench",
    "profile": "sigmarrow.cli.profile",
    "explain": "sigmarrow.cli.explain",
}


def delegate(
    module_name: str,
) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    """``add_arguments`` and ``run`` of a subcommand that lives in ``module_name`` (which has
    both), imported only when they are called; its docstring's first paragraph describes it."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        module = importlib.import_module(module_name)
        parser.description = (module.__doc__ or "").split("\n\n")[0]
        module.add_arguments(parser)

    def run(args: argparse.Namespace) -> int:
        return int(importlib.import_module(module_name).run(args))

    return add_arguments, run


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sigmarrow",
        description="Sigma detection rules over Apache Arrow data.",
    )
    from importlib.metadata import PackageNotFoundError, version

    try:
        parser.add_argument(
            "--version", action="version", version=f"sigmarrow {version('sigmarrow')}"
        )
    except PackageNotFoundError:  # not installed as a distribution (a source tree)
        pass
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # The first word that is not an option names the subcommand: only it gets arguments.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, module_name in SUBCOMMANDS.items():
        module: ModuleType = importlib.import_module(module_name)
        sub = commands.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name == chosen:
            module.add_arguments(sub)
            sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (never raises SystemExit)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser(argv).parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse printed
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    return run_guarded(f"sigmarrow {args.command}", lambda: int(args._run(args)))


def run_guarded(prog: str, run: Callable[[], int]) -> int:
    """Run one command, turning what it raises into a message and an exit status."""
    received: list[int] = []
    try:
        with _signals_interrupt(received):
            return run()
    except KeyboardInterrupt as exc:
        return _interrupted(prog, getattr(exc, "signum", signal.SIGINT))
    except BrokenPipeError:
        # The reader of our stdout went away (`... --output - | head`): stop quietly.
        _silence_stdout()
        return EXIT_INTERRUPTED + 11  # 141, as a shell reports SIGPIPE
    except Exception as exc:  # noqa: BLE001 - the one place that turns any error into a message
        if received:
            # Library code caught our Terminated and raised its own error instead (numpy turns
            # an exception raised mid-comparison into a TypeError): it is still the signal.
            return _interrupted(prog, received[0])
        if isinstance(exc, SigmarrowError):
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if os.environ.get("SIGMARROW_DEBUG"):
            traceback.print_exc()
        else:
            print(
                f"{prog}: internal error: {type(exc).__name__}: {exc}\n"
                "(this is a bug; run with SIGMARROW_DEBUG=1 for the traceback)",
                file=sys.stderr,
            )
        return EXIT_INTERNAL


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C raises KeyboardInterrupt, so that what cleans up
    after Ctrl-C (a discarded output, removed temporaries) cleans up after them too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupted(prog: str, signum: int) -> int:
    with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
        print(f"\n{prog}: interrupted", file=sys.stderr)
    return 128 + signum


@contextlib.contextmanager
def _signals_interrupt(received: list[int]) -> Iterator[None]:
    """SIGTERM and SIGHUP raise Terminated; `received` records them, for when a library turns
    that exception into another one."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals
        return

    def terminate(signum: int, _frame: FrameType | None) -> None:
        signal.signal(signum, signal.SIG_IGN)  # a second one must not interrupt the clean-up
        received.append(signum)
        raise Terminated(signum)

    signals = (signal.SIGTERM, signal.SIGHUP)
    previous = [signal.signal(s, terminate) for s in signals]
    try:
        yield
    finally:
        for s, handler in zip(signals, previous, strict=True):
            signal.signal(s, handler)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
