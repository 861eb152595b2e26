"""``musclevision-compare SWEEP_DIR [SWEEP_DIR ...]``: rank the runs of sweeps from their local run folders (offline).

    musclevision-compare logs/train/multiruns/2026-11-25_10-00-00
    musclevision-compare logs/train/multiruns/<time> --metric val/clip_bacc
    musclevision-compare logs/crossval/world8 logs/crossval/best     # cross-validations side by side

Prints a table sorted by the metric (overrides that differ between runs, window / clip /
whole-clip accuracy, epochs, checkpoint), a mean over folds when runs differ by
``data.split.fold`` (cross-validation, also written to ``crossval.json``), writes
``best.json`` (what ``musclevision-export sweep_dir=...`` exports) and ``compare.png``
(metric against each swept hyperparameter). Several sweep folders are compared side by side
(every configuration's fold means and stress suite); nothing is written then.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from musclevision.models.metrics import LEVELS, parse_metric, report_value
from musclevision.models.stress import worst_condition

FOLD_KEY = "data.split.fold"
# Options that change where a run logs or how fast it goes, not what it learns: never what tells runs apart.
NOT_RESULTS = ("logger", "paths.log_dir", "paths.export_dir", "torch_threads", "callbacks.progress_bar",
               "trainer.enable_progress_bar", "data.num_workers", "data.eval_batch_size", "data.eval_batch_frames",
               "data.source.workers", "hparams_search")  # fmt: skip
_ABSENT = object()


@dataclass
class Run:
    folder: Path
    overrides: dict[str, str]
    metrics: dict = field(default_factory=dict)
    checkpoint: Path | None = None
    label: str = ""  # how tables name it (the job folder, or sweep/job when several sweeps are compared)
    choices: dict = field(default_factory=dict)  # config group -> chosen config (.hydra/hydra.yaml)
    config: dict = field(default_factory=dict)  # the run's composed config (.hydra/config.yaml)

    def value(self, metric: str) -> float | None:
        """``val/window_bacc`` -> metrics["window"]["bacc"] (None when the run has no report)."""
        return report_value(self.metrics, metric)

    @cached_property
    def resolvable(self) -> DictConfig:
        """``config`` as OmegaConf reads it (interpolations resolved on access), built once per run."""
        return OmegaConf.create(self.config)

    def setting(self, key: str) -> str | None:
        """What ``key`` was in this run, as an override would write it: its override, else its config group's choice,
        else its value in the run's config, interpolations resolved where they can be (so ``seed=42`` typed in one
        sweep and left at its default 42 in another, or ``${seed}``, read the same); None when the run has no such
        option."""
        if key in self.overrides:
            return self.overrides[key]
        if key in self.choices:
            return "null" if self.choices[key] is None else str(self.choices[key])
        try:
            value = OmegaConf.select(self.resolvable, key, default=_ABSENT)
        except Exception:  # an interpolation only the run could resolve (${hydra:...}, its environment): as written
            value = _raw(self.config, key)
        if value is _ABSENT:
            return None
        return _as_override(OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value)


def _raw(config: dict, key: str):
    node = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _as_override(value) -> str:
    """A config value as it is typed on the command line: null, true, 3, 0.001, [0.7,1.4], {a:1}."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_as_override(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_as_override(v)}" for k, v in value.items()) + "}"
    return str(value)


def is_run(folder: Path) -> bool:
    """A single run's folder (musclevision-train without -m), not a multirun's."""
    return (folder / ".hydra" / "overrides.yaml").is_file()


def read_runs(sweep_dir: Path) -> list[Run]:
    """The jobs of a multirun folder (<sweep>/<n>/.hydra/), or the one run of a run folder."""
    runs = []
    files = [sweep_dir / ".hydra" / "overrides.yaml"] if is_run(sweep_dir) else sweep_dir.glob("*/.hydra/overrides.yaml")
    for overrides_file in sorted(files, key=lambda p: _job_number(p.parent.parent)):
        folder = overrides_file.parent.parent
        pairs = [o.lstrip("+~").split("=", 1) for o in yaml.safe_load(overrides_file.read_text()) or []]
        overrides = {k: v for k, v in (p for p in pairs if len(p) == 2) if not k.startswith("hydra")}
        report = folder / "val_metrics.json"
        metrics = json.loads(report.read_text()) if report.is_file() else {}
        # An ensemble's report (musclevision-eval ckpt_paths=[...]) lists its members: no one checkpoint to export.
        checkpoint = Path(metrics["checkpoint"]) if isinstance(metrics.get("checkpoint"), str) else None
        if checkpoint is not None and not checkpoint.is_file():
            # The sweep was moved (e.g. copied from the cluster): the same file name in this run folder.
            moved = folder / "checkpoints" / checkpoint.name
            checkpoint = moved if moved.is_file() else None
        hydra = _yaml(folder / ".hydra" / "hydra.yaml").get("hydra") or {}
        choices = (hydra.get("runtime") or {}).get("choices") or {}
        runs.append(Run(folder, overrides, metrics, checkpoint, choices=choices, config=_yaml(folder / ".hydra" / "config.yaml")))
    return runs


def _yaml(path: Path) -> dict:
    """A run's saved config as plain data; {} when it is missing or unreadable (the overrides still tell runs apart)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _job_number(folder: Path) -> int:
    return int(folder.name) if folder.name.isdigit() else 1 << 30


def swept_keys(runs: list[Run]) -> list[str]:
    """Options overridden in some run whose value differs between runs (as each run had it, typed or not), leaving
    out those that do not change what a run learns (NOT_RESULTS)."""
    keys = sorted({k for r in runs for k in r.overrides if not k.startswith(NOT_RESULTS)})
    return [k for k in keys if len({_same(r.setting(k)) for r in runs}) > 1]


def _same(value: str | None):
    """A setting as compared between runs: 2, 2.0 and 2e0 alike, and "nan" equal to itself."""
    number = _as_float(value) if value is not None else None
    return value if number is None else "nan" if math.isnan(number) else number


def short_value(value) -> str:
    """An override's value as a table shows it: an Optuna trial's 0.000587194737 as 0.0005872."""
    if value is None:
        return "null"  # not set in that run (a config group left out, an option it does not have)
    text = str(value)
    number = _as_float(text)
    return f"{number:.4g}" if number is not None and len(text) > 8 and "e" not in text.lower() else text


def planned_folds(members: list[Run]) -> int | None:
    """How many folds the members' split has (``group_kfold fold 0/6``), when their reports say."""
    found = {m.group(1) for r in members if (m := re.search(r"fold \d+/(\d+)", str(r.metrics.get("split", ""))))}
    return int(found.pop()) if len(found) == 1 else None


def fold_groups(runs: list[Run], keys: list[str], metric: str) -> list[tuple[str, list[Run]]]:
    """Runs that differ only in the fold, grouped (cross-validation), best mean first."""
    groups: dict[tuple, tuple[str, list[Run]]] = {}  # compared as _same does, named as the first run wrote it
    keep = [k for k in keys if k != FOLD_KEY]
    for run in runs:
        if run.value(metric) is not None:
            label = " ".join(f"{k}={short_value(run.setting(k))}" for k in keep) or "(all runs)"
            groups.setdefault(tuple(_same(run.setting(k)) for k in keep), (label, []))[1].append(run)
    return sorted(groups.values(), key=lambda item: -statistics.mean(r.value(metric) for r in item[1]))


def crossval_summary(label: str, members: list[Run]) -> dict:
    """Mean and spread over folds of one configuration: what a model card reports as expected accuracy."""
    summary = {"kind": "cross-validation over held-out group folds", "configuration": label, "folds": len(members)}
    for level in LEVELS:
        for name in ("acc", "bacc"):
            values = [r.metrics[level][name] for r in members if level in r.metrics]
            if values:
                summary.setdefault(level, {})[name] = statistics.mean(values)
                summary[level][f"{name}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
    summary["per_fold"] = [
        {"fold": r.setting(FOLD_KEY), "run": str(r.folder)}
        | {f"{level}_acc": r.metrics[level]["acc"] for level in LEVELS if level in r.metrics}
        | ({"worst_group": r.metrics["worst_group"]} if "worst_group" in r.metrics else {})
        for r in members
    ]
    # Every group is held out in exactly one fold: together, one score per group for unseen people.
    groups = {g: row for r in members for g, row in (r.metrics.get("groups") or {}).items()}
    if groups:
        summary["groups"] = dict(sorted(groups.items()))
        worst = min(groups, key=lambda g: (groups[g]["clip_acc"], -groups[g]["clips"]))
        summary["worst_group"] = {"group": worst, **groups[worst]}
        summary["groups_below_85"] = sorted(g for g, row in groups.items() if row["clip_acc"] < 0.85)
    stress = [r.metrics["stress"] for r in members if r.metrics.get("stress")]
    if stress:
        conditions = [c for c in stress[0] if c != "worst"]
        summary["stress"] = {c: {key: statistics.mean(s[c][key] for s in stress) for key in stress[0][c]} for c in conditions}
        worst = worst_condition(summary["stress"])  # as each run's report picks it
        summary["stress"]["worst"] = {"condition": worst, **summary["stress"][worst]}
    return summary


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def short_names(keys: list[str]) -> list[str]:
    """``model.net.dropout`` -> ``dropout`` unless two swept keys would then look alike."""
    last = [k.split(".")[-1] for k in keys]
    return [s if last.count(s) == 1 else k for s, k in zip(last, keys)]


def run_table(runs: list[Run], keys: list[str], metric: str, sweep_dir: Path | list[Path]) -> Table:
    # Paths, keys and override values come from outside (data.classes=[lunges] looks like markup): escaped.
    where = ", ".join(str(d) for d in sweep_dir) if isinstance(sweep_dir, list) else str(sweep_dir)
    table = Table(title=f"runs ranked by {escape(metric)} (checkpoints under {escape(where)})", title_justify="left")
    columns = [("window", "acc"), ("window", "bacc"), ("clip", "acc"), ("clip", "bacc")]
    if any("wholeclip" in r.metrics for r in runs):
        columns.append(("wholeclip", "acc"))
    for column in ("#", "job", *short_names(keys), *(f"{lv} {k}" for lv, k in columns), "epochs", "checkpoint"):
        table.add_column(escape(column), overflow="fold")
    ranked = sorted(runs, key=lambda r: -(r.value(metric) if r.value(metric) is not None else -1))
    for rank, run in enumerate(ranked, 1):
        values = [_pct(run.metrics.get(level, {}).get(k)) for level, k in columns]
        shown = run.checkpoint
        if shown and shown.is_relative_to(run.folder):
            shown = shown.relative_to(run.folder)
        members = run.metrics.get("checkpoint")
        checkpoint = (escape(str(shown)) if shown
                      else f"ensemble of {len(members)}" if isinstance(members, list)
                      else "[red]no report: failed or running[/red]")  # fmt: skip
        swept = (escape(short_value(run.setting(k) or "")) for k in keys)
        table.add_row(str(rank), escape(run.label or run.folder.name), *swept, *values,
                      str(run.metrics.get("epoch", "-")), checkpoint)  # fmt: skip
    return table


def fold_table(groups, metric: str) -> Table:
    """One row per configuration: fold means, the worst held-out person group, the worst stress condition."""
    table = Table(title=f"mean over folds (cross-validation), by {escape(metric)}", title_justify="left")
    columns = ("configuration", "folds", *(f"{level} acc" for level in LEVELS), f"{metric.split('/')[-1]} mean ± sd",
               "worst group (clips)", "groups < 85 %", "stress: worst clip drop")  # fmt: skip
    for column in columns:
        table.add_column(escape(column), overflow="fold")
    for label, members in groups:
        means = [_pct(statistics.mean(vals)) if (vals := [r.metrics[lv]["acc"] for r in members if lv in r.metrics]) else "-"
                 for lv in LEVELS]  # fmt: skip
        values = [r.value(metric) for r in members]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        summary = crossval_summary(label, members)
        worst = summary.get("worst_group")
        worst_text = escape(f"{worst['group']} {worst['clip_acc']:.0%}") if worst else "-"
        below = str(len(summary["groups_below_85"])) + f" of {len(summary['groups'])}" if "groups" in summary else "-"
        stress = (summary.get("stress") or {}).get("worst")
        stress_text = escape(f"{stress['condition']} {(-100 * stress.get('clip_drop', 0.0)) or 0.0:+.1f} pts") if stress else "-"
        mean = f"{statistics.mean(values):.1%} ± {spread:.1%}" if len(values) > 1 else f"{values[0]:.1%} (one fold)"
        planned = planned_folds(members)
        folds = f"{len(members)} of {planned}" if planned and planned != len(members) else str(len(members))
        table.add_row(escape(label), folds, *means, mean, worst_text, below, stress_text)
    return table


def stress_table(summaries: list[dict]) -> Table:
    """Clip accuracy per stress condition (mean over folds), one column pair per configuration."""
    table = Table(title="stress suite (held-out groups, mean over folds): other views and bodies", title_justify="left")
    table.add_column("condition")
    for summary in summaries:
        name = escape(summary["configuration"]) if len(summaries) > 1 else ""
        table.add_column(f"{name} clip acc".strip(), overflow="fold")
        table.add_column("clip drop")
    conditions = [c for c in summaries[0].get("stress", {}) if c != "worst"]
    rows = [["as filmed"]] + [[escape(c)] for c in conditions]
    for summary in summaries:
        rows[0] += [_pct(summary.get("clip", {}).get("acc")), ""]
        for row, c in zip(rows[1:], conditions):
            cell = summary.get("stress", {}).get(c, {})
            drop = (-100 * cell.get("clip_drop", 0.0)) or 0.0  # no "-0.0"
            row += [_pct(cell.get("clip_acc")), f"{drop:+.1f} pts" if cell else "-"]
    for row in rows:
        table.add_row(*row)
    return table


PANELS_PER_ROW = 4


def plot(runs: list[Run], keys: list[str], metric: str, path: Path) -> bool:
    """The metric against each swept key (one panel each, in rows of PANELS_PER_ROW) as ``path``; False (nothing
    written) with no key swept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in runs if r.value(metric) is not None]
    panels = [k for k in keys if k != FOLD_KEY] or keys[:1]
    if not done or not panels:
        return False
    rows, cols = -(-len(panels) // PANELS_PER_ROW), min(len(panels), PANELS_PER_ROW)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, panels):
        x, labels, scale = axis([short_value(r.setting(key) or "") for r in done])
        ax.scatter(x, [r.value(metric) for r in done], alpha=0.8)
        ax.set_xscale(scale)
        if labels is not None:
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def axis(given: list[str]) -> tuple[list[float], list[str] | None, str]:
    """Where runs with these values of one option go along x: ``(x, tick labels, scale)``. Numbers over a range (an
    Optuna search: more than three values) on a real axis, logarithmic when they span ten times or more (labels
    None); a few settings or words one column each, in order."""
    numbers = [_as_float(v) for v in given]
    if len(set(given)) > 3 and None not in numbers and all(math.isfinite(n) for n in numbers):
        return numbers, None, "log" if min(numbers) > 0 and max(numbers) >= 10 * min(numbers) else "linear"
    finite = {v: n if n is not None and math.isfinite(n) else None for v in set(given) for n in [_as_float(v)]}
    labels = sorted(finite, key=lambda v: (finite[v] is None, finite[v] or 0.0, v))  # numbers in order, then words
    return [float(labels.index(v)) for v in given], labels, "linear"


def _as_float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="musclevision-compare", description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("sweep_dir", type=Path, nargs="+",
                        help="a multirun folder, e.g. logs/train/multiruns/<time>, or a run's folder; several: side "
                             "by side")  # fmt: skip
    parser.add_argument("--metric", default="val/window_bacc", help="ranking metric (default: val/window_bacc)")
    args = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # logs and pipes: wide rows rather than wrapped cells
    runs = []
    for sweep_dir in args.sweep_dir:
        if not sweep_dir.is_dir():
            console.print(f"[red]musclevision-compare: {escape(str(sweep_dir))} is not a folder: give a multirun's or a "
                          f"run's folder (e.g. logs/train/multiruns/<time>)[/red]", soft_wrap=True)  # fmt: skip
            return 2
        found = read_runs(sweep_dir.resolve())
        if not found:
            console.print(
                f"[red]musclevision-compare: no runs under {escape(str(sweep_dir))} (expected <sweep>/<n>/.hydra/)[/red]",
                soft_wrap=True,
            )
            return 2
        runs += found
    several = len(args.sweep_dir) > 1
    if several:  # the same job numbers in every sweep: name runs by sweep too
        for run in runs:
            run.label = f"{run.folder.parent.name}/{run.folder.name}"
    folders = [d.resolve() for d in args.sweep_dir]
    args.sweep_dir = args.sweep_dir[0]
    where = escape(str(args.sweep_dir))
    try:
        parse_metric(args.metric)
    except ValueError as exc:
        console.print(f"[red]musclevision-compare: --metric: {escape(str(exc))}[/red]")
        return 2
    keys = swept_keys(runs)
    console.print(run_table(runs, keys, args.metric, folders if several else folders[0]))
    if args.metric.startswith("val/window") and {"data.window", "data.fps"} & set(keys):
        console.print("[yellow]data.window or data.fps differs between these runs: their window scores count different "
                      "windows; clip scores (--metric val/clip_bacc) compare the same clips[/yellow]")  # fmt: skip
    groups = fold_groups(runs, keys, args.metric) if FOLD_KEY in keys else []
    if groups:
        console.print(fold_table(groups, args.metric))
        summaries = [crossval_summary(*group) for group in (groups if several else groups[:1])]
        if any(s.get("stress") for s in summaries):
            console.print(stress_table([s for s in summaries if s.get("stress")]))
    if several:
        console.print("(side by side: nothing written; crossval.json, best.json and compare.png are written for one "
                      "sweep folder at a time)")  # fmt: skip
        return 0
    if is_run(args.sweep_dir):
        return 0  # one run: crossval.json, best.json and the plot belong to a sweep
    if groups:
        (args.sweep_dir / "crossval.json").write_text(json.dumps(summaries[0], indent=2) + "\n")
        planned = planned_folds(groups[0][1])
        reported = len(groups[0][1])
        partial = f": only {reported} of its {planned} folds have a report" if planned and planned > reported else ""
        console.print(f"wrote {where}/crossval.json (best configuration's mean over folds{escape(partial)})")
    finished = [r for r in runs if r.value(args.metric) is not None and r.checkpoint]
    if not finished:
        if groups and all(isinstance(r.metrics.get("checkpoint"), list) for r in runs):
            return 0  # a cross-validation of ensembles (musclevision-eval): reported above, nothing to export from here
        console.print("[red]no run finished with a report and a checkpoint[/red]")
        return 1
    best = max(finished, key=lambda r: r.value(args.metric))
    record = {"checkpoint": str(best.checkpoint), "metric": args.metric, "value": best.value(args.metric),
              "run": str(best.folder), "overrides": best.overrides}  # fmt: skip
    (args.sweep_dir / "best.json").write_text(json.dumps(record, indent=2) + "\n")
    plotted = plot(runs, keys, args.metric, args.sweep_dir / "compare.png")
    console.print(f"best: {escape(str(best.folder))} ({escape(args.metric)} {best.value(args.metric):.1%})")
    console.print(f"wrote {where}/best.json{f' and {where}/compare.png' if plotted else ''}; export it with")
    console.print(f"  musclevision-export sweep_dir={where} name=<name>")
    if len(finished) < len(runs):
        missing = len(runs) - len(finished)
        console.print(f"[yellow]{missing} run{' has' if missing == 1 else 's have'} no report yet (failed or still "
                      "running)[/yellow]")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
