"""Load: technicians pulling their routes while a new plan version is published; idempotent creates.

    python -m benchmarks.load [--technicians 500] [--duration 60] [--workers 2] [--think 2-4]
                              [--requests 1000] [--database postgresql+psycopg://postgres@127.0.0.1:5432/test]

Starts `fieldplan serve --workers N` (uvicorn workers) on a fresh PostgreSQL schema, writes plan
version 1 for 500 technicians, and lets 500 virtual technicians pull `/v1/me/route` for the duration,
each waiting a random think time between pulls. Half-way, plan version 2 (every route different) is
written and published through the same `api.store` functions a re-plan uses. Every response is checked
against the version it names: its stops must be exactly that version's stops for that technician (never
a mix of two versions). Like a phone, each virtual technician keeps the last route and its `ETag` and
sends `If-None-Match`: an unchanged route answers 304 and the kept body is checked instead. The verdict
is PASS only with no 5xx, no mixed answer, the publish seen, all creates stored exactly once and the p99
of every pull (publish included) under `--p99-ms` (100 ms). Then 1,000 service requests are created
concurrently, each POSTed twice with the same Idempotency-Key (the second often while the first is in
flight): exactly 1,000 must be stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import httpx

RESULTS = Path(__file__).parent / "results"
DAY = date(2026, 12, 7)
TZ = ZoneInfo("Europe/Paris")
ADMIN_KEY = "load-test-admin-key-" + uuid.uuid4().hex


def _plan(technicians: list[str], jobs_per_tech: int, version_seed: int) -> object:
    """A synthetic plan (valid Plan model) with `jobs_per_tech` visits per technician."""
    from models import Kpis, Plan, Route, SolverStats, Visit

    rng = random.Random(version_seed)
    routes = []
    for t, tid in enumerate(technicians):
        jobs = [f"L{t:04d}-{k}" for k in range(jobs_per_tech)]
        rng.shuffle(jobs)
        clock = datetime.combine(DAY, datetime.min.time(), TZ) + timedelta(
            hours=8, minutes=rng.randint(0, 30)
        )
        visits = []
        for jid in jobs:
            clock += timedelta(minutes=rng.randint(10, 30))
            visits.append(Visit(job_id=jid, arrival=clock, start=clock, end=clock + timedelta(minutes=45)))
            clock += timedelta(minutes=45)
        routes.append(
            Route(
                technician_id=tid,
                date=DAY,
                start=visits[0].start - timedelta(minutes=15),
                end=clock + timedelta(minutes=20),
                distance_km=30.0,
                travel_minutes=60.0,
                visits=visits,
            )
        )
    total = len(technicians) * jobs_per_tech
    kpis = Kpis(
        jobs_total=total,
        jobs_planned=total,
        jobs_unassigned=0,
        planned_by_priority={},
        planned_by_kind={},
        travel_km=0,
        travel_minutes=0,
        travel_km_per_job=0,
        overtime_minutes=0,
        sla_late_jobs=0,
        sla_late_minutes=0,
        utilisation={},
        technician_days_used=len(technicians),
    )
    return Plan(
        scenario="load",
        timezone="Europe/Paris",
        horizon_start=DAY,
        horizon_days=1,
        routes=routes,
        unassigned=[],
        kpis=kpis,
        solver=SolverStats(status="SYNTHETIC", wall_seconds=0, seed=0, time_limit_seconds=0),
    )


def prepare(
    url: str, n_tech: int, jobs_per_tech: int
) -> tuple[object, dict[str, str], dict[tuple[str, int], list[str]]]:
    from api import store
    from api.context import Service
    from api.security import Role, create_key
    from api.settings import Settings
    from api.tables import RequestRow
    from models import Job, Technician

    service = Service.open(Settings(database_url=url, timezone="Europe/Paris"))
    keys: dict[str, str] = {}
    techs = [f"T{i:04d}" for i in range(n_tech)]
    with service.sessions.begin() as session:
        for tid in techs:
            store.put_technician(
                session,
                Technician.model_validate(
                    {
                        "id": tid,
                        "name": tid,
                        "home": {"lat": 45.76, "lon": 4.84},
                        "shifts": [{"date": DAY.isoformat(), "start": "08:00", "end": "17:00"}],
                    }
                ),
            )
            for k in range(jobs_per_tech):
                job = Job.model_validate(
                    {
                        "id": f"L{tid[1:]}-{k}",
                        "kind": "maintenance",
                        "location": {"lat": 45.7, "lon": 4.8},
                        "duration_minutes": 45,
                    }
                )
                session.add(RequestRow(id=job.id, status="open", spec=job.model_dump(mode="json")))
            _, keys[tid] = create_key(session, role=Role.TECHNICIAN, technician_id=tid)
    expected: dict[tuple[str, int], list[str]] = {}
    version, routes = _publish_version(service, techs, jobs_per_tech, 1)
    for tid, jobs in routes.items():
        expected[(tid, version)] = jobs
    return service, keys, expected


def _publish_version(
    service: object, techs: list[str], jobs_per_tech: int, number: int
) -> tuple[int, dict[str, list[str]]]:
    """Write plan version `number` and publish it through the store, as a re-plan does."""
    from api import store

    plan = _plan(techs, jobs_per_tech, number)
    with service.sessions.begin() as session:  # type: ignore[attr-defined]
        now = datetime.now(TZ)
        version = store.store_plan(
            session,
            plan=plan,  # type: ignore[arg-type]
            days=[DAY],
            trigger=f"load-v{number}",
            run_id=None,
            today=now.date(),
            now=now,
            publish_days=[DAY],
        ).id
    return int(version), {r.technician_id: [x.job_id for x in r.visits] for r in plan.routes}  # type: ignore[attr-defined]


def publish_v2(url: str, techs: list[str], jobs_per_tech: int) -> tuple[int, dict[str, list[str]]]:
    """Write and publish version 2 in its own process, as the service's re-plan would.

    In the load generator's process the write would hold its GIL and stall the clients, which would
    then report the stall as server latency.
    """
    from api.context import Service
    from api.settings import Settings

    service = Service.open(Settings(database_url=url, timezone="Europe/Paris"))
    try:
        return _publish_version(service, techs, jobs_per_tech, 2)
    finally:
        service.close()


def _ms(ordered: list[float], p: float) -> float:
    """The p-quantile of sorted, non-empty seconds, in milliseconds."""
    return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)


def _warm_writer() -> None:
    """The writer is the re-plan's store, run where a deployment with several API workers runs it
    (`fieldplan scheduler`, its own process) and as that process does: at the background priority."""
    import api.context
    import api.store  # noqa: F401
    from api.replan_job import background_priority

    background_priority()


def _ready() -> bool:
    return True


async def technicians_pull(
    base: str,
    keys: dict[str, str],
    duration: float,
    think: tuple[float, float],
    expected: dict[tuple[str, int], list[str]],
    publish_at: float,
    publish: object,
) -> dict[str, object]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    mixed: list[str] = []
    versions: dict[int, int] = {}
    errors: list[str] = []
    published: list[int] = []
    stamps: list[float] = []
    window: list[float] = []
    by_status: dict[int, list[float]] = {}
    began = time.perf_counter()
    stop_at = began + duration

    def running() -> bool:
        # Pull on past the nominal end until the publish has been seen for a while: a slow
        # publish on a busy machine must not end the run before any technician could see it.
        now = time.perf_counter()
        if now < stop_at:
            return True
        return not published or now < window[-1] + think[1] + 1.0

    # Each virtual technician is its own client with one connection, as a phone is. The generator
    # shares the 2 cores with the service, so it must be light: httpx's client cost about 4 ms of CPU
    # per pull here (a pooled client scans all its connections per request, and httpcore re-imports
    # sniffio on every request where it is not installed), aiohttp's a fraction of that.
    async def user(tid: str, key: str) -> None:
        await asyncio.sleep(random.uniform(0, think[1]))
        headers = {"Authorization": f"Bearer {key}"}
        connector = aiohttp.TCPConnector(limit=1, force_close=False)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as client:
            await pulls(tid, client, headers)

    async def pulls(tid: str, client: aiohttp.ClientSession, headers: dict[str, str]) -> None:
        cached: dict[str, object] | None = None  # what a phone keeps: the last body and its ETag
        while running():
            t0 = time.perf_counter()
            try:
                async with client.get("/v1/me/route", params={"date": DAY.isoformat()}, headers=headers) as r:
                    status, etag = r.status, r.headers.get("etag")
                    body = await r.json() if status == 200 else None
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(type(exc).__name__)
                continue
            latencies.append(time.perf_counter() - t0)
            stamps.append(t0)
            by_status.setdefault(status, []).append(latencies[-1])
            codes[status] = codes.get(status, 0) + 1
            if status == 200 and etag:
                cached = body
                headers["If-None-Match"] = etag
            elif status == 304 and cached is not None:
                body = cached
            if body is not None:
                v = int(body["plan_version"])  # type: ignore[call-overload]
                versions[v] = versions.get(v, 0) + 1
                got = [s["job_id"] for s in body["stops"]]
                if (tid, v) not in expected:  # version 2 answered before its writer reported back
                    early.append((tid, v, got))
                elif body["technician_id"] != tid or got != expected[(tid, v)]:
                    mixed.append(f"{tid} v{v}")
            await asyncio.sleep(random.uniform(*think))

    async def publisher() -> None:
        # The writer process starts (and imports) before the run, as the service's own writer
        # has long been running when it publishes: only the write competes with the pulls. Its pool
        # is shut down off the event loop: waiting there for the process to exit stalled the loop, and
        # the pulls it held back then all left at once, a burst no fleet of phones makes.
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_warm_writer)
        try:
            await asyncio.wrap_future(pool.submit(_ready))
            await asyncio.sleep(max(0.0, publish_at - (time.perf_counter() - began)))
            window.append(time.perf_counter())
            version, routes = await asyncio.wrap_future(pool.submit(*publish))  # type: ignore[arg-type]
            window.append(time.perf_counter())
        finally:
            await asyncio.to_thread(pool.shutdown)
        for tid, jobs in routes.items():
            expected[(tid, version)] = jobs
        published.append(version)

    lags: list[tuple[float, float]] = []

    async def lag_probe() -> None:
        # The generator shares the machine: how late its own event loop wakes up is part of
        # every latency it measures, so it is reported beside them.
        while running():
            t0 = time.perf_counter()
            await asyncio.sleep(0.02)
            lags.append((t0, time.perf_counter() - t0 - 0.02))

    early: list[tuple[str, int, list[str]]] = []
    await asyncio.gather(publisher(), lag_probe(), *(user(t, k) for t, k in keys.items()))
    for tid, v, got in early:
        if got != expected.get((tid, v)):
            mixed.append(f"{tid} v{v}")
    wall = time.perf_counter() - began
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return _ms(lat, p) if lat else float("nan")

    quiet = sorted(
        x
        for x, t in zip(latencies, stamps, strict=True)
        if not (window and window[0] - 1 <= t <= window[-1] + 1)
    )
    buckets: dict[int, list[float]] = {}
    for x, t in zip(latencies, stamps, strict=True):
        buckets.setdefault(int((t - began) // 5), []).append(x)
    by_5s = {f"{5 * k}-{5 * k + 5}s": _ms(sorted(v), 0.99) for k, v in sorted(buckets.items())}
    lag_by_5s: dict[str, float] = {}
    for k in sorted(buckets):
        mine = sorted(x for t, x in lags if int((t - began) // 5) == k)
        if mine:
            lag_by_5s[f"{5 * k}-{5 * k + 5}s"] = _ms(mine, 0.99)
    return {
        "p99_ms_by_5s": by_5s,
        "p99_ms_by_status": {c: _ms(sorted(v), 0.99) for c, v in sorted(by_status.items())},
        "generator_loop_lag_p99_ms_by_5s": lag_by_5s,
        "p99_ms_outside_publish": _ms(quiet, 0.99) if quiet else None,
        "publish_seconds": round(window[-1] - window[0], 2) if len(window) == 2 else None,
        "requests": len(lat),
        "throughput_rps": round(len(lat) / wall, 1),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": round(1000 * lat[-1], 1) if lat else None,
        "status_codes": codes,
        "server_errors": sum(n for c, n in codes.items() if c >= 500),
        "transport_errors": len(errors),
        "responses_by_version": versions,
        "mixed_or_wrong_responses": len(mixed),
    }


async def idempotent_creates(base: str, admin: str, count: int) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {admin}"}
    codes: dict[int, int] = {}
    sem = asyncio.Semaphore(100)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def create(i: int) -> None:
            body = {
                "id": f"IDEM{i:05d}",
                "kind": "repair",
                "location": {"lat": 45.7, "lon": 4.8},
                "duration_minutes": 30,
            }
            h = {**headers, "Idempotency-Key": f"load-{i}"}

            async def once() -> None:
                async with sem:
                    answer = await client.post("/v1/requests", json=body, headers=h)
                codes[answer.status_code] = codes.get(answer.status_code, 0) + 1

            # the original and its retry, the retry sometimes racing the original
            if i % 2:
                await asyncio.gather(once(), once())
            else:
                await once()
                await once()

        await asyncio.gather(*(create(i) for i in range(count)))
    return {"posts": sum(codes.values()), "status_codes": codes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--technicians", type=int, default=500)
    parser.add_argument("--jobs-per-technician", type=int, default=6)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--think", default="2-4", help="seconds between a technician's pulls, MIN-MAX")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "FIELDPLAN_LOAD_DATABASE", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--p99-ms",
        type=float,
        default=100.0,
        help="latency target of the verdict: p99 of all pulls, publish included (default 100 ms)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        lo, hi = (float(x) for x in args.think.split("-"))
    except ValueError:
        print(f"error: --think: {args.think!r} is not MIN-MAX seconds", file=sys.stderr)
        return 2
    import psycopg

    schema = f"load_{uuid.uuid4().hex[:10]}"
    plain = args.database.replace("+psycopg", "")
    try:
        with psycopg.connect(plain, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as exc:
        print(
            f"error: --database: PostgreSQL not usable ({type(exc).__name__}); the load test needs it",
            file=sys.stderr,
        )
        return 2
    url = f"{args.database}?options=-csearch_path%3D{schema}"
    proc = None
    try:
        print(f"preparing {args.technicians} technicians, keys and plan version 1 ...", file=sys.stderr)
        service, keys, expected = prepare(url, args.technicians, args.jobs_per_technician)
        port = 8000 + random.randint(100, 899)
        env = {
            **os.environ,
            "FIELDPLAN_DATABASE_URL": url,
            "FIELDPLAN_ADMIN_KEY": ADMIN_KEY,
            "FIELDPLAN_SCHEDULER": "false",
            "FIELDPLAN_TIMEZONE": "Europe/Paris",
        }
        log = args.out / "load-server.log"
        args.out.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from api.cli import main; main()",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            print("error: the service did not start; see " + str(log), file=sys.stderr)
            return 1
        print(
            f"{args.technicians} technicians pull routes for {args.duration:g} s "
            f"({args.workers} uvicorn workers); version 2 is published at {args.duration / 2:g} s ...",
            file=sys.stderr,
        )
        techs = list(keys)
        pull = asyncio.run(
            technicians_pull(
                base,
                keys,
                args.duration,
                (lo, hi),
                expected,
                args.duration / 2,
                (publish_v2, url, techs, args.jobs_per_technician),
            )
        )
        print(f"{args.requests} idempotent creates, each POSTed twice ...", file=sys.stderr)
        creates = asyncio.run(idempotent_creates(base, ADMIN_KEY, args.requests))
        from sqlalchemy import func, select

        from api.tables import RequestRow

        with service.sessions() as session:  # type: ignore[attr-defined]
            stored = session.scalar(
                select(func.count()).select_from(RequestRow).where(RequestRow.id.like("IDEM%"))
            )
        creates["stored"] = stored
        result = {
            "technicians": args.technicians,
            "duration_s": args.duration,
            "workers": args.workers,
            "think_s": [lo, hi],
            "pull": pull,
            "creates": creates,
        }
        (args.out / "load.json").write_text(json.dumps(result, indent=1, default=str))
        print(json.dumps(result, indent=1, default=str))
        ok = (
            pull["server_errors"] == 0
            and pull["mixed_or_wrong_responses"] == 0
            and stored == args.requests
            and len(pull["responses_by_version"]) == 2
            and float(pull["p99_ms"]) < args.p99_ms  # type: ignore[arg-type]
        )  # type: ignore[arg-type]
        print(
            ("PASS" if ok else "FAIL")
            + f": p99 {pull['p99_ms']} ms (target < {args.p99_ms:g}), {pull['server_errors']} 5xx, "
            f"{pull['mixed_or_wrong_responses']} mixed, {stored}/{args.requests} stored",
            file=sys.stderr,
        )
        return 0 if ok else 1
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    raise SystemExit(main())
