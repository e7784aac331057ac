"""What-if analysis: a base scenario against variants, several seeds each, one table and an HTML report.

    python -m benchmarks.compare scenarios/regional-week.json \\
        --variant "+2 HVAC=add-technicians:hvac:2" \\
        --variant "wider lunch=lunch-window:60" \\
        --variant "warranty 48 h=warranty-due-hours:48" \\
        --variant "30 km/h=speed:30" \\
        [--variant-file variants.json] [--seeds 3] [--time-limit 10] [--iterations N] [--out DIR]

Each seed plans the base scenario first; every variant of that seed is then planned from the base
plan (a warm start, without the cost of moving jobs) and may never end with fewer jobs planned at
any priority level counted cumulatively than it started with (`SolveOptions.keep_planned`): a
relaxation (more technicians, overtime, wider windows) cannot look worse because a search wandered
elsewhere. With `--iterations` every solve stops after that many search iterations, so the report
repeats exactly on any machine.

A variant is a name and one or more operations separated by ';'. Operations:
  add-technicians:SKILL:N[:LEVEL]  N more technicians with SKILL (cloned from its best holder)
  remove-technicians:ID[,ID...]    those technicians leave
  lunch-window:MIN                 every lunch window MIN minutes wider on each side
  warranty-due-hours:H             every warranty job due H hours after the horizon starts
  speed:KMH                        travel speed
  overtime:MIN                     every technician may work MIN minutes of overtime
  widen-windows:MIN                every appointment window MIN minutes wider on each side
A variant file is JSON: [{"name": "+2 HVAC", "ops": ["add-technicians:hvac:2"]}, ...].
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

from models import Scenario

RESULTS = Path(__file__).parent / "results"
METRICS: list[tuple[str, str]] = [
    ("planned_pct", "jobs planned %"),
    ("p1_planned_pct", "priority-1 planned %"),
    ("p2_planned_pct", "priority-2 planned %"),
    ("sla_late_jobs", "SLA-late jobs"),
    ("km_per_job", "travel km per job"),
    ("overtime_min", "overtime minutes"),
    ("utilisation_pct", "mean utilisation %"),
    ("preferred_pct", "preferred technician %"),
    ("solve_s", "solve seconds"),
]


class BadVariant(ValueError):
    pass


@dataclass(frozen=True)
class Variant:
    name: str
    ops: tuple[str, ...]


def parse_variant(text: str) -> Variant:
    if "=" not in text:
        raise BadVariant(f"--variant {text!r}: write NAME=OP[;OP...]")
    name, ops = text.split("=", 1)
    return Variant(name.strip(), tuple(o.strip() for o in ops.split(";") if o.strip()))


def apply(scenario: Scenario, variant: Variant) -> Scenario:
    """The base scenario with the variant's operations applied, validated again as a whole."""
    data = scenario.model_dump(mode="json")
    for op in variant.ops:
        kind, _, arg = op.partition(":")
        parts = arg.split(":") if arg else []
        try:
            if kind == "add-technicians":
                _add_technicians(data, parts[0], int(parts[1]), int(parts[2]) if len(parts) > 2 else None)
            elif kind == "remove-technicians":
                gone = set(arg.split(","))
                unknown = gone - {t["id"] for t in data["technicians"]}
                if unknown:
                    raise BadVariant(f"{op}: no technician {', '.join(sorted(unknown))}")
                data["technicians"] = [t for t in data["technicians"] if t["id"] not in gone]
                for j in data["jobs"]:
                    for key in ("preferred_technicians", "excluded_technicians"):
                        j[key] = [t for t in j.get(key, []) if t not in gone]
                    if j.get("pinned") and j["pinned"]["technician_id"] in gone:
                        j["pinned"] = None
            elif kind == "lunch-window":
                _widen_lunch(data, int(arg))
            elif kind == "warranty-due-hours":
                due = scenario.horizon_start.replace(hour=8) + timedelta(hours=float(arg))
                for j in data["jobs"]:
                    if j.get("warranty"):
                        j["due"] = due.isoformat()
            elif kind == "speed":
                data["travel"]["speed_kmh"] = float(arg)
            elif kind == "overtime":
                for t in data["technicians"]:
                    t["max_overtime_minutes"] = int(arg)
            elif kind == "widen-windows":
                _widen_windows(data, scenario, int(arg))
            else:
                raise BadVariant(f"unknown operation {kind!r} in {op!r}")
        except (IndexError, ValueError) as exc:
            if isinstance(exc, BadVariant):
                raise
            raise BadVariant(f"variant {variant.name!r}: cannot read {op!r} ({exc})") from None
    data["name"] = f"{scenario.name} / {variant.name}"
    try:
        return Scenario.model_validate(data)
    except ValueError as exc:
        raise BadVariant(f"variant {variant.name!r} makes an invalid scenario: {exc}") from None


def _add_technicians(data: dict[str, Any], skill: str, count: int, level: int | None) -> None:
    holders = [t for t in data["technicians"] if skill in t.get("skills", {})]
    if not holders:
        raise BadVariant(f"add-technicians: nobody has {skill!r} to copy shifts and home from")
    best = max(holders, key=lambda t: t["skills"][skill])
    for k in range(count):
        clone = json.loads(json.dumps(best))
        clone["id"] = f"NEW-{skill}-{k + 1}"
        clone["name"] = f"new {skill} technician {k + 1}"
        clone["skills"] = {skill: level or best["skills"][skill]}
        data["technicians"].append(clone)


def _widen_windows(data: dict[str, Any], scenario: Scenario, minutes: int) -> None:
    """Every window MIN minutes wider on each side, kept inside the horizon."""
    lo, hi = scenario.horizon_start, scenario.horizon_end
    for j in data["jobs"]:
        for w in j.get("windows", []):
            start = max(scenario.local(datetime.fromisoformat(w["start"])) - timedelta(minutes=minutes), lo)
            end = min(scenario.local(datetime.fromisoformat(w["end"])) + timedelta(minutes=minutes), hi)
            w["start"], w["end"] = start.isoformat(), end.isoformat()


def _widen_lunch(data: dict[str, Any], minutes: int) -> None:
    def shift(value: str, delta: int) -> str:
        h, m = map(int, value.split(":"))
        total = min(max(h * 60 + m + delta, 0), 23 * 60 + 59)
        return clock(total // 60, total % 60).strftime("%H:%M")

    for t in data["technicians"]:
        if t.get("lunch"):
            t["lunch"]["earliest"] = shift(t["lunch"]["earliest"], -minutes)
            t["lunch"]["latest"] = shift(t["lunch"]["latest"], minutes)


def measure(
    base_json: str, variant_json: str | None, time_limit: float, seed: int, iterations: int | None
) -> dict[str, Any]:
    """One seed in a worker process: the base plan, then (for a variant) the variant planned from it.

    KPIs as plain numbers, and the jobs planned per priority counted cumulatively.
    """
    from optimizer import SolveOptions, solve, validate_plan

    options = SolveOptions(time_limit_seconds=time_limit, seed=seed, iterations=iterations)
    base = Scenario.model_validate_json(base_json)
    began = time.perf_counter()
    plan = solve(base, options)
    scenario = base
    if variant_json is not None:
        scenario = Scenario.model_validate_json(variant_json)
        began = time.perf_counter()
        what_if = options.model_copy(
            update={
                "keep_planned": True,
                "weights": options.weights.model_copy(update={"stability_move": 0.0}),
            }
        )
        plan = solve(scenario, what_if, previous=plan)
    wall = time.perf_counter() - began
    violations = validate_plan(scenario, plan)
    k = plan.kpis

    def pct(prio: str) -> float:
        c = k.planned_by_priority.get(prio)
        return 100.0 * c.planned / c.total if c and c.total else 100.0

    cumulative, total = [], 0
    for prio in "12345":
        c = k.planned_by_priority.get(prio)
        total += c.planned if c else 0
        cumulative.append(total)
    return {
        "planned_pct": 100.0 * k.jobs_planned / max(k.jobs_total, 1),
        "p1_planned_pct": pct("1"),
        "p2_planned_pct": pct("2"),
        "sla_late_jobs": float(k.sla_late_jobs),
        "km_per_job": k.travel_km_per_job,
        "overtime_min": k.overtime_minutes,
        "utilisation_pct": 100.0 * statistics.mean(k.utilisation.values()) if k.utilisation else 0.0,
        "preferred_pct": 100.0 * (k.preferred_technician_rate or 0.0),
        "solve_s": wall,
        "violations": float(len(violations)),
        "cumulative": cumulative,
    }


def report_html(
    rows: list[dict[str, Any]], names: list[str], charts: list[tuple[str, str]], title: str
) -> str:
    from jinja2 import Environment, select_autoescape

    env = Environment(autoescape=select_autoescape(default=True))
    template = env.from_string(
        """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}
.grid{display:grid;grid-template-columns:repeat(3,1fr);gap:1em}img{width:100%}</style></head><body>
<h1>{{ title }}</h1><p>Mean over seeds, with the range (min–max) in brackets.</p>
<table><tr><th>variant</th>{% for key, label in metrics %}<th>{{ label }}</th>{% endfor %}</tr>
{% for name in names %}<tr><td>{{ name }}</td>{% for key, label in metrics %}
<td>{{ cell(name, key) }}</td>{% endfor %}</tr>{% endfor %}</table>
<div class="grid">{% for label, png in charts %}<figure>
<img alt="{{ label }}" src="data:image/png;base64,{{ png }}">
<figcaption>{{ label }}</figcaption></figure>{% endfor %}</div></body></html>"""
    )

    def cell(name: str, key: str) -> str:
        vals = [r[key] for r in rows if r["variant"] == name]
        return f"{statistics.mean(vals):.1f} [{min(vals):.1f}–{max(vals):.1f}]" if vals else "-"

    return template.render(title=title, metrics=METRICS, names=names, charts=charts, cell=cell)


def charts(rows: list[dict[str, Any]], names: list[str]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    for key, label in METRICS:
        means, lo, hi = [], [], []
        for name in names:
            vals = [r[key] for r in rows if r["variant"] == name]
            m = statistics.mean(vals)
            means.append(m)
            lo.append(m - min(vals))
            hi.append(max(vals) - m)
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.bar(range(len(names)), means, yerr=[lo, hi], capsize=4, color="#4c78a8")
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        out.append((label, base64.b64encode(buf.getvalue()).decode()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path, help="base scenario JSON")
    parser.add_argument("--variant", action="append", default=[], help="NAME=OP[;OP...] (repeatable)")
    parser.add_argument("--variant-file", action="append", type=Path, default=[])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--iterations", type=int, default=None, help="search iterations per solve")
    parser.add_argument("--jobs", type=int, default=1, help="solves in parallel (fair timing needs 1)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        base = Scenario.model_validate_json(args.base.read_text())
        variants = [Variant("base", ())]
        variants += [parse_variant(v) for v in args.variant]
        for f in args.variant_file:
            for entry in json.loads(f.read_text()):
                variants.append(Variant(str(entry["name"]), tuple(entry["ops"])))
        scenarios = {v.name: apply(base, v) for v in variants}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    names = list(scenarios)
    tasks = [(name, seed) for name in names for seed in range(args.seeds)]
    print(f"{len(names)} variants x {args.seeds} seeds at {args.time_limit:g} s", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        base_json = base.model_dump_json()
        futures = {
            (n, s): pool.submit(
                measure,
                base_json,
                None if n == "base" else scenarios[n].model_dump_json(),
                args.time_limit,
                s,
                args.iterations,
            )
            for n, s in tasks
        }
        for k, ((name, seed), future) in enumerate(futures.items(), 1):
            row = {"variant": name, "seed": seed, **future.result()}
            rows.append(row)
            print(
                f"[{k}/{len(tasks)}] {name} seed {seed}: planned {row['planned_pct']:.1f}%, "
                f"{row['km_per_job']:.2f} km/job, {row['violations']:.0f} violations",
                file=sys.stderr,
            )
    fewer = [
        (r["variant"], r["seed"])
        for r in rows
        for b in rows
        if b["variant"] == "base" and b["seed"] == r["seed"] and r["variant"] != "base"
        and any(x < y for x, y in zip(r["cumulative"], b["cumulative"], strict=True))
    ]  # fmt: skip
    for name, seed in fewer:
        print(
            f"note: {name} (seed {seed}) plans fewer jobs than the base at some priority level",
            file=sys.stderr,
        )
    for r in rows:
        r["cumulative"] = "/".join(map(str, r["cumulative"]))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"compare-{args.base.stem}"
    with (args.out / f"{stem}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| variant | " + " | ".join(label for _, label in METRICS) + " |",
        "|---" * (len(METRICS) + 1) + "|",
    ]
    for name in names:
        cells = []
        for key, _ in METRICS:
            vals = [r[key] for r in rows if r["variant"] == name]
            spread = f" ±{(max(vals) - min(vals)) / 2:.1f}" if len(vals) > 1 else ""
            cells.append(f"{statistics.mean(vals):.1f}{spread}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    md = "\n".join(lines)
    (args.out / f"{stem}.md").write_text(md + "\n")
    try:
        html = report_html(rows, names, charts(rows, names), f"fieldplan what-if: {base.name}")
        (args.out / f"{stem}.html").write_text(html)
        made = f", {stem}.html"
    except ImportError:
        made = " (no HTML: pip install -e .[bench] for matplotlib and jinja2)"
    print(md)
    print(f"\nwrote {args.out / (stem + '.csv')}, {stem}.md{made}")
    bad = sum(r["violations"] for r in rows)
    if bad:
        print(f"error: {bad:.0f} validator violations", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
