"""The agent: wires config, store, rules, pipeline, collectors and /metrics; runs until told to stop.

Lifecycle of `sentinel run`:
  lock state_dir -> open store -> bind /metrics -> start writer -> start collectors ->
  READY=1 -> loop (watchdog pings, status.json) -> SIGTERM/SIGINT -> STOPPING=1 ->
  stop collectors -> drain and stop writer -> close store -> exit 0.
SIGHUP reloads the config: an invalid new config is rejected (old one kept, reload metric 0);
a valid one replaces rules and collectors (keeping the state of unchanged rules), the hazard
settings and routes (the writer's store is reopened on them) and the sinks (the dispatcher is
rebuilt; waiting tickets of a removed sink are dead-lettered and logged). Only the state
directory, the terminal id and `[metrics]` need a restart.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from types import FrameType

import structlog

from sentinel import __version__
from sentinel.agent.collectors import RunningCollectors
from sentinel.agent.hub_client import HubClient
from sentinel.agent.jobs import ScheduledJobs
from sentinel.agent.lock import StateDirLock, prepare_state_dir
from sentinel.agent.schedule import Scheduler
from sentinel.agent.signals import Wakeup
from sentinel.agent.status import STATUS_FILE
from sentinel.agent.systemd import Notifier
from sentinel.agent.tickets import TicketDelivery
from sentinel.agent.trail import METRICS as TRAIL_METRICS
from sentinel.agent.trail import TrailWatch, trail_watch_for
from sentinel.agent.windows import change_windows
from sentinel.agent.wiring import build_collectors, open_store
from sentinel.config import loader as config_mod
from sentinel.config.loader import ConfigError
from sentinel.config.schema import Config
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.files import write_json_atomic
from sentinel.core.model import Sample
from sentinel.core.privileges import reduced_coverage
from sentinel.core.status import AgentStatus
from sentinel.drills import metrics as drill_metrics
from sentinel.exposition.catalog import agent_collectors
from sentinel.exposition.families import SpecCollector
from sentinel.exposition.server import MetricsServer
from sentinel.hazards.store import HazardStore
from sentinel.pipeline.writer import Pipeline
from sentinel.rules.engine import RuleEngine
from sentinel.rules.windows import METRICS as WINDOW_METRICS
from sentinel.rules.windows import window_samples
from sentinel.sources.base import PolledCollector, StreamingCollector
from sentinel.tickets import dispatcher as ticket_metrics

log = structlog.get_logger("sentinel.agent")


class Agent:
    """One running Sentinel agent."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock = SYSTEM_CLOCK,
        notifier: Notifier | None = None,
        extra_collectors: Sequence[PolledCollector | StreamingCollector] = (),
    ) -> None:
        self.config = config
        self.extra_collectors = tuple(extra_collectors)
        self.clock = clock
        self.notifier = notifier or Notifier()
        self.status = AgentStatus(clock=clock, hung_after=config.agent.collector_timeout)
        # plain flags and a self-pipe, not threading.Event: signal handlers set them (agent/signals.py)
        self._stopping = False
        self._reload_requested = False
        self._wake = Wakeup()
        self._lock = StateDirLock(config.agent.state_dir)
        self.collectors: RunningCollectors | None = None
        self.store: HazardStore | None = None
        self.pipeline: Pipeline | None = None
        self.metrics: MetricsServer | None = None
        self.address: tuple[str, int] | None = None
        self._services: list[Scheduler | HubClient | TrailWatch] = []  # after the collectors, stopped first
        self._scrape_store: HazardStore | None = None
        self.scheduler: Scheduler | None = None
        self.tickets = TicketDelivery(clock)
        self.coverage = ""  # why this process sees less than the installed agent ("" = all)
        self.trail_watch: TrailWatch | None = None

    # -- start and stop -----------------------------------------------------------------------

    def start(self) -> None:
        """Bring everything up; raises on what makes running impossible (lock, bind, store)."""
        cfg = self.config
        prepare_state_dir(cfg.agent.state_dir)
        self._lock.acquire()
        try:
            self.store = self._open_store(cfg)
            scrape_store = self._open_store(cfg)
            self._scrape_store = scrape_store
            engine = self._engine(cfg)
            self.pipeline = Pipeline(
                store=self.store,
                engine=engine,
                status=self.status,
                capacity=cfg.agent.queue_size,
                clock=self.clock,
                housekeeping_interval=cfg.hazards.check_interval,
            )
            self.collectors = collectors = RunningCollectors(self.pipeline, self.status, self.clock)
            exported = [
                *agent_collectors(
                    status=self.status,
                    store=scrape_store,
                    specs=lambda: collectors.specs,
                    streaming=collectors.streaming_samples,
                    terminal=cfg.agent.terminal_id,
                    branch=cfg.agent.branch,
                    open_info_limit=cfg.metrics.open_hazards_info_limit,
                ),
                SpecCollector.fixed(
                    "drills", drill_metrics.METRICS, lambda: drill_metrics.drill_samples(scrape_store)
                ),
                SpecCollector.fixed("changes", WINDOW_METRICS, self._window_samples),
            ]
            # the dispatcher may be replaced by a reload: the metrics and the writer reach it here
            exported.append(SpecCollector.fixed("tickets", ticket_metrics.METRICS, self.tickets.samples))
            self.trail_watch = trail_watch_for(cfg, self.pipeline.submit_findings, self.clock)
            exported.append(SpecCollector.fixed("trail", TRAIL_METRICS, self.trail_watch.samples))
            self.metrics = MetricsServer(cfg.metrics, exported)
            self.address = self.metrics.start()
            self.pipeline.start()
            self._start_collectors(cfg)
            self.tickets.configure(cfg)
            self.pipeline.on_changes(self.tickets.wake)
            self.scheduler = Scheduler(
                cfg.schedules,
                state_dir=cfg.agent.state_dir,
                jobs=ScheduledJobs(
                    lambda: self.config,
                    clock=self.clock,
                    pipeline=self.pipeline,
                    held_samples=collectors.held_samples,
                    address=lambda: self.address,
                ).table(),
                clock=self.clock,
            )
            self._services.append(self.scheduler)
            if cfg.hub.url:  # the fleet ledger: pull the actions people queued there (outbound only)
                self._services.append(_hub_client(cfg, self._open_store(cfg), self.clock))
            self._services.append(self.trail_watch)  # verifies at start, then every verify_interval
            self.tickets.start()
            for service in self._services:
                service.start()
        except BaseException:
            self._teardown()
            raise
        self.status.reloaded(True)
        log.info(
            "agent_started",
            version=__version__,
            listen=f"{self.address[0]}:{self.address[1]}",
            state_dir=str(cfg.agent.state_dir),
            terminal=cfg.agent.terminal_id,
            collectors=[c.name for c in self.status.collectors()],
        )
        self.coverage = reduced_coverage()
        if self.coverage:
            log.warning("coverage_reduced", reason=self.coverage)
        self.notifier.ready(f"monitoring; metrics on {self.address[0]}:{self.address[1]}")

    def _engine(self, cfg: Config) -> RuleEngine:
        return RuleEngine(
            cfg.enabled_rules,
            clock=self.clock,
            terminal=cfg.agent.terminal_id,
            windows=change_windows(cfg, self.clock),
        )

    def _window_samples(self) -> list[Sample]:
        """Whether a change window is open now (the current engine's windows)."""
        pipeline = self.pipeline
        return window_samples(pipeline.engine.windows, self.clock.time()) if pipeline else []

    def _open_store(self, cfg: Config) -> HazardStore:
        return open_store(cfg, clock=self.clock)

    def stop(self) -> None:
        """Ask `run()` to return (safe from a signal handler: no lock, no logging)."""
        self._stopping = True
        self._wake.set()

    def _teardown(self) -> None:
        services: list[Scheduler | HubClient | TrailWatch | TicketDelivery] = [
            *reversed(self._services),
            self.tickets,
        ]
        for service in services:
            try:
                service.stop()
            except Exception:
                log.exception("service_stop_failed")
        self._stop_collectors()
        if self.pipeline is not None:
            self.pipeline.stop()
        if self.metrics is not None:
            self.metrics.stop()
        if self.store is not None:
            self.store.close()
        if self._scrape_store is not None:
            self._scrape_store.close()
        self._lock.release()
        self._wake.close()

    def _start_collectors(self, cfg: Config) -> None:
        assert self.collectors is not None
        extra = [(c.name, c) for c in self.extra_collectors]
        self.collectors.start([*build_collectors(cfg, clock=self.clock), *extra])

    def _stop_collectors(self) -> None:
        if self.collectors is not None:
            self.collectors.stop()

    # -- reload -------------------------------------------------------------------------------

    def request_reload(self) -> None:
        """Ask the main loop to reload the config (safe from a signal handler: no lock, no logging)."""
        self._reload_requested = True
        self._wake.set()

    def reload(self) -> bool:
        """Load the config file again and apply it; on error keep the old config."""
        self.notifier.reloading()
        try:
            new = config_mod.load(self.config.source)
        except ConfigError as exc:
            self.status.reloaded(False)
            for line in exc.errors:
                log.error("reload_rejected", error=line)
            self.notifier.ready("reload rejected; running on the previous config")
            return False
        except Exception as exc:  # a loader bug must not stop a running agent: keep the old config
            self.status.reloaded(False)
            log.exception("reload_rejected", error=f"{type(exc).__name__}: {exc}")
            self.notifier.ready("reload rejected; running on the previous config")
            return False
        problem = _unreloadable(self.config, new)
        if problem:
            self.status.reloaded(False)
            log.error("reload_rejected", error=problem)
            self.notifier.ready("reload rejected; running on the previous config")
            return False
        assert self.pipeline is not None
        old_cfg, old_engine = self.config, self.pipeline.engine
        engine = self._engine(new)
        # routes, deadlines and which sinks ticket a transition live in the writer's store
        store = self._open_store(new) if _store_settings(old_cfg) != _store_settings(new) else None
        self._stop_collectors()
        done = threading.Event()

        def swap() -> None:  # the engine and store belong to the writer thread: swap them there
            assert self.pipeline is not None
            cleared = engine.adopt(old_engine)
            self.pipeline.engine = engine
            if store is not None:
                previous, self.pipeline.store = self.pipeline.store, store
                previous.close()
                self.store = store
            self.pipeline.apply_now(cleared)
            done.set()

        self.pipeline.call_soon(swap)
        done.wait(5)
        self.config = new
        if old_cfg.sinks != new.sinks:
            self.tickets.configure(new, start=True)
        self._start_collectors(new)
        if self.scheduler is not None:
            self.scheduler.schedules = new.schedules
        self.status.reloaded(True)
        log.info(
            "config_reloaded",
            rules=len(new.enabled_rules),
            sinks=[s.name for s in new.sinks if s.enabled],
            routes=len(new.hazards.routes),
            source=str(new.source),
        )
        self.notifier.ready("monitoring; config reloaded")
        return True

    # -- the main loop ------------------------------------------------------------------------

    def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, stop cleanly. Returns the exit code."""
        self.start()
        try:
            self._loop()
        finally:
            log.info("agent_stopping")
            self.notifier.stopping()
            self._teardown()
            log.info("agent_stopped")
        return 0

    def _loop(self) -> None:
        ping = self.notifier.watchdog_interval
        status_every = self.config.agent.status_interval
        tick = min(ping or status_every, status_every)
        self._write_status()
        while True:
            self._wake.wait(tick)
            self._handle_signals()
            if self._stopping:
                return
            if self._reload_requested:
                self._reload_requested = False  # SIGHUPs arriving during the reload ask for one more
                self.reload()
                continue
            if ping:
                self.notifier.watchdog()
            self._write_status()

    def _write_status(self) -> None:
        extra = {
            "version": __version__,
            "terminal": self.config.agent.terminal_id,
            "listen": f"{self.address[0]}:{self.address[1]}" if self.address else None,
            "config": str(self.config.source),
            "coverage_reduced": self.coverage or None,
            "trail": self.trail_watch.summary() if self.trail_watch else None,
        }
        try:
            write_json_atomic(self.config.agent.state_dir / STATUS_FILE, self.status.snapshot(extra))
        except OSError as exc:
            log.warning("status_write_failed", error=str(exc))

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop, SIGHUP reloads (main thread only).

        The handler only notes the signal; `_handle_signals` in the main loop logs and acts on it.
        """

        def note(signum: int, _frame: FrameType | None) -> None:
            self._wake.note_signal(signum)

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, note)

    def _handle_signals(self) -> None:
        for signum in self._wake.signals():
            log.info("signal_received", signal=signal.Signals(signum).name)
            if signum == signal.SIGHUP:
                self._reload_requested = True
            else:
                self._stopping = True


def _store_settings(cfg: Config) -> tuple[object, ...]:
    """What the writer's hazard store is built from: a reload that changes it reopens the store."""
    return (cfg.hazards, cfg.sinks, cfg.agent.branch)


def _unreloadable(old: Config, new: Config) -> str:
    """Settings that need a restart: say so instead of half-applying them."""
    for label, a, b in (
        ("agent.state_dir", old.agent.state_dir, new.agent.state_dir),
        ("agent.terminal_id", old.agent.terminal_id, new.agent.terminal_id),
        ("metrics", old.metrics, new.metrics),
    ):
        if a != b:
            return f"{label} changed; restart the agent to apply it"
    return ""


def _hub_client(cfg: Config, store: HazardStore, clock: Clock) -> HubClient:
    """The fleet ledger's client: pulls the actions people queued there (outbound only)."""
    return HubClient(cfg.hub, store, terminal=cfg.agent.terminal_id, clock=clock, owns_store=True)
