"""The paper's comparison tables from the protocols' per-run result rows: a CSV of every run, a CSV
and a Markdown page of the summary (with the command that regenerates it), and one ROC plot per
(dataset, protocol, class).

A row is one (dataset, protocol, cls, method, seed) run: its `auc`, its `seconds` and, optionally,
its test `scores` (higher = more anomalous) and 0/1 `labels`; `cls` is None for protocols without
classes (synthetic, ALL-IDB2). The paper reports "mean ± std over three runs", so for a protocol
with classes (MNIST 9v1) the figure is the mean over classes of each class's seed-mean, and its std
is the std over seeds of each seed's class-mean. A method whose classes were not all run with the
same seeds, or that misses a class another method ran, is flagged `incomplete` and footnoted, so
no table silently averages unequal sets.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

Row = dict[str, object]

RUN_KEY = ("dataset", "protocol", "cls", "method", "seed")
RUN_COLUMNS = [*RUN_KEY, "auc", "seconds"]
SUMMARY_COLUMNS = ["dataset", "protocol", "method", "auc_mean", "auc_std", "auc_min", "sens_at_95_spec",
                   "sens_at_99_spec", "n_seeds", "n_classes", "seconds", "incomplete"]
SENSITIVITIES = ("sens_at_95_spec", "sens_at_99_spec")  # run columns (training/run.py) averaged like the AUC
INCOMPLETE = "†"
FOOTNOTE = (f"{INCOMPLETE} incomplete: not every class was run with the same seeds, or a class or seed other "
            "methods have is missing (seed counts per class in summary.csv).")


def summarise(rows: Sequence[Row]) -> list[Row]:
    """One row per (dataset, protocol, method), each in first-seen order.

    Per class `c`: `auc_mean_c` and `auc_std_c` over seeds, and `n_seeds_c`. Then `auc_mean`, the
    mean over classes of those seed-means, and `auc_std`, the std over seeds of each seed's
    class-mean, taken over the seeds that ran every class. Stds are population stds (ddof=0,
    numpy's default), so a single seed has std 0. A protocol without classes has `n_classes` 0 and
    plain seed mean and std. A NaN AUC (a test set with one class) makes the figures it enters NaN
    rather than being dropped. `seconds` sums the runs' seconds. `auc_min` is the worst single run;
    each of SENSITIVITIES is the mean over runs of the runs that have it (None when none has).
    """
    seen: set[tuple] = set()
    for row in rows:
        key = tuple(row[k] for k in RUN_KEY)
        if key in seen:
            raise ValueError(f"two result rows for {dict(zip(RUN_KEY, key))}")
        seen.add(key)
    order = {method: i for i, method in enumerate(dict.fromkeys(row["method"] for row in rows))}
    summary = []
    for (dataset, protocol), protocol_rows in _groups(rows, ("dataset", "protocol")).items():
        protocol_classes = {row["cls"] for row in protocol_rows}
        protocol_seeds = {row["seed"] for row in protocol_rows}
        methods = sorted(_groups(protocol_rows, ("method",)).items(), key=lambda item: order[item[0][0]])
        for (method,), method_rows in methods:
            summary.append(_summary_row(dataset, protocol, method, method_rows, protocol_classes, protocol_seeds))
    return summary


def write_tables(rows: Sequence[Row], out_dir: Path, title: str, command: str) -> dict[str, Path]:
    """Write results.csv (every run, without its scores/labels or other non-scalar values),
    summary.csv, summary.md and the ROC plots into `out_dir`; return the paths by name: "results",
    "summary", "markdown" and each plot's file stem."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(rows)
    paths = {"results": out_dir / "results.csv", "summary": out_dir / "summary.csv", "markdown": out_dir / "summary.md"}
    _write_csv(paths["results"], [{k: v for k, v in row.items() if _is_scalar(v)} for row in rows], RUN_COLUMNS)
    _write_csv(paths["summary"], summary, SUMMARY_COLUMNS)
    paths["markdown"].write_text(markdown(rows, summary, title, command), encoding="utf-8")
    for (dataset, protocol, cls), runs in _groups([r for r in rows if _has_curve(r)], RUN_KEY[:3]).items():
        name = f"roc_{dataset}_{protocol}" + ("" if cls is None else f"_{cls}")
        path = out_dir / (re.sub(r"[^\w.-]+", "-", name) + ".png")
        plot_roc(runs, path, f"ROC, {dataset} {protocol}" + ("" if cls is None else f", class {cls}"))
        paths[path.stem] = path
    return paths


def markdown(rows: Sequence[Row], summary: Sequence[Row], title: str, command: str) -> str:
    """The summary page: per (dataset, protocol) the paper's table of AUC (%) mean ± std per method,
    for protocols with classes also a table per class, and the wall time and seeds per method.
    The best value of each column is bold, a NaN is "n/a", a class a method never ran is "—"."""
    lines = [f"# {title}", "", "Regenerate with:", "", "```", command, "```", "",
             f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. AUC in %: mean ± population std "
             "(ddof 0) over seeds; the worst single run; sensitivity (%) at the strictest threshold that keeps "
             "95 % and 99 % of the test normals unflagged, mean over runs (— where a run did not record it).", ""]
    for (dataset, protocol), entries in _groups(summary, ("dataset", "protocol")).items():
        methods = [_escape(str(entry["method"])) for entry in entries]
        marks = [bool(entry["incomplete"]) for entry in entries]
        lines += [f"## {dataset}, protocol {protocol}", ""]
        lines += _table(["Method", "AUC (%)", "worst run", "sens. at 95 % spec.", "sens. at 99 % spec."], methods,
                        [_column([e["auc_mean"] for e in entries], marks, [e["auc_std"] for e in entries]),
                         _column([e["auc_min"] for e in entries], marks, footnoted=False),
                         *(_column([e[name] for e in entries], marks, footnoted=False) for name in SENSITIVITIES)])
        classes = sorted({row["cls"] for row in rows if (row["dataset"], row["protocol"]) == (dataset, protocol)
                          and row["cls"] is not None})
        if classes:
            columns = [_column([e.get(f"auc_mean_{c}") for e in entries],
                               [e.get(f"n_seeds_{c}", e["n_seeds"]) < e["n_seeds"] for e in entries])
                       for c in classes]
            columns.append(_column([e["auc_mean"] for e in entries], marks))
            lines += ["Per class, mean over seeds:", ""]
            lines += _table(["Method", *map(str, classes), "mean"], methods, columns)
        lines.append("Wall time: " + "; ".join(
            f"{method} {entry['seconds'] / 60:.1f} min, {entry['n_seeds']} seed{'s' * (entry['n_seeds'] != 1)}"
            for method, entry in zip(methods, entries)) + ".")
        lines += ["", FOOTNOTE, ""] if any(marks) else [""]
    return "\n".join(lines)


def plot_roc(runs: Sequence[Row], path: Path, title: str) -> None:
    """One ROC curve per method from its seed-0 run (else its lowest seed), over the chance line.

    A bare Agg `Figure`, never registered with pyplot, so nothing stays in memory after saving.
    """
    figure = Figure(figsize=(5, 5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    for i, ((method,), method_runs) in enumerate(_groups(runs, ("method",)).items()):
        run = min(method_runs, key=lambda r: (r["seed"] != 0, r["seed"]))
        fpr, tpr, _ = roc_curve(np.asarray(run["labels"]), np.asarray(run["scores"], dtype=np.float64))
        seed = "" if run["seed"] == 0 else f", seed {run['seed']}"
        axes.plot(fpr, tpr, linestyle=("-", "--", "-.")[i // 10 % 3],
                  label=f"{method} (AUC {_percent(float(run['auc']))} %{seed})")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="False positive rate", ylabel="True positive rate", title=title)
    axes.set_aspect("equal")
    axes.legend(loc="lower right", fontsize="small")
    figure.savefig(path, dpi=100)


def _summary_row(dataset: object, protocol: object, method: object, rows: Sequence[Row],
                 protocol_classes: set, protocol_seeds: set) -> Row:
    aucs = {(row["cls"], row["seed"]): float(row["auc"]) for row in rows}
    classes = sorted({cls for cls, _ in aucs}, key=lambda c: (c is None, c))
    seeds = {c: sorted(seed for cls, seed in aucs if cls == c) for c in classes}
    common = sorted(set.intersection(*(set(s) for s in seeds.values())))
    class_means = [np.mean([aucs[c, s] for s in seeds[c]]) for c in classes]
    seed_means = [np.mean([aucs[c, s] for c in classes]) for s in common]
    summary: Row = {
        "dataset": dataset, "protocol": protocol, "method": method,
        "auc_mean": float(np.mean(class_means)), "auc_std": float(np.std(seed_means)) if seed_means else math.nan,
        "n_seeds": len({seed for _, seed in aucs}), "n_classes": 0 if classes == [None] else len(classes),
        "auc_min": min(aucs.values()),
        **{name: float(np.mean(values)) if (values := [float(row[name]) for row in rows if row.get(name) is not None])
           else None for name in SENSITIVITIES},
        "seconds": float(sum(float(row["seconds"]) for row in rows)),
        "incomplete": (len({tuple(s) for s in seeds.values()}) > 1 or set(classes) != protocol_classes
                       or {seed for _, seed in aucs} != protocol_seeds),
    }
    for c, mean in zip(classes, class_means):
        if c is not None:
            summary[f"auc_mean_{c}"] = float(mean)
            summary[f"auc_std_{c}"] = float(np.std([aucs[c, s] for s in seeds[c]]))
            summary[f"n_seeds_{c}"] = len(seeds[c])
    return summary


def _groups(rows: Iterable[Row], keys: Sequence[str]) -> dict[tuple, list[Row]]:
    """Rows by the values of `keys`, groups in first-seen order."""
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def _column(means: Sequence[float | None], marks: Sequence[bool], stds: Sequence[float] | None = None,
            footnoted: bool = True) -> list[str]:
    """Table cells in percent, one decimal (with ± std when given); the best as shown bold (among the
    complete entries when there are any), ties all bold; NaN "n/a", None (never run) "—"; an
    incomplete entry footnoted when `footnoted` (once per row: in its first column)."""
    shown = [None if m is None or math.isnan(m) else round(100 * m, 1) for m in means]
    complete = [value for value, mark in zip(shown, marks) if value is not None and not mark]
    best = max(complete or [value for value in shown if value is not None], default=None)
    cells = []
    for i, (mean, value) in enumerate(zip(means, shown)):
        text = "—" if mean is None else _percent(mean)
        if stds is not None and value is not None:
            text += f" ± {_percent(stds[i])}"
        if value is not None and value == best:
            text = f"**{text}**"
        cells.append(text + (f" {INCOMPLETE}" if marks[i] and footnoted else ""))
    return cells


def _table(header: Sequence[str], methods: Sequence[str], columns: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "--:|" * (len(header) - 1)]
    lines += ["| " + " | ".join([method, *cells]) + " |" for method, *cells in zip(methods, *columns)]
    return [*lines, ""]


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, np.generic))


def _has_curve(row: Row) -> bool:
    """Whether the run's scores and labels make an ROC curve: both classes present, no NaN score."""
    if row.get("scores") is None or row.get("labels") is None:
        return False
    scores = np.asarray(row["scores"], dtype=np.float64)
    return len(np.unique(np.asarray(row["labels"]))) == 2 and bool(np.isfinite(scores).all())


def _write_csv(path: Path, rows: Sequence[Row], leading: Sequence[str]) -> None:
    """`leading` columns first, then every other key in first-seen order; a missing value is empty."""
    columns = list(dict.fromkeys([*leading, *(key for row in rows for key in row)]))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
