"""Terminal rendering of a plan: a timeline picture per route, unassigned reasons, KPIs."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from models import Plan, Route
from optimizer.slots import SlotAnswer

WIDTH = 48


def _timeline(route: Route, day_start: float, day_end: float, width: int = WIDTH) -> Text:
    """One character per quarter-hour or so: visits as blocks, lunch shaded, travel/wait dotted."""
    span = day_end - day_start
    cells = [" "] * width

    def pos(moment: datetime) -> int:
        hours = moment.hour + moment.minute / 60
        return min(width - 1, max(0, int((hours - day_start) / span * width)))

    for i in range(pos(route.start), pos(route.end) + 1):
        cells[i] = "·"
    if route.break_:
        for i in range(pos(route.break_.start), max(pos(route.break_.end), pos(route.break_.start) + 1)):
            cells[i] = "▒"
    text = Text()
    styles = ["green", "cyan"]
    for n, visit in enumerate(route.visits):
        for i in range(pos(visit.start), max(pos(visit.end), pos(visit.start) + 1)):
            cells[i] = "█" if n % 2 == 0 else "▇"
    for c in cells:
        style = "dim" if c == "·" else "yellow" if c == "▒" else styles[0] if c == "█" else styles[1]
        text.append(c, style=style if c.strip() else None)
    return text


def print_plan(plan: Plan, console: Console, details: bool | None = None) -> None:
    hours = [r.start.hour for r in plan.routes] + [r.end.hour + 1 for r in plan.routes]
    day_start, day_end = (min(hours), max(hours)) if hours else (7, 19)
    day_end = max(day_end, day_start + 1)
    table = Table(title=f"Plan for {plan.scenario}", title_justify="left", expand=False)
    width = max(16, min(WIDTH, console.width - 62))
    for col in ("tech", "date", "out", "back", "jobs", "km", "drive", "OT"):
        table.add_column(
            col, justify="right" if col in ("jobs", "km", "drive", "OT") else "left", no_wrap=True
        )
    table.add_column(f"{day_start:02d}:00{' ' * (width - 10)}{day_end:02d}:00", no_wrap=True)
    for r in plan.routes:
        table.add_row(
            r.technician_id,
            f"{r.date:%a %d}",
            f"{r.start:%H:%M}",
            f"{r.end:%H:%M}",
            str(len(r.visits)),
            f"{r.distance_km:.0f}",
            f"{r.travel_minutes:.0f}m",
            f"{r.overtime_minutes:.0f}m" if r.overtime_minutes else "",
            _timeline(r, day_start, day_end, width),
        )
    console.print(table)
    console.print("[green]█[/] visit  [yellow]▒[/] lunch  [dim]·[/] travel or waiting")
    if details if details is not None else len(plan.routes) <= 12:
        for r in plan.routes:
            stops = ", ".join(f"{v.start:%H:%M} {v.job_id}" for v in r.visits)
            lunch = f" | lunch {r.break_.start:%H:%M}" if r.break_ else ""
            console.print(f"  [bold]{r.technician_id}[/] {r.date}: {stops}{lunch}")
    if plan.unassigned:
        un = Table(title=f"Unassigned ({len(plan.unassigned)})", title_justify="left")
        un.add_column("job")
        un.add_column("reason", style="red")
        un.add_column("detail", overflow="fold")
        for u in plan.unassigned[:40]:
            un.add_row(u.job_id, u.reason.value, u.detail)
        console.print(un)
        if len(plan.unassigned) > 40:
            console.print(f"  ... and {len(plan.unassigned) - 40} more (see the plan JSON)")
    k = plan.kpis
    kp = Table(title="KPIs", title_justify="left", show_header=False)
    kp.add_column("kpi")
    kp.add_column("value", justify="right")
    kp.add_row("jobs planned", f"{k.jobs_planned} / {k.jobs_total}")
    for prio, count in k.planned_by_priority.items():
        kp.add_row(f"  priority {prio}", f"{count.planned} / {count.total}")
    kp.add_row(
        "travel", f"{k.travel_km:.0f} km, {k.travel_minutes:.0f} min ({k.travel_km_per_job:.1f} km/job)"
    )
    kp.add_row("overtime", f"{k.overtime_minutes:.0f} min")
    kp.add_row("SLA-late jobs", str(k.sla_late_jobs))
    if k.preferred_technician_rate is not None:
        kp.add_row("preferred technician", f"{k.preferred_technician_rate:.0%}")
    if k.utilisation:
        kp.add_row("utilisation (mean)", f"{sum(k.utilisation.values()) / len(k.utilisation):.0%}")
    kp.add_row("technician-days used", str(k.technician_days_used))
    if k.churn is not None:
        kp.add_row("churn", f"{k.churn:.1%}")
    s = plan.solver
    kp.add_row("solver", f"{s.status}, {s.wall_seconds:.1f}s, {s.solutions} iterations, seed {s.seed}")
    console.print(kp)


def print_fixes(plan: Plan, console: Console, job: str | None = None) -> None:
    """What would let each job left out in: one table per job, verified fixes first."""
    shown = [u for u in plan.unassigned if job is None or u.job_id == job]
    verified = sum(1 for u in shown if any(f.verified for f in u.fixes))
    console.print(f"{len(shown)} job(s) left out; {verified} with at least one verified fix")
    for u in shown:
        table = Table(title=f"{u.job_id}: {u.reason.value}", title_justify="left", caption=u.detail)
        table.add_column("fix")
        table.add_column("change", overflow="fold")
        table.add_column("cost", justify="right")
        table.add_column("checked")
        if not u.fixes:
            table.add_row("-", "no change of capacity or timing found (see the reason)", "", "")
        for f in u.fixes[:6]:
            table.add_row(
                f.kind,
                f.detail,
                f"{f.cost_delta:g}",
                "[green]verified[/]" if f.verified else "[dim]estimate[/]",
            )
        console.print(table)


def print_slots(answer: SlotAnswer, console: Console) -> None:
    """Slots as an agent reads them: the window, a grade bar, who would go, what it costs and why."""
    table = Table(
        title=f"slots for {answer.job_id}",
        title_justify="left",
        caption="cost, +drive, +over: minutes (of travel); robust: technician-days that could take it",
    )
    for name in ("window", "grade", "tech"):
        table.add_column(name, no_wrap=True)
    for name in ("cost", "+drive", "+over", "moves", "robust"):
        table.add_column(name, justify="right")
    table.add_column("gives way")
    for s in answer.slots:
        bar = "█" * round(s.grade / 20) + "·" * (5 - round(s.grade / 20))
        table.add_row(
            f"{s.start:%a %d %H:%M}-{s.end:%H:%M}",
            f"{bar} {s.grade:3d}",
            s.technician_id,
            f"{s.cost.total:g}",
            f"{s.cost.added_travel_minutes:g}",
            f"{s.cost.overtime_minutes:g}",
            str(s.cost.moved_visits),
            str(s.robustness),
            ", ".join(s.cost.pushed_out) or "-",
        )
    if not answer.slots:
        table.add_row("none", "", "", "", "", "", "", "", "")
    console.print(table)
    if answer.not_offered:
        console.print("earliest windows not offered:")
        for n in answer.not_offered:
            console.print(
                f"  {n.start:%a %d %b %H:%M}-{n.end:%H:%M}  {n.reason.value}: {n.detail}", highlight=False
            )
