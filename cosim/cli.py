"""Command line: ``cosim run SCENARIO.yaml`` and ``cosim validate SCENARIO.yaml``.

Exit status: 0 done, 2 bad input (config, run directory), 1 the simulation failed,
130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cosim.config import ConfigError, load_config

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cosim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    overrides = dict(action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set train.epochs=2 (repeatable)")

    run = sub.add_parser("run", help="run the configured epochs (resumes an interrupted run)")
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    run.add_argument("--set", dest="overrides", **overrides)
    run.add_argument("--out", type=Path, help="run directory (default: runs/<scenario name>)")
    run.add_argument("--restart", action="store_true", help="discard results already in --out")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    validate = sub.add_parser("validate", help="check a scenario without running it")
    validate.add_argument("scenario", type=Path, help="scenario YAML file")
    validate.add_argument("--set", dest="overrides", **overrides)
    validate.add_argument("--print", action="store_true", help="print the resolved config")
    return parser


def _fail(lines: list[str], status: int) -> int:
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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

    from cosim.experiment import RunDirError, run_experiment
    from cosim.traffic.network import NetworkBuildError
    from cosim.traffic.sumo import TrafficError

    out = args.out or Path("runs") / config.name
    try:
        metrics = run_experiment(config, out, restart=args.restart,
                                 progress=False if args.no_progress else None)
    except RunDirError as exc:
        return _fail([str(exc)], EXIT_BAD_INPUT)
    except (NetworkBuildError, TrafficError) as exc:
        return _fail([str(exc)], EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail([f"interrupted; run the same command again to resume from {out}"], EXIT_INTERRUPTED)
    print(f"results: {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
