"""`fieldplan` command line: solve, validate and generate scenarios; serve, keys, scheduler.

Bad files end with one readable line and exit code 2; a plan with violations exits 1.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import SQLAlchemyError

from api import scheduler
from api.app import create_app
from api.context import Service
from api.demo import demo_day, seed
from api.loading import BadInput, describe, load
from api.report import print_plan
from api.security import Role, create_key
from api.settings import get_settings
from api.tables import RunRow, TechnicianRow, utcnow
from models import Plan, Scenario
from optimizer import SolveOptions, solve, validate_plan
from optimizer.solve import DEGRADED
from optimizer.territories import DEFAULT_THRESHOLD, TerritoryOptions, solve_large
from scenarios.generate import PRESETS, REGIONS, generate

app = typer.Typer(add_completion=False, no_args_is_help=True, help="fieldplan: who goes where, when.")
out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command("solve")
def solve_cmd(
    scenario_file: Annotated[Path, typer.Argument(metavar="SCENARIO.json")],
    time_limit: Annotated[float, typer.Option("--time-limit", min=0.1, help="seconds")] = 10.0,
    out_file: Annotated[Path | None, typer.Option("--out", help="write the plan JSON here")] = None,
    seed: int = 0,
    iterations: Annotated[
        int | None, typer.Option("--iterations", min=0, help="stop after N search iterations (repeatable)")
    ] = None,
    details: Annotated[bool | None, typer.Option("--details/--no-details")] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            min=1,
            help="split into territories solved N at a time (default: only above "
            "FIELDPLAN_TERRITORY_THRESHOLD jobs, 2 at a time)",
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option("--backend", help="process (a local pool) or ray (RAY_ADDRESS, else a local Ray)")
    ] = "process",
    territory_jobs: Annotated[
        int, typer.Option("--territory-jobs", min=20, help="jobs per territory")
    ] = 1000,
) -> None:
    """Plan a scenario, print the routes and KPIs, and write the plan JSON.

    Large scenarios (more jobs than FIELDPLAN_TERRITORY_THRESHOLD, default 3000, or with --parallel /
    --backend ray) are split into territories solved side by side, then their borders repaired;
    `solver.search_phases` names the territories and the repairs.

    Exit codes: 0 plan OK, 1 the validator found a violation, 2 bad input, 3 a search phase failed
    and the best plan found before it was kept (status DEGRADED).
    """
    try:
        scenario = load(scenario_file, Scenario)
    except BadInput as exc:
        fail(str(exc))
    scenario, note = _on_roads(scenario, scenario_file)
    options = SolveOptions(time_limit_seconds=time_limit, seed=seed, iterations=iterations)
    if backend not in ("process", "ray"):
        fail(f"--backend: {backend!r} is not one of process, ray")
    threshold = int(os.environ.get("FIELDPLAN_TERRITORY_THRESHOLD", DEFAULT_THRESHOLD))
    if parallel is not None or backend == "ray" or len(scenario.jobs) > threshold:
        how = TerritoryOptions(
            threshold=1,
            jobs_per_territory=territory_jobs,
            backend=backend,  # type: ignore[arg-type]  # checked above
            parallel=parallel or 2,
        )
        plan = _territories(scenario, options, how)
        _finish(plan, note, scenario, out_file, details)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err,
        transient=not err.is_terminal,
    ) as bar:
        task = bar.add_task("solving", total=time_limit, info="")
        last = [0.0]

        def progress(phase: str, info: dict[str, float]) -> None:
            now = time.monotonic()
            if phase == "search" and now - last[0] < 0.25:
                return
            last[0] = now
            text = ", ".join(f"{k} {v:.0f}" if k != "seconds" else f"{v:.1f}s" for k, v in info.items())
            bar.update(task, completed=min(info.get("seconds", 0.0), time_limit), info=f"{phase}: {text}")
            if not err.is_terminal and phase != "search":
                err.print(f"[dim]{phase}: {text}[/]", highlight=False)

        plan = solve(scenario, options, progress=progress)
        bar.update(task, completed=time_limit)
    _finish(plan, note, scenario, out_file, details)


def _territories(scenario: Scenario, options: SolveOptions, how: TerritoryOptions) -> Plan:
    """A large solve: a log line per phase (split, territories, each border repair round)."""
    from optimizer.parallel import WorkerLost

    err.print(
        f"[dim]{len(scenario.jobs)} jobs: territories of about {how.jobs_per_territory} on the {how.backend} "
        f"backend, {how.parallel} at a time[/]",
        highlight=False,
    )
    try:
        return solve_large(
            scenario, options, how, log=lambda text: err.print(f"[dim]{text}[/]", highlight=False)
        )
    except (WorkerLost, RuntimeError) as exc:
        fail(f"territories: {exc}", 1)
    raise AssertionError("unreachable")


def _finish(
    plan: Plan, note: str | None, scenario: Scenario, out_file: Path | None, details: bool | None
) -> None:
    """Print, write and check a solved plan; exit 1 on violations, 3 when a search phase failed."""
    if note:
        plan.solver.search_phases.insert(0, note)
        if "FALLBACK" in note:
            err.print(f"[yellow]warning:[/] {note}", highlight=False)
    violations = validate_plan(scenario, plan)
    print_plan(plan, out, details)
    if out_file is not None:
        out_file.write_text(plan.to_json())
        out.print(f"plan written to {out_file}")
    if violations:
        for v in violations:
            err.print(f"[red]violation[/] {v}", highlight=False)
        raise typer.Exit(1)
    out.print(f"[green]validator: plan OK[/] ({sum(len(r.visits) for r in plan.routes)} visits checked)")
    if plan.solver.status == DEGRADED:
        failed = "; ".join(p for p in plan.solver.search_phases if "failed" in p)
        err.print(
            f"[yellow]warning:[/] a search phase failed, the best plan found before it is shown: {failed}"
        )
        raise typer.Exit(3)


def _on_roads(scenario: Scenario, scenario_file: Path) -> tuple[Scenario, str | None]:
    """The scenario as planned: availability calendars and contracts expanded (`Scenario.expanded`),
    road travel (`osm`, `osrm`) read into a matrix, cached (FIELDPLAN_TRAVEL_CACHE, default
    ~/.cache/fieldplan/travel); roads that cannot be read end with one line and exit 2."""
    from api.roads import RoadsUnavailable, default_cache, resolve

    try:
        return resolve(scenario.expanded(), base=scenario_file.parent, cache=default_cache())
    except RoadsUnavailable as exc:
        fail(f"{scenario_file}: travel: {exc}")
    raise AssertionError("unreachable")


def _checked(scenario_file: Path, plan_file: Path) -> tuple[Scenario, Plan, list[object]]:
    """Both files read (a bad one ends with exit 2) and the validator's verdict on the plan (on the
    same road times the plan was made with)."""
    try:
        scenario = load(scenario_file, Scenario)
        plan = load(plan_file, Plan)
    except BadInput as exc:
        fail(str(exc))
    scenario, _ = _on_roads(scenario, scenario_file)
    return scenario, plan, list(validate_plan(scenario, plan))


@app.command("validate")
def validate_cmd(
    scenario_file: Annotated[Path, typer.Argument(metavar="SCENARIO.json")],
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN.json")],
) -> None:
    """Check a plan against its scenario with the independent validator (exit 1 on violations)."""
    _, plan, violations = _checked(scenario_file, plan_file)
    for v in violations:
        out.print(f"[red]violation[/] {v}", highlight=False)
    if violations:
        out.print(f"{len(violations)} violation(s)")
        raise typer.Exit(1)
    visits = sum(len(r.visits) for r in plan.routes)
    out.print(f"plan OK: {len(plan.routes)} routes, {visits} visits, {len(plan.unassigned)} unassigned")


@app.command("explain")
def explain_cmd(
    scenario_file: Annotated[Path, typer.Argument(metavar="SCENARIO.json")],
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN.json")],
    job: Annotated[str | None, typer.Option("--job", help="only this job")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="the plan's unassigned[] with fixes, as JSON")
    ] = False,
) -> None:
    """What would let each job left out in: the smallest changes, cheapest first, the best checked by
    re-planning the routes they touch (exit 1 if the plan fails the validator, 2 for a bad file)."""
    from optimizer.fixes import explain_plan

    scenario, plan, violations = _checked(scenario_file, plan_file)
    if violations:
        for v in violations[:20]:
            err.print(f"[red]violation[/] {v}", highlight=False)
        fail(
            f"{plan_file}: the plan fails the validator ({len(violations)} violation(s)); nothing to explain",
            1,
        )
    planned = {v.job_id for r in plan.routes for v in r.visits}
    if job is not None and job in planned:
        from optimizer.fixes import Explainer

        others = Explainer(scenario, plan).alternatives(job, top=5)
        if as_json:
            out.print_json(json.dumps(others, default=str))
            return
        out.print(f"{job} is planned; the next-best places (added travel, minutes, against where it is):")
        for o in others:
            out.print(
                f"  {o['technician_id']} {o['date']}: +{o['added_travel_minutes']} min "
                f"({o['difference_minutes']:+} against its place)",
                highlight=False,
            )
        if not others:
            out.print("  none: no other technician-day can take it as the plan stands")
        return
    if job is not None and job not in {u.job_id for u in plan.unassigned}:
        fail(f"--job: {job!r} is not a job of the plan")
    explained = explain_plan(scenario, plan, jobs=[job] if job else None)
    if as_json:
        rows = [u.model_dump(mode="json") for u in explained.unassigned if job is None or u.job_id == job]
        out.print_json(json.dumps(rows))
        return
    from api.report import print_fixes

    print_fixes(explained, out, job)


@app.command("slots")
def slots_cmd(
    scenario_file: Annotated[Path, typer.Argument(metavar="SCENARIO.json")],
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN.json")],
    job_file: Annotated[
        Path, typer.Option("--job", metavar="JOB.json", help="the new job (scenario format)")
    ],
    window: Annotated[int, typer.Option("--window", min=15, max=720, help="arrival window, minutes")] = 120,
    max_slots: Annotated[int, typer.Option("--max-slots", min=1, max=100)] = 8,
    earliest: Annotated[str | None, typer.Option("--earliest", help="YYYY-MM-DD")] = None,
    latest: Annotated[str | None, typer.Option("--latest", help="YYYY-MM-DD")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the answer as JSON")] = False,
) -> None:
    """The arrival windows to offer a customer for a new job, best first, against a plan: grade,
    candidate technician, cost breakdown, robustness; and the earliest windows not offered, with why."""
    from api.report import print_slots
    from models import Job
    from optimizer.replan import input_of
    from optimizer.slots import SlotInput, SlotQuery, find_slots

    scenario, plan, violations = _checked(scenario_file, plan_file)
    try:
        job = load(job_file, Job)
    except BadInput as exc:
        fail(str(exc))
    if violations:
        fail(f"{plan_file}: the plan fails the validator ({len(violations)} violation(s)); fix it first", 1)
    if job.id in {j.id for j in scenario.jobs}:
        fail(f"{job_file}: job id {job.id!r} is already a job of the scenario")
    try:
        first = date.fromisoformat(earliest) if earliest else None
        last = date.fromisoformat(latest) if latest else None
    except ValueError as exc:
        fail(f"--earliest/--latest: {exc}")
    base = input_of(scenario, plan.routes)
    query = SlotQuery(job=job, window_minutes=window, max_slots=max_slots, earliest=first, latest=last)
    answer = find_slots(SlotInput(base=base, query=query))
    if as_json:
        out.print_json(answer.model_dump_json())
        return
    print_slots(answer, out)


@app.command("generate")
def generate_cmd(
    out_file: Annotated[Path, typer.Option("--out", help="scenario JSON to write")],
    preset: Annotated[str | None, typer.Option(help=", ".join(PRESETS))] = None,
    region: Annotated[str, typer.Option(help=", ".join(REGIONS))] = "lyon",
    technicians: Annotated[int, typer.Option(min=1, max=5000)] = 8,
    jobs: Annotated[int, typer.Option(min=0, max=100_000)] = 60,
    days: Annotated[int, typer.Option(min=1, max=31)] = 1,
    start: Annotated[str | None, typer.Option(help="first day, YYYY-MM-DD (default today)")] = None,
    seed: int = 0,
    profile: Annotated[str, typer.Option(help="normal, overloaded or recall")] = "normal",
    impossible: Annotated[int, typer.Option(min=0, max=1000)] = 0,
    name: str | None = None,
) -> None:
    """Write a seeded, realistic scenario (same arguments and seed, same file)."""
    try:
        first = date.fromisoformat(start) if start else date.today()
    except ValueError:
        fail(f"--start: {start!r} is not a date YYYY-MM-DD")
    args: dict[str, object] = {
        "region": region,
        "technicians": technicians,
        "jobs": jobs,
        "days": days,
        "profile": profile,
        "impossible": impossible,
    }
    if preset is not None:
        if preset not in PRESETS:
            fail(f"--preset: unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        args = dict(PRESETS[preset])
    if args["region"] not in REGIONS:
        fail(f"--region: unknown region {args['region']!r} (known: {', '.join(REGIONS)})")
    if args.get("profile", "normal") not in ("normal", "overloaded", "recall"):
        fail(f"--profile: unknown profile {args['profile']!r}")
    scenario = generate(name=name or preset or out_file.stem, start=first, seed=seed, **args)  # type: ignore[arg-type]
    out_file.write_text(json.dumps(scenario.model_dump(mode="json", exclude_none=True), indent=1) + "\n")
    out.print(f"wrote {out_file}: {len(scenario.technicians)} technicians, {len(scenario.jobs)} jobs")


keys_app = typer.Typer(no_args_is_help=True, help="API keys of the service (shown once, stored hashed).")
app.add_typer(keys_app, name="keys")


def _service() -> Service:
    try:
        settings = get_settings()
        return Service.open(settings)
    except ValidationError as exc:
        fail(f"configuration: {describe(exc)}")
    except SQLAlchemyError as exc:
        fail(f"database {get_settings().database_url.split('@')[-1]!r} is not usable: {type(exc).__name__}")
    raise AssertionError("unreachable")


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="admin, dispatcher, technician or booking")],
    technician: Annotated[
        str | None, typer.Option(help="the technician a technician key is bound to")
    ] = None,
    label: str | None = None,
) -> None:
    """Print a new API key (FIELDPLAN_DATABASE_URL names the database)."""
    if (role == Role.TECHNICIAN) != (technician is not None):
        fail("--technician: a technician key needs --technician ID; other roles take none")
    service = _service()
    with service.sessions.begin() as session:
        if technician is not None and session.get(TechnicianRow, technician) is None:
            fail(f"--technician: no technician {technician!r} in the database")
        row, key = create_key(session, role=role, technician_id=technician, label=label)
    who = f" for {technician}" if technician else ""
    out.print(f"{role.value} key{who} (id {row.id}, shown once): {key}", highlight=False, soft_wrap=True)


@app.command("serve")
def serve_cmd(
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    demo: Annotated[bool, typer.Option("--demo", help="fresh SQLite demo database dated from today")] = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
    clock: Annotated[
        str | None,
        typer.Option(
            help="demo only: the service's clock starts here (HH:MM today, or an ISO datetime) and runs on"
        ),
    ] = None,
) -> None:
    """Run the HTTP service (and, unless FIELDPLAN_SCHEDULER=false, the nightly re-plan)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if clock is not None and not demo:
        fail("--clock: only with --demo (a real service keeps real time)")
    if demo:
        path = Path("fieldplan-demo.db").resolve()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        settings = get_settings().model_copy(update={"database_url": f"sqlite:///{path}"})
        try:
            started = shifted_clock(clock, settings.timezone) if clock else utcnow
        except ValueError as exc:
            fail(f"--clock: {exc}")
        service = Service.open(settings, clock=started)
        day = demo_day(service)
        err.print(
            f"demo database {path}: clock {service.now().astimezone(service.tz):%Y-%m-%d %H:%M}; planning "
            f"{day} from now and publishing it ({settings.solve_seconds:.0f} s)..."
        )
        keys, run = seed(service, today=day)
        out.print(f"demo plan: run {run.id} {run.status}, {run.summary}", highlight=False)
        out.print(f"admin key: {keys.admin}", highlight=False, soft_wrap=True)
        out.print(f"dispatcher key: {keys.dispatcher}", highlight=False, soft_wrap=True)
        out.print(f"booking (call centre) key: {keys.booking}", highlight=False, soft_wrap=True)
        for tid, key in keys.technicians.items():
            out.print(f"technician {tid} key: {key}", highlight=False, soft_wrap=True)
        out.print(
            f"dispatch board: http://{host}:{port}/board (sign in with the dispatcher key)", highlight=False
        )
        out.print(f"API docs: http://{host}:{port}/docs", highlight=False)
        uvicorn.run(create_app(service, demo=True), host=host, port=port, log_level="info")
        return
    try:
        settings = get_settings()
    except ValidationError as exc:
        fail(f"configuration: {describe(exc)}")
    if settings.admin_key is None:
        fail(
            "FIELDPLAN_ADMIN_KEY is not set (24+ characters): the service will not start without an admin "
            "key; `fieldplan serve --demo` runs a throw-away demo instead"
        )
    if workers > 1:
        uvicorn.run("api.app:factory", factory=True, host=host, port=port, workers=workers, log_level="info")
    else:
        uvicorn.run(create_app(settings=settings), host=host, port=port, log_level="info")


def shifted_clock(spec: str, timezone: str) -> Callable[[], datetime]:
    """A clock that reads `spec` now and runs on in real time: HH:MM today, or an ISO datetime."""
    tz = ZoneInfo(timezone)
    if re.fullmatch(r"\d{1,2}:\d{2}", spec):
        hours, minutes = map(int, spec.split(":"))
        if hours > 23 or minutes > 59:
            raise ValueError(f"{spec!r} is not a time of day")
        start = datetime.combine(utcnow().astimezone(tz).date(), dtime(hours, minutes), tzinfo=tz)
    else:
        try:
            start = datetime.fromisoformat(spec)
        except ValueError:
            raise ValueError(f"{spec!r} is neither HH:MM nor an ISO datetime") from None
        start = start.replace(tzinfo=tz) if start.tzinfo is None else start
    offset = start - utcnow()
    return lambda: utcnow() + offset


@app.command("scheduler")
def scheduler_cmd(
    once: Annotated[bool, typer.Option("--once", help="run the nightly re-plan now, once, and exit")] = False,
) -> None:
    """Run the nightly re-plan as its own process (for deployments with several API workers), at a
    lower CPU priority than the API workers: publishing a plan yields to technicians' pulls."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from api.replan_job import background_priority

    background_priority()
    service = _service()
    if once:
        run_id = scheduler.run_nightly(service, trigger="nightly-manual", wait=True)
        if run_id is None:
            fail("another re-plan is running; try again when it has finished", code=1)
        with service.sessions() as session:
            run = session.get(RunRow, run_id)
            assert run is not None
            out.print(f"run {run.id}: {run.status} {run.summary or run.error}", highlight=False)
            if run.status != "succeeded":
                raise typer.Exit(1)
        return
    scheduler.on_startup(service)
    sched = scheduler.start(service)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sched.shutdown(wait=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
