"""The web central station: FastAPI routes, the live WebSocket, and the process that serves them.

One :class:`StationCore` per process joins MQTT (:mod:`agent.station.ingest`), the live ward
(:mod:`agent.station.ward`), the database (:mod:`agent.station.db`) and the browsers. MQTT
messages arrive in paho's thread and are handed to the event loop; a bed whose alarms or status
changed is pushed to every browser at once, vitals are coalesced and pushed every
:data:`VITALS_PUSH_S`. Every asset is served from ``agent/station/static`` (no CDN).

WebSocket protocol (JSON): server → browser ``{"type": "ward", "beds": [...]}`` on connect,
``{"type": "bed", "bed": {...}}`` on change, ``{"type": "ecg", "key": "unit/bed", ...}`` for a
watched bed; browser → server ``{"type": "watch", "key": "unit/bed"}`` / ``{"type": "unwatch"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, Form, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError

from agent.messages import (
    ECG_LEASE_RENEW_S,
    ECG_LEASE_S,
    AlarmAck,
    EcgControl,
    ManualObservations,
    TopicKind,
    topic,
    utc_now,
    validate_bed_segment,
)
from agent.station.config import StationConfig
from agent.station.db import AlarmQuery, Database, iter_csv
from agent.station.ingest import DbWriter, StationMqtt
from agent.station.users import User, authenticate, end_session, session_user, start_session
from agent.station.ward import Ward

__all__ = ["SESSION_COOKIE", "StationCore", "create_app"]

logger = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).parent / "static"
SESSION_COOKIE: Final = "bedside_session"

VITALS_PUSH_S: Final = 0.5
"""Coalesced vitals are pushed twice a second (values change at 1 Hz)."""

RETENTION_PERIOD_S: Final = 3600.0
"""Retention runs once an hour (strip and trend limits are in days)."""

USER_CACHE_S: Final = 60.0
"""A session lookup is cached this long (a logout on another station takes effect within it)."""

TREND_HOURS: Final = (1, 8, 24)


class AckRequest(BaseModel):
    """An acknowledgement from the browser."""

    unit: str
    bed: str
    alarm_id: str


class ObservationRequest(BaseModel):
    """Observations entered in the browser (fields of :class:`ManualObservations`)."""

    unit: str
    bed: str
    systolic_bp_mmhg: float | None = None
    consciousness: str | None = None
    supplemental_o2: bool | None = None
    spo2_scale: int | None = None
    respiration_rate_per_min: float | None = None
    temperature_c: float | None = None


class _Client:
    def __init__(self, ws: WebSocket, user: User) -> None:
        self.ws = ws
        self.user = user
        self.watching: str | None = None
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=2000)


class StationCore:
    """The station's live state and its connections (one per process).

    Parameters
    ----------
    config
        Station settings.
    db
        The migrated database.
    """

    def __init__(self, config: StationConfig, db: Database) -> None:
        self.config = config
        self.db = db
        self.ward = Ward()
        self.writer = DbWriter(db, config.retention)
        self.mqtt = StationMqtt(config.mqtt, config.station_id, self._on_mqtt, self.writer)
        self.clients: set[_Client] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._dirty: set[tuple[str, str]] = set()
        self._watch_count: dict[str, int] = {}
        self._user_cache: dict[str, tuple[User, float]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.started_cpu_s = 0.0

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Connect to the broker, start the writer and the periodic tasks.

        Raises
        ------
        BrokerUnreachableError
            If the broker cannot be reached.
        """
        self.loop = asyncio.get_running_loop()
        self.writer.start()
        await asyncio.to_thread(self.mqtt.connect)
        self._tasks = [
            asyncio.create_task(self._push_vitals()),
            asyncio.create_task(self._renew_leases()),
            asyncio.create_task(self._retention()),
        ]

    async def stop(self) -> None:
        """Stop tasks, turn watched ECG streams off, close MQTT, flush the writer."""
        for task in self._tasks:
            task.cancel()
        for key in list(self._watch_count):
            await self._publish_ecg_control(key, on=False)
        await asyncio.to_thread(self.mqtt.close)
        await asyncio.to_thread(self.writer.stop)

    # ------------------------------------------------------------ MQTT → browsers
    def _on_mqtt(self, topic_name: str, payload: bytes, retained: bool) -> None:
        loop = self.loop
        if loop is not None:
            loop.call_soon_threadsafe(self._apply, topic_name, payload)

    def _apply(self, topic_name: str, payload: bytes) -> None:
        now = datetime.now(UTC)
        change = self.ward.apply(topic_name, payload, now)
        if change.ecg is not None:
            parts = topic_name.split("/")
            key = f"{parts[2]}/{parts[3]}"
            msg = json.dumps(
                {
                    "type": "ecg",
                    "key": key,
                    "fs_hz": change.ecg.fs_hz,
                    "t0_s": change.ecg.t0_s,
                    "samples_uv": change.ecg.samples_uv,
                }
            )
            for c in self.clients:
                if c.watching == key:
                    self._send(c, msg)
            return
        if change.bed is None:
            return
        if change.alarm is None and change.vitals is not None:
            self._dirty.add(change.bed)
            return
        self._dirty.discard(change.bed)
        self._broadcast_bed(change.bed, now)

    def _broadcast_bed(self, key: tuple[str, str], now: datetime) -> None:
        msg = json.dumps({"type": "bed", "bed": self.ward.bed_json(key, now)})
        for c in self.clients:
            self._send(c, msg)

    @staticmethod
    def _send(c: _Client, msg: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            c.queue.put_nowait(msg)  # a browser that stopped reading loses updates, not us

    async def _push_vitals(self) -> None:
        while True:
            await asyncio.sleep(VITALS_PUSH_S)
            now = datetime.now(UTC)
            dirty, self._dirty = self._dirty, set()
            for key in sorted(dirty):
                self._broadcast_bed(key, now)

    # ------------------------------------------------------------ live ECG leases
    async def _publish_ecg_control(self, key: str, *, on: bool) -> None:
        unit, _, bed = key.partition("/")
        ctl = EcgControl(
            device_id=self.config.station_id,
            ts_utc=utc_now(),
            station_id=self.config.station_id,
            on=on,
            lease_s=ECG_LEASE_S,
        )
        await asyncio.to_thread(
            self.mqtt.publish, topic(unit, bed, "ecg/control"), ctl.model_dump_json().encode()
        )

    async def watch(self, client: _Client, key: str | None) -> None:
        """Point ``client``'s live ECG at ``key`` (None: none); leases follow the viewers."""
        old = client.watching
        if old == key:
            return
        client.watching = key
        if old is not None:
            self._watch_count[old] -= 1
            if self._watch_count[old] == 0:
                del self._watch_count[old]
                await self._publish_ecg_control(old, on=False)
        if key is not None:
            self._watch_count[key] = self._watch_count.get(key, 0) + 1
            if self._watch_count[key] == 1:
                await self._publish_ecg_control(key, on=True)

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(ECG_LEASE_RENEW_S)
            for key in list(self._watch_count):
                await self._publish_ecg_control(key, on=True)

    async def _retention(self) -> None:
        r = self.config.retention
        while True:
            n = await asyncio.to_thread(
                self.db.purge, strip_days=r.strip_days, trend_days=r.trend_days
            )
            if n:
                logger.info("retention: %d strips or trend rows dropped", n)
            await asyncio.sleep(RETENTION_PERIOD_S)

    # ------------------------------------------------------------ users
    async def user_for(self, token: str | None) -> User | None:
        """Return the user of a session cookie (cached for :data:`USER_CACHE_S`)."""
        if not token:
            return None
        loop = asyncio.get_running_loop()
        hit = self._user_cache.get(token)
        if hit is not None and loop.time() - hit[1] < USER_CACHE_S:
            return hit[0]
        user = await asyncio.to_thread(session_user, self.db, token)
        if user is None:
            self._user_cache.pop(token, None)
        else:
            self._user_cache[token] = (user, loop.time())
        return user

    def stats(self) -> dict[str, Any]:
        """Counters, CPU and memory of this process."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        w = self.writer.stats
        return {
            "mqtt_messages_received": self.mqtt.received,
            "alarm_events_received": w.alarm_events_received,
            "alarm_events_stored": w.alarm_events_stored,
            "alarm_events_duplicate": w.alarm_events_duplicate,
            "trend_rows_stored": w.trend_rows_stored,
            "write_errors": w.write_errors,
            "invalid_payloads": self.ward.invalid_payloads,
            "beds": len(self.ward.beds),
            "browsers": len(self.clients),
            "cpu_user_s": usage.ru_utime,
            "cpu_system_s": usage.ru_stime,
            "max_rss_mib": usage.ru_maxrss / 1024,
            "pid": os.getpid(),
        }


def _check_bed(unit: str, bed: str) -> None:
    try:
        validate_bed_segment(unit, "unit")
        validate_bed_segment(bed, "bed")
    except ValueError as err:
        raise HTTPException(status_code=400, detail=str(err)) from err


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError as err:
        raise HTTPException(status_code=400, detail=f"bad time {value!r}") from err
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


async def _optional_user(request: Request) -> User | None:
    core: StationCore = request.app.state.core
    return await core.user_for(request.cookies.get(SESSION_COOKIE))


async def _require_user(request: Request) -> User:
    user = await _optional_user(request)
    if user is None:
        raise HTTPException(status_code=401, detail="log in first")
    return user


async def _require_actor(user: Annotated[User, Depends(_require_user)]) -> User:
    if not user.can_act:
        raise HTTPException(status_code=403, detail="read-only user")
    return user


UserDep = Annotated[User, Depends(_require_user)]
ActorDep = Annotated[User, Depends(_require_actor)]


def create_app(config: StationConfig, db: Database) -> FastAPI:
    """Build the FastAPI application of one station process."""
    core = StationCore(config, db)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await core.start()
        try:
            yield
        finally:
            await core.stop()

    app = FastAPI(title="bedside central station", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.core = core
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    optional_user = _optional_user

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/login")
    async def login_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "login.html")

    @app.post("/login")
    async def login(username: Annotated[str, Form()], password: Annotated[str, Form()]) -> Response:
        user = await asyncio.to_thread(authenticate, db, username, password)
        if user is None:
            return RedirectResponse("/login?failed=1", status_code=303)
        token = await asyncio.to_thread(start_session, db, user, config.http.session_hours)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=config.http.cert_file is not None,
            max_age=int(config.http.session_hours * 3600),
        )
        return resp

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            core._user_cache.pop(token, None)
            await asyncio.to_thread(end_session, db, token)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE)
        return resp

    async def page(request: Request) -> Response:
        if await optional_user(request) is None:
            return RedirectResponse("/login", status_code=303)
        return FileResponse(STATIC_DIR / "index.html")

    app.add_api_route("/", page, methods=["GET"])
    app.add_api_route("/bed/{unit}/{bed}", page, methods=["GET"])
    app.add_api_route("/history", page, methods=["GET"])

    @app.get("/api/me")
    async def me(user: UserDep) -> dict[str, Any]:
        return {"username": user.username, "role": user.role, "station_id": config.station_id}

    @app.get("/api/ward")
    async def ward(user: UserDep) -> dict[str, Any]:
        return {"beds": core.ward.ward_json(datetime.now(UTC))}

    @app.get("/api/stats")
    async def stats(user: UserDep) -> dict[str, Any]:
        return core.stats()

    @app.get("/api/alarm/{alarm_id}")
    async def alarm(alarm_id: str, user: UserDep) -> dict[str, Any]:
        rows = await asyncio.to_thread(db.alarm_events, alarm_id)
        actions = await asyncio.to_thread(db.actions, alarm_id)
        evidence: dict[str, Any] | None = None
        live = core.ward.find_alarm(alarm_id)
        if live is not None:
            evidence = json.loads(live[1].event.evidence.model_dump_json())
        for r in rows:
            if evidence is not None:
                break
            if r.strip is not None:
                evidence = dict(r.payload.get("evidence") or {})
                evidence["strip"] = r.strip
        if not rows and live is None:
            raise HTTPException(status_code=404, detail="no such alarm")
        return {
            "alarm_id": alarm_id,
            "events": [_row_json(r) for r in rows],
            "evidence": evidence,
            "actions": [
                {
                    "ts_utc": a.ts_utc.isoformat(),
                    "action": a.action,
                    "username": a.username,
                    "station_id": a.station_id,
                }
                for a in actions
            ],
        }

    async def publish_and_record(
        unit: str,
        bed: str,
        subtopic: TopicKind,
        payload: bytes,
        username: str,
        *,
        action: str,
        alarm_id: str | None,
        detail: dict[str, Any] | None,
    ) -> bool:
        """Publish a station message for the bed (QoS 1) and store who did it.

        Returns True if the broker confirmed it; an ack's stored detail is ``{"published": ok}``.
        """
        ok: bool = await asyncio.to_thread(core.mqtt.publish, topic(unit, bed, subtopic), payload)
        await asyncio.to_thread(
            db.store_action,
            unit=unit,
            bed=bed,
            action=action,
            username=username,
            station_id=config.station_id,
            alarm_id=alarm_id,
            detail={"published": ok} if detail is None else detail,
        )
        return ok

    @app.post("/api/ack")
    async def ack(req: AckRequest, user: ActorDep) -> dict[str, Any]:
        _check_bed(req.unit, req.bed)
        who = f"{user.username}@{config.station_id}"
        if not core.ward.mark_pending(req.unit, req.bed, req.alarm_id, who):
            raise HTTPException(status_code=404, detail="no such active alarm")
        msg = AlarmAck(
            device_id=config.station_id, ts_utc=utc_now(), alarm_id=req.alarm_id, station_id=who
        )
        ok = await publish_and_record(
            req.unit, req.bed, "alarms/ack", msg.model_dump_json().encode(), user.username,
            action="ack", alarm_id=req.alarm_id, detail=None,
        )  # fmt: skip
        core._broadcast_bed((req.unit, req.bed), datetime.now(UTC))
        if not ok:
            raise HTTPException(status_code=502, detail="the broker did not confirm the ack")
        return {"state": "pending", "by": who}

    @app.post("/api/observations")
    async def observations(req: ObservationRequest, user: ActorDep) -> dict[str, Any]:
        _check_bed(req.unit, req.bed)
        fields = req.model_dump(exclude={"unit", "bed"}, exclude_none=True)
        try:
            obs = ManualObservations(
                ts_utc=utc_now(), entered_by=f"{user.username}@{config.station_id}", **fields
            )
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise HTTPException(status_code=422, detail=f"{where}: {first['msg']}") from err
        ok = await publish_and_record(
            req.unit, req.bed, "observations", obs.model_dump_json().encode(), user.username,
            action="observation", alarm_id=None, detail=fields,
        )  # fmt: skip
        if not ok:
            raise HTTPException(status_code=502, detail="the broker did not confirm it")
        return {"sent": fields}

    def _query(
        unit: str | None,
        bed: str | None,
        condition: str | None,
        priority: str | None,
        since: str | None,
        until: str | None,
        limit: int,
    ) -> AlarmQuery:
        return AlarmQuery(
            unit=unit,
            bed=bed,
            condition=condition,
            priority=priority,
            since_utc=_parse_time(since),
            until_utc=_parse_time(until),
            limit=limit,
        )

    @app.get("/api/history")
    async def history(
        user: UserDep,
        unit: str | None = None,
        bed: str | None = None,
        condition: str | None = None,
        priority: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 500,
    ) -> dict[str, Any]:
        q = _query(unit, bed, condition, priority, since, until, limit)
        rows = await asyncio.to_thread(db.search, q)
        return {"events": [_row_json(r) for r in rows]}

    @app.get("/api/history.csv")
    async def history_csv(
        user: UserDep,
        unit: str | None = None,
        bed: str | None = None,
        condition: str | None = None,
        priority: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 10_000,
    ) -> Response:
        q = _query(unit, bed, condition, priority, since, until, limit)
        rows = await asyncio.to_thread(db.search, q)
        text = "".join(iter_csv(rows))
        return Response(
            text,
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="bedside-alarm-history.csv"'},
        )

    @app.get("/api/trends/{unit}/{bed}")
    async def trends(unit: str, bed: str, user: UserDep, hours: int = 1) -> dict[str, Any]:
        _check_bed(unit, bed)
        if hours not in TREND_HOURS:
            raise HTTPException(status_code=400, detail=f"hours must be one of {TREND_HOURS}")
        since = datetime.now(UTC) - timedelta(hours=hours)
        rows = await asyncio.to_thread(db.trends, unit, bed, since)
        return {
            "hours": hours,
            "points": [
                {
                    "ts_utc": r.ts_utc.isoformat(),
                    "hr_bpm": r.hr_bpm,
                    "spo2_pct": r.spo2_pct,
                    "news2_total": r.news2_total,
                }
                for r in rows
            ],
        }

    @app.websocket("/ws")
    async def ws_endpoint(ws: WebSocket) -> None:
        user = await core.user_for(ws.cookies.get(SESSION_COOKIE))
        if user is None:
            await ws.close(code=4401)
            return
        await ws.accept()
        client = _Client(ws, user)
        core.clients.add(client)
        await ws.send_text(
            json.dumps({"type": "ward", "beds": core.ward.ward_json(datetime.now(UTC))})
        )

        async def sender() -> None:
            while True:
                await ws.send_text(await client.queue.get())

        send_task = asyncio.create_task(sender())
        try:
            while True:
                data = json.loads(await ws.receive_text())
                if data.get("type") == "watch" and isinstance(data.get("key"), str):
                    key = data["key"]
                    unit, _, bed = key.partition("/")
                    _check_bed(unit, bed)
                    await core.watch(client, key)
                    view = core.ward.beds.get((unit, bed))
                    for chunk in list(view.ecg) if view is not None else []:
                        await ws.send_text(
                            json.dumps(
                                {
                                    "type": "ecg",
                                    "key": key,
                                    "fs_hz": chunk.fs_hz,
                                    "t0_s": chunk.t0_s,
                                    "samples_uv": chunk.samples_uv,
                                }
                            )
                        )
                elif data.get("type") == "unwatch":
                    await core.watch(client, None)
        except (WebSocketDisconnect, json.JSONDecodeError, HTTPException):
            pass
        finally:
            send_task.cancel()
            core.clients.discard(client)
            await core.watch(client, None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    return app


def _row_json(r: Any) -> dict[str, Any]:  # noqa: ANN401 - an AlarmEventRow
    return {
        "alarm_id": r.alarm_id,
        "unit": r.unit,
        "bed": r.bed,
        "lifecycle": r.lifecycle,
        "condition": r.condition,
        "priority": r.priority,
        "kind": r.kind,
        "ts_utc": r.ts_utc.isoformat(),
        "onset_utc": r.onset_utc.isoformat(),
        "hr_bpm": r.hr_bpm,
        "acknowledged": r.acknowledged,
        "acknowledged_by": r.acknowledged_by,
        "message": r.message,
        "has_strip": r.strip is not None,
    }
