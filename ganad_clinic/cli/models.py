"""`ganad models list|import|compare|activate|rollback`: the model registry, every change audited.

A model becomes active only through its acceptance check (screening.acceptance): `compare`
prints the check, `activate` applies it and refuses, changing nothing, unless overridden with a
reason. `rollback` returns to a model that was active before and is not checked again."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ganad_clinic.cli.common import acting_user, add_field_scale, add_optional_user_options, add_store_options
from ganad_clinic.errors import GanadError

if TYPE_CHECKING:
    from ganad_clinic.store import ModelVersion, Store


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list, import, activate or roll back models",
                                   description="The model registry of the results database. Scores always "
                                               "name the registered version that produced them.")
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="registered models, oldest first (* = active)")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    importing = actions.add_parser(
        "import", help="verify a bundle, copy it into the home folder and register it",
        description="The bundle is verified (sha256), copied to <home>/models/ and registered; the first model "
                    "of an empty registry becomes active. A version already registered with other weights "
                    "is registered as VERSION+<sha256 prefix>.")
    importing.add_argument("bundle", type=Path, metavar="BUNDLE")
    compare = actions.add_parser(
        "compare", help="the acceptance check of a version against the active model (exit 1: refused)",
        description="Both models score the held-out evidence (reviewed slides the version never used, and its "
                    "calibration normals) at the lab's operating point: AUC, sensitivity and specificity with "
                    "95 % bootstrap intervals and the counts they rest on. The check is audited.")
    compare.add_argument("version", metavar="VERSION")
    compare.add_argument("--json", action="store_true", help="the check as one JSON object")
    compare.add_argument("--report", type=Path, metavar="PDF",
                         help="also write the check as a PDF, linked from the version's registry entry")
    activate = actions.add_parser(
        "activate", help="make a registered version the active model, if its acceptance check accepts it",
        description="Runs the acceptance check (see `ganad models compare`); a refused version is not activated "
                    "and nothing changes, unless --override gives a reason, which the audit trail keeps.")
    activate.add_argument("version", metavar="VERSION")
    activate.add_argument("--override", metavar="REASON",
                          help="activate even if the check refuses, for this reason (audited)")
    for action in (compare, activate):
        add_field_scale(action)
    add_optional_user_options(activate)
    rollback = actions.add_parser(
        "rollback", help="re-activate the previously active version (not checked again: it was active before)")
    for action in (listing, importing, compare, activate, rollback):
        add_store_options(action)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganad_clinic.screening.registry import current_actor
    from ganad_clinic.store import open_store

    try:
        with open_store(args.db_url, args.home) as store:
            if args.models_action == "list":
                return _list(store, args.json)
            if args.models_action == "import":
                return _import(store, args)
            if args.models_action == "compare":
                return _compare(store, args)
            if args.models_action == "activate":
                return _activate(store, args)
            model = store.rollback_model_version(actor=current_actor())
            print(f"rolled back: model {model.version} is active")
            return 0
    except GanadError as error:
        print(f"ganad models {args.models_action}: {error}", file=sys.stderr)
        return 1


def _import(store: Store, args: argparse.Namespace) -> int:
    from ganad_clinic.screening.acceptance import check_candidate, describe
    from ganad_clinic.screening.registry import current_actor, import_bundle

    imported = import_bundle(store, args.bundle, args.home, actor=current_actor())
    model = imported.model
    if not imported.created:
        print(f"{args.bundle} is already registered as model {model.version} ({model.bundle_path})")
        return 0
    if not model.active:
        print(f"registered model {model.version} from {args.bundle} in {model.bundle_path} (not active: "
              f"`ganad models compare {model.version}`, then `ganad models activate {model.version}`)")
        return 0
    check = check_candidate(store, model.version, actor=current_actor())
    print(f"registered model {model.version} from {args.bundle} in {model.bundle_path} (active: the first model "
          "of an empty registry is activated without a comparison; its figures on the evidence there is are "
          f"recorded, and would {'' if check.accepted else 'not '}pass an acceptance check:)")
    for line in describe(check):
        print(f"  {line}")
    return 0


def _compare(store: Store, args: argparse.Namespace) -> int:
    from ganad_clinic.report.acceptance_pdf import write_acceptance_report
    from ganad_clinic.screening.acceptance import check_candidate, describe
    from ganad_clinic.screening.registry import current_actor

    actor = current_actor()
    check = check_candidate(store, args.version, field_scale=args.field_scale, actor=actor)
    report = None if args.report is None else write_acceptance_report(check, args.report).absolute()
    if report is not None:
        store.link_acceptance_report(check.candidate.version, report, actor=actor,
                                     details={"accepted": check.accepted, "refusals": list(check.refusals)})
    if args.json:
        print(json.dumps({**check.to_dict(), "report": None if report is None else str(report)}, indent=2))
    else:
        print("\n".join(describe(check)))
        if report is not None:
            print(f"acceptance report: {report}")
    return 0 if check.accepted else 1


def _activate(store: Store, args: argparse.Namespace) -> int:
    from ganad_clinic.screening.acceptance import AcceptanceRefused, activate_checked, describe
    from ganad_clinic.screening.registry import current_actor, find_model_version

    if find_model_version(store, args.version).active:
        print(f"model {args.version} is already active")
        return 0
    from ganad_clinic.screening.users import Permission

    actor = (acting_user(store, args, Permission.OVERRIDE) if args.override is not None
             else current_actor() if not store.list_users() else acting_user(store, args, Permission.REVIEW))
    try:
        activation = activate_checked(store, args.version, actor=actor, override=args.override,
                                      field_scale=args.field_scale)
    except AcceptanceRefused as refused:
        print("\n".join(describe(refused.check)), file=sys.stderr)
        print(f"ganad models activate: model {args.version} was not activated; nothing changed. To activate it "
              "anyway, give the reason: --override REASON", file=sys.stderr)
        return 1
    accepted = activation.check is None or activation.check.accepted
    verdict = ("its acceptance check accepted it" if accepted
               else "its acceptance check refused it; the override and its reason are in the audit trail")
    print(f"model {activation.model.version} is active ({verdict})")
    return 0


def _list(store: Store, as_json: bool) -> int:
    models = store.list_model_versions()
    if as_json:
        print(json.dumps([_as_dict(model) for model in models], indent=2))
        return 0
    if not models:
        print("no models registered: `ganad models import BUNDLE`")
        return 0
    print(f"  {'VERSION':<24} {'SHA256':<12} {'AUC':>6}  {'CREATED':<20} BUNDLE")
    for model in models:
        auc = model.metrics.get("auc")
        auc_text = f"{auc:.3f}" if isinstance(auc, (int, float)) else "-"
        marker = "*" if model.active else " "
        print(f"{marker} {model.version:<24} {model.sha256[:12]:<12} {auc_text:>6}  "
              f"{model.created_at:%Y-%m-%d %H:%M:%S}  {model.bundle_path}")
        if model.acceptance_report:
            print(f"  {'':<24} acceptance report: {model.acceptance_report}")
    return 0


def _as_dict(model: ModelVersion) -> dict:
    return {"version": model.version, "active": model.active, "sha256": model.sha256,
            "bundle_path": model.bundle_path, "metrics": model.metrics,
            "created_at": model.created_at.isoformat(),
            "activated_at": model.activated_at.isoformat() if model.activated_at else None,
            "acceptance_report": model.acceptance_report}
