"""`ganad operating-point show|set|reflag`: the false-positive rate the lab states, every change audited."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from typing import TYPE_CHECKING

from ganad_clinic.cli.common import acting_user, add_optional_user_options, add_store_options, parse_moment, rate
from ganad_clinic.errors import GanadError

if TYPE_CHECKING:
    from ganad_clinic.store import Store

CELL_COUNTS = (1, 2, 4, 6, 10)  # slide sizes `show` says the kept rate for


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "operating-point", help="show or set the slide false-positive rate the lab states",
        description="The operating point is the share of normal slides the tool may flag. Each model keeps its "
                    "calibration normals' scores, so the rate can change without retraining: a change applies to "
                    "slides scored from then on (stored flags stay as they were) and is audited; `reflag` judges "
                    "earlier slides again at the new rate, appending new score rows.")
    actions = parser.add_subparsers(dest="operating_point_action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="the rate in force and what the active model's calibration keeps")
    setting = actions.add_parser("set", help="state the lab's rate from now on (audited)")
    setting.add_argument("rate", type=rate, metavar="RATE", help="e.g. 0.05 for 5 %% of normal slides")
    setting.add_argument("--reason", required=True, help="why, for the audit trail")
    add_optional_user_options(setting)
    reflag = actions.add_parser("reflag", help="judge earlier slides again at the lab's rate (new score rows)")
    reflag.add_argument("--since", type=parse_moment, metavar="DATE",
                        help="only slides first seen since DATE (ISO 8601, e.g. 2026-12-01: from that day's start, "
                             "local time; or 2026-12-01T14:00)")
    add_optional_user_options(reflag)
    for action in (show, setting, reflag):
        add_store_options(action)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganad_clinic.screening.users import Permission
    from ganad_clinic.store import open_store

    try:
        with open_store(args.db_url, args.home) as store:
            if args.operating_point_action == "set":
                actor = acting_user(store, args, Permission.OPERATING_POINT)
                setting = store.set_target_fpr(args.rate, actor=actor, reason=args.reason)
                print(f"the operating point is now a slide false-positive rate of {_percent(setting.target_fpr)}; "
                      "it applies to slides scored from now on (`ganad operating-point reflag` judges earlier "
                      "ones again)")
                return 0
            if args.operating_point_action == "reflag":
                return _reflag(store, args.since, acting_user(store, args, Permission.OPERATING_POINT))
            return _show(store)
    except GanadError as error:
        print(f"ganad operating-point {args.operating_point_action}: {error}", file=sys.stderr)
        return 1


def _percent(rate: float) -> str:
    from ganad_clinic.model.conformal import percent

    return percent(rate)


def _show(store: Store) -> int:
    from ganad_clinic.screening.registry import find_model_version, load_registered

    setting = store.target_fpr_setting()
    if store.active_model_version() is None:
        stated = "none stated" if setting is None else f"{_percent(setting.target_fpr)} of normal slides"
        print(f"operating point: {stated}; no model is active (`ganad models import BUNDLE`)")
        return 0
    model = find_model_version(store, None)
    bundle = load_registered(model)
    point = bundle.operating_point(None if setting is None else setting.target_fpr)
    if setting is None:
        print(f"operating point: {_percent(point.target_fpr)} of normal slides, the active model's training target "
              "(the lab has stated none: `ganad operating-point set RATE --reason TEXT`)")
    else:
        print(f"operating point: {_percent(setting.target_fpr)} of normal slides, stated by {setting.actor} on "
              f"{setting.time:%Y-%m-%d %H:%M} UTC ({setting.reason})")
    calibration = point.calibration
    print(f"active model {model.version}: {calibration.n} calibration normals, one-cell threshold "
          f"{point.threshold():.4g}; the lowest rate they resolve for one cell is {_percent(calibration.lowest_rate)}")
    for cells in CELL_COUNTS:
        shortfall = point.shortfall(cells)
        kept = f"at most {_percent(point.kept_rate(cells))}"
        print(f"  slides of {cells:>2} cells: a cell flags above {point.threshold(cells):.4g}; {kept}"
              + (f" (short of the target: {point.minimum_calibration(cells)} calibration normals needed)"
                 if shortfall else ""))
    return 0


def _reflag(store: Store, since: date | datetime | None, actor: str) -> int:
    from ganad_clinic.report.content import period_bounds
    from ganad_clinic.screening.reflag import reflag_slides

    summary = reflag_slides(store, actor=actor, since=period_bounds(since, None)[0])
    print(f"judged again at {_percent(summary.target_fpr)}: {summary.reflagged} slides got a new score row "
          f"({summary.newly_flagged} now flagged, {summary.no_longer_flagged} no longer flagged); "
          f"{summary.unchanged} were already at this rate; {summary.without_cells} were scored before cells were kept "
          f"and {summary.model_missing} have a model that can no longer be loaded (both left as they were)")
    return 0
