"""`ganad models list|import|activate|rollback`: the model registry, every change audited."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
    activate = actions.add_parser("activate", help="make a registered version the active model")
    activate.add_argument("version", metavar="VERSION")
    rollback = actions.add_parser("rollback", help="re-activate the previously active version")
    for action in (listing, importing, activate, rollback):
        action.add_argument("--db", dest="db_url", metavar="URL", help="SQLAlchemy URL (default: $GANAD_DB)")
        action.add_argument("--home", metavar="DIR", help="GANAD Clinic home folder (default: $GANAD_HOME)")
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
            if args.models_action == "activate":
                model = store.activate_model_version(args.version, actor=current_actor())
                print(f"model {model.version} is active")
                return 0
            model = store.rollback_model_version(actor=current_actor())
            print(f"rolled back: model {model.version} is active")
            return 0
    except GanadError as error:
        print(f"ganad models {args.models_action}: {error}", file=sys.stderr)
        return 1


def _import(store: Store, args: argparse.Namespace) -> int:
    from ganad_clinic.screening.registry import current_actor, import_bundle

    imported = import_bundle(store, args.bundle, args.home, actor=current_actor())
    model = imported.model
    if not imported.created:
        print(f"{args.bundle} is already registered as model {model.version} ({model.bundle_path})")
        return 0
    state = "active" if model.active else "not active: `ganad models activate " + model.version + "`"
    print(f"registered model {model.version} from {args.bundle} in {model.bundle_path} ({state})")
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
    return 0


def _as_dict(model: ModelVersion) -> dict:
    return {"version": model.version, "active": model.active, "sha256": model.sha256,
            "bundle_path": model.bundle_path, "metrics": model.metrics,
            "created_at": model.created_at.isoformat(),
            "activated_at": model.activated_at.isoformat() if model.activated_at else None}
