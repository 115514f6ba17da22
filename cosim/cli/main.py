"""Command line: ``cosim run SCENARIO.yaml``, ``cosim validate SCENARIO.yaml``, ``cosim eval RUN_DIR``, ``cosim sweep SWEEP.yaml``, ``cosim report DIR``.

Exit status: 0 done, 2 bad input (config, run directory, plug-in), 1 the simulation failed,
130/143 interrupted by SIGINT/SIGTERM (rerun the same command to resume). No traceback is
printed unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from cosim.run.signals import StopSignals

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cosim", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Co-simulation of SUMO road traffic and V2V radio links in which connected automated\n"
                    "vehicles learn speed control with multi-agent SAC and share policy segments (RSM-MASAC).",
        epilog="examples:\n"
               "  cosim run scenarios/figure8.yaml                 train (rerun to resume)\n"
               "  cosim run scenarios/figure8.yaml --set comm.method=isac --out runs/isac\n"
               "  cosim eval runs/figure8 --epochs 5               deterministic evaluation of a saved run\n"
               "  cosim sweep scenarios/sweeps/prr.yaml --workers 2\n"
               "  cosim report runs/prr                            plots and Table V\n"
               "\n"
               "exit status: 0 done, 1 the simulation failed, 2 bad input (config, run directory,\n"
               "plug-in), 130/143 interrupted by SIGINT/SIGTERM (run the same command again to resume).\n"
               "'cosim COMMAND --help' describes a command.")
    parser.add_argument("--version", action="version", version=f"cosim {_version()}")
    parser.add_argument("--debug", action="store_true", help="print Python tracebacks (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True)
    overrides = dict(action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set train.epochs=2 (repeatable)")
    threads = dict(type=int, default=None, metavar="N",
                   help="torch CPU threads (default: every core this process may use; a sweep gives "
                        "each member its share, cores / --workers)")

    run = sub.add_parser("run", help="run the configured epochs (resumes an interrupted run)")
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    run.add_argument("--set", dest="overrides", **overrides)
    run.add_argument("--out", help="run directory (default: runs/<scenario name>)")
    run.add_argument("--restart", action="store_true", help="discard results already in --out")
    run.add_argument("--force", action="store_true",
                     help="resume a damaged run directory by rebuilding its CSV files from the checkpoint")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--threads", **threads)
    run.add_argument("--init-from", type=Path, metavar="RUN_DIR",
                     help="start the SAC agents from the policies saved in another run (fine-tuning)")

    evaluate = sub.add_parser("eval", help="evaluate a saved run with deterministic policies (eval.csv)")
    evaluate.add_argument("run_dir", type=Path, help="a run directory written by cosim run")
    evaluate.add_argument("--checkpoint", type=Path, help="checkpoint file (default: RUN_DIR/checkpoint.pt)")
    evaluate.add_argument("--epochs", type=int, default=5, help="evaluation epochs (default 5)")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.add_argument("--threads", **threads)

    validate = sub.add_parser("validate", help="check a scenario without running it")
    validate.add_argument("scenario", type=Path, help="scenario YAML file")
    validate.add_argument("--set", dest="overrides", **overrides)
    validate.add_argument("--print", action="store_true", help="print the resolved config")

    from cosim.cli import report, sweep  # sweeps and reports: their own modules (no torch at import)

    sweep.add_arguments(sub.add_parser("sweep", help="run the members of a sweep file (resumes a killed sweep)"))
    report.add_arguments(sub.add_parser("report", help="plots and tables from run or sweep directories"))
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cosim")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown (not installed)"


def _fail(lines: list[str], status: int) -> int:
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status. SIGINT/SIGTERM are recorded for the whole
    command and acted on at safe points (:mod:`cosim.run.signals`): never a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    where: dict[str, Path] = {}
    with StopSignals.install() as stop:
        try:
            status = _main(argv, where, stop)
            stop.check()  # a signal during a command that has no safe point of its own (validate, report)
            return status
        except KeyboardInterrupt as exc:  # Interrupted, raised at a safe point
            status = getattr(exc, "exit_status", EXIT_INTERRUPTED)
            out = where.get("out")
            hint = f"; run the same command again to resume from {out}" if out else ""
            return _fail([f"interrupted{hint}"], status)
        except Exception as exc:  # noqa: BLE001 - never a traceback unless --debug
            if debug:
                raise
            return _fail([f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the "
                          "traceback)"], EXIT_FAILED)


def console() -> None:
    """The ``cosim`` console script: :func:`main`, then exit with signals ignored (a Ctrl-C while
    the interpreter shuts down would print "Exception ignored" from some finaliser)."""
    status = main()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(status)


def _main(argv: list[str], where: dict[str, Path], stop: StopSignals) -> int:
    args = _parser().parse_args(argv)
    stop.check()
    if args.command not in ("sweep", "report"):
        return _run_or_evaluate(args, where)
    from cosim.cli import report, sweep

    return (sweep if args.command == "sweep" else report).cli(args)


def _run_or_evaluate(args: argparse.Namespace, where: dict[str, Path]) -> int:
    from cosim.config import ConfigError, load_config

    if args.command == "eval":
        return _evaluate(args)
    try:
        config = load_config(args.scenario, args.overrides)
    except ConfigError as exc:
        return _fail(exc.lines, EXIT_BAD_INPUT)

    if args.command == "validate":
        if args.print:
            import yaml

            print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
        else:
            print(f"{args.scenario}: ok")
        return 0

    import radio_models
    from cosim.run.experiment import ControllerError, RunDirError, RunError, run_experiment
    from cosim.traffic.network import NetworkBuildError
    from cosim.traffic.sumo import TrafficError

    if not _set_threads(args.threads):
        return _fail([f"--threads: must be >= 1 (got {args.threads})"], EXIT_BAD_INPUT)
    if args.out is not None and not args.out.strip():
        return _fail(["--out: empty path; give a run directory, e.g. --out runs/x"], EXIT_BAD_INPUT)
    out = Path(args.out) if args.out is not None else Path("runs") / config.name
    where["out"] = out
    try:
        metrics = run_experiment(config, out, restart=args.restart, force=args.force,
                                 progress=False if args.no_progress else None, init_from=args.init_from)
    except (RunDirError, RunError, ConfigError) as exc:
        return _fail(getattr(exc, "lines", None) or [str(exc)], EXIT_BAD_INPUT)
    except ControllerError as exc:
        return _fail([f"{args.scenario}: {exc}"], EXIT_BAD_INPUT)
    except radio_models.RadioModelError as exc:
        return _fail([f"{args.scenario}: channel.radio: {exc}"], EXIT_BAD_INPUT)
    except (NetworkBuildError, TrafficError) as exc:
        return _fail([str(exc)], EXIT_FAILED)
    from cosim.cli.report import summary_line

    print(summary_line(metrics.parent))
    print(f"results: {metrics}; plots and tables: cosim report {metrics.parent}")
    return 0


def _set_threads(requested: int | None) -> bool:
    """torch's intra-op threads for this process (``cosim.run.threads``: every core it may use
    unless ``--threads`` says otherwise); False for a count below 1."""
    from cosim.run.threads import choose_threads

    try:
        n = choose_threads(requested)
    except ValueError:
        return False
    import torch

    torch.set_num_threads(n)
    return True


def _evaluate(args) -> int:
    import radio_models
    from cosim.run.experiment import RunDirError, RunError, evaluate_run
    from cosim.traffic.network import NetworkBuildError
    from cosim.traffic.sumo import TrafficError

    if args.epochs < 1:
        return _fail([f"--epochs: must be >= 1 (got {args.epochs})"], EXIT_BAD_INPUT)
    if not _set_threads(args.threads):
        return _fail([f"--threads: must be >= 1 (got {args.threads})"], EXIT_BAD_INPUT)
    if not (args.run_dir / "config.yaml").is_file():
        return _fail([f"{args.run_dir}: not a run directory (no config.yaml)"], EXIT_BAD_INPUT)
    try:
        out = evaluate_run(args.run_dir, args.epochs, args.checkpoint, progress=False if args.no_progress else None)
    except (RunDirError, RunError) as exc:
        return _fail([str(exc)], EXIT_BAD_INPUT)
    except radio_models.RadioModelError as exc:
        return _fail([f"{args.run_dir}: channel.radio: {exc}"], EXIT_BAD_INPUT)
    except (NetworkBuildError, TrafficError) as exc:
        return _fail([str(exc)], EXIT_FAILED)
    import csv

    with open(out) as fh:
        rewards = [float(r["avg_reward"]) for r in csv.DictReader(fh)]
    print(f"evaluation: {len(rewards)} epochs, average reward {sum(rewards) / len(rewards):.4f}; rows: {out}")
    return 0


if __name__ == "__main__":
    console()
