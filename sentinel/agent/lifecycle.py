"""The agent: wires config, store, rules, pipeline, collectors and /metrics; runs until told to stop.

Lifecycle of `sentinel run`:
  lock state_dir -> open store -> bind /metrics -> start writer -> start collectors ->
  READY=1 -> loop (watchdog pings, status.json) -> SIGTERM/SIGINT -> STOPPING=1 ->
  stop collectors -> drain and stop writer -> close store -> exit 0.
SIGHUP reloads the config: an invalid new config is rejected (old one kept, reload metric 0);
a valid one replaces rules and collectors, keeping the state of unchanged rules.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import structlog

from sentinel import __version__
from sentinel.agent.schedule import ScheduleConfig, Scheduler
from sentinel.agent.status import STATUS_FILE, AgentStatus, write_json_atomic
from sentinel.agent.systemd import Notifier
from sentinel.agent.wiring import STORE_FILE, baseline_summary, open_store
from sentinel.config import loader as config_mod
from sentinel.config.loader import Config, ConfigError
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import MetricSpec, Sample
from sentinel.drills.metrics import drill_families
from sentinel.exposition.metrics import MetricsServer, SentinelCollector
from sentinel.hazards.store import HazardStore
from sentinel.pipeline.writer import Batch, Pipeline, PolledRunner
from sentinel.rules.engine import RuleEngine
from sentinel.sources.base import PolledCollector, StreamingCollector
from sentinel.sources.registry import build_collectors
from sentinel.tickets.dispatcher import Dispatcher

log = structlog.get_logger("sentinel.agent")

LOCK_FILE = "agent.lock"
STOP_TIMEOUT = 4.0


class AlreadyRunning(Exception):
    """Another agent holds the state directory's lock."""


class StateDirLock:
    """An exclusive flock on `state_dir/agent.lock` holding the owner's pid."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another agent (pid {holder}) is already running on state_dir {self.path.parent}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; its content is stale by design)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holder_pid(state_dir: Path) -> int | None:
    """The pid of the running agent on `state_dir`, or None if nobody holds the lock."""
    path = state_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def prepare_state_dir(path: Path) -> None:
    """Create the state directory 0700 (everything the agent writes lives in it)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


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
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._wake = threading.Event()
        self._emit_stop = threading.Event()
        self._lock = StateDirLock(config.agent.state_dir)
        self._runners: list[PolledRunner] = []
        self._streaming: list[StreamingCollector] = []
        self._specs: dict[str, MetricSpec] = {}
        self.store: HazardStore | None = None
        self.pipeline: Pipeline | None = None
        self.metrics: MetricsServer | None = None
        self.address: tuple[str, int] | None = None
        self._services: list[Any] = []  # components with start()/stop() added by later features
        self.scheduler: Scheduler | None = None
        self.dispatcher: Dispatcher | None = None

    # -- start and stop -----------------------------------------------------------------------

    def start(self) -> None:
        """Bring everything up; raises on what makes running impossible (lock, bind, store)."""
        cfg = self.config
        prepare_state_dir(cfg.agent.state_dir)
        self._lock.acquire()
        try:
            self.store = self._open_store(cfg)
            scrape_store = self._open_store(cfg)
            engine = RuleEngine(cfg.enabled_rules, clock=self.clock, terminal=cfg.agent.terminal_id)
            self.pipeline = Pipeline(
                store=self.store,
                engine=engine,
                status=self.status,
                capacity=cfg.agent.queue_size,
                clock=self.clock,
                housekeeping_interval=cfg.hazards.check_interval,
            )
            collector = SentinelCollector(
                status=self.status,
                store=scrape_store,
                specs=lambda: self._specs,
                extra=self._streaming_samples,
                terminal=cfg.agent.terminal_id,
                branch=cfg.agent.branch,
                open_info_limit=cfg.metrics.open_hazards_info_limit,
            )
            self._scrape_store = scrape_store
            collector.add_families(lambda: drill_families(scrape_store))
            self.metrics = MetricsServer(cfg.metrics, collector)
            self.address = self.metrics.start()
            self.pipeline.start()
            self.pipeline.on_drop(self._on_queue_drop)  # e.g. the FIM rescans what was dropped
            self._start_collectors(cfg)
            if any(s.enabled for s in cfg.sinks):
                self.dispatcher = Dispatcher(cfg.agent.state_dir / STORE_FILE, cfg.sinks, clock=self.clock)
                self.pipeline.on_changes(self.dispatcher.wake)
                collector.add_families(self.dispatcher.families)
                self._services.append(self.dispatcher)
            self.scheduler = Scheduler(
                cfg.schedules,
                state_dir=cfg.agent.state_dir,
                jobs={"inspect": self._scheduled_inspection, "drill": self._scheduled_drill},
                clock=self.clock,
            )
            self._services.append(self.scheduler)
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
        self.notifier.ready(f"monitoring; metrics on {self.address[0]}:{self.address[1]}")

    def _open_store(self, cfg: Config) -> HazardStore:
        return open_store(cfg, clock=self.clock)

    def stop(self) -> None:
        """Ask `run()` to return (safe from a signal handler)."""
        self._stop.set()
        self._wake.set()

    def _teardown(self) -> None:
        for service in reversed(self._services):
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
        scrape_store = getattr(self, "_scrape_store", None)
        if scrape_store is not None:
            scrape_store.close()
        self._lock.release()

    # -- collectors ---------------------------------------------------------------------------

    def _start_collectors(self, cfg: Config) -> None:
        assert self.pipeline is not None
        specs: dict[str, MetricSpec] = {}
        built_all = [
            *build_collectors(cfg, clock=self.clock),
            *((c.name, c) for c in self.extra_collectors),
        ]
        for name, built in built_all:
            if isinstance(built, Exception):
                self.status.register(name, "polled", enabled=False, error=str(built))
                log.error("collector_disabled", collector=name, error=str(built))
                continue
            for spec in built.metrics:
                specs[spec.name] = spec
            if isinstance(built, StreamingCollector):
                self._start_streaming(built)
            else:
                self.status.register(name, "polled")
                runner = PolledRunner(built, self.pipeline, self.status, clock=self.clock)
                runner.start()
                self._runners.append(runner)
        self._specs = specs

    def _start_streaming(self, collector: StreamingCollector) -> None:
        assert self.pipeline is not None
        pipeline, declared = self.pipeline, frozenset(m.name for m in collector.metrics)
        lossless = bool(getattr(collector, "lossless", False))
        stopping = self._emit_stop

        def emit(items: Sequence[Sample | Any]) -> None:
            batch = Batch(collector.name, tuple(items), declared, complete=False)
            if lossless:  # a log follower waits for room rather than skip lines it cannot re-read
                pipeline.submit_waiting(batch, stopping)
            else:  # the others drop, count and get told (the integrity monitor rescans)
                pipeline.submit(batch)

        self.status.register(collector.name, "streaming")
        try:
            collector.start(emit)
        except Exception as exc:
            self.status.register(collector.name, "streaming", enabled=False, error=str(exc))
            log.exception("collector_disabled", collector=collector.name)
            return
        self._streaming.append(collector)

    def _stop_collectors(self) -> None:
        self._emit_stop.set()  # a collector waiting for queue room gives up: it is stopping
        for runner in self._runners:
            runner.stop()
        for runner in self._runners:
            if not runner.join(timeout=1.0):
                log.warning("collector_still_running", collector=runner.collector.name)
        for streaming in self._streaming:
            try:
                streaming.stop()
            except Exception:
                log.exception("collector_stop_failed", collector=streaming.name)
        for name in [r.collector.name for r in self._runners] + [s.name for s in self._streaming]:
            self.status.unregister(name)
        self._runners, self._streaming = [], []
        self._emit_stop = threading.Event()

    def _on_queue_drop(self, collector: str) -> None:
        """Tell streaming collectors that can recover a dropped batch (they check the name)."""
        for streaming in list(self._streaming):
            handler = getattr(streaming, "on_queue_drop", None)
            if handler is not None:
                handler(collector)

    def _streaming_samples(self) -> Iterable[Sample]:
        for collector in list(self._streaming):
            try:
                yield from collector.current()
            except Exception:
                log.exception("collector_current_failed", collector=collector.name)

    # -- reload -------------------------------------------------------------------------------

    def request_reload(self) -> None:
        """Ask the main loop to reload the config (safe from a signal handler)."""
        self._reload_requested.set()
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
        problem = self._unreloadable(new)
        if problem:
            self.status.reloaded(False)
            log.error("reload_rejected", error=problem)
            self.notifier.ready("reload rejected; running on the previous config")
            return False
        assert self.pipeline is not None
        old_engine = self.pipeline.engine
        engine = RuleEngine(new.enabled_rules, clock=self.clock, terminal=new.agent.terminal_id)
        self._stop_collectors()
        done = threading.Event()

        def swap() -> None:  # the engines belong to the writer thread: hand state over there
            assert self.pipeline is not None
            cleared = engine.adopt(old_engine)
            self.pipeline.engine = engine
            self.pipeline.apply_now(cleared)
            done.set()

        self.pipeline.call_soon(swap)
        done.wait(5)
        self.config = new
        self._start_collectors(new)
        if self.scheduler is not None:
            self.scheduler.schedules = new.schedules
        self.status.reloaded(True)
        log.info("config_reloaded", rules=len(new.enabled_rules), source=str(new.source))
        self.notifier.ready("monitoring; config reloaded")
        return True

    def _scheduled_inspection(self, schedule: ScheduleConfig) -> None:
        """Run an inspection; keep its report in state_dir; raise hazards through the writer."""
        from sentinel.inspect import report as render
        from sentinel.inspect.runner import collect_health, findings_for, hazards_summary, run_inspection

        cfg = self.config
        report = run_inspection(
            cfg,
            collect_samples=lambda: collect_health(cfg),
            hazards_summary=lambda: hazards_summary(cfg),
            baseline_check=lambda: baseline_summary(cfg),
            now=self.clock.time(),
        )
        state_dir = cfg.agent.state_dir
        write_json_atomic(state_dir / "inspection-latest.json", report.as_dict())
        (state_dir / "inspection-latest.md").write_text(render.to_markdown(report), encoding="utf-8")
        if cfg.inspect.raise_hazards and self.pipeline is not None:
            self.pipeline.submit_findings(findings_for(report.checks, now=report.started_at))
        log.info(
            "inspection_done", schedule=schedule.name, failed=len(report.failed), problems=report.problems
        )

    def _scheduled_drill(self, schedule: ScheduleConfig) -> None:
        """Run the schedule's drill scenarios against this agent, as `sentinel drill` would."""
        from sentinel.cli.drill import scraper
        from sentinel.drills.runner import DrillRunner
        from sentinel.drills.scenarios import SCENARIOS

        cfg = self.config
        names = list(SCENARIOS) if schedule.scenario == "all" else [schedule.scenario]
        store = open_store(cfg, clock=self.clock)
        try:
            runner = DrillRunner(cfg, store, scrape=scraper(cfg), clock=self.clock, trigger="schedule")
            for name in names:
                scenario = SCENARIOS.get(name)
                if scenario is None:
                    log.error("drill_unknown_scenario", schedule=schedule.name, scenario=name)
                    continue
                runner.run(scenario)
        finally:
            store.close()

    def _unreloadable(self, new: Config) -> str:
        """Settings that need a restart: say so instead of half-applying them."""
        old = self.config
        for label, a, b in (
            ("agent.state_dir", old.agent.state_dir, new.agent.state_dir),
            ("agent.terminal_id", old.agent.terminal_id, new.agent.terminal_id),
            ("metrics", old.metrics, new.metrics),
            ("hazards", old.hazards, new.hazards),
            ("sinks", old.sinks, new.sinks),
        ):
            if a != b:
                return f"{label} changed; restart the agent to apply it"
        return ""

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
            self._wake.clear()
            if self._stop.is_set():
                return
            if self._reload_requested.is_set():
                self._reload_requested.clear()
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
        }
        try:
            write_json_atomic(self.config.agent.state_dir / STATUS_FILE, self.status.snapshot(extra))
        except OSError as exc:
            log.warning("status_write_failed", error=str(exc))

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop, SIGHUP reloads (main thread only)."""

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal_received", signal=signal.Signals(signum).name)
            self.stop()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            log.info("signal_received", signal="SIGHUP")
            self.request_reload()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)


def run_agent(
    config_path: str | None,
    *,
    stream: TextIO | None = None,
    configure_logging: Callable[[Config], None] | None = None,
) -> int:
    """Entry point of `sentinel run`."""
    cfg = config_mod.load(config_path)
    if configure_logging:
        configure_logging(cfg)
    agent = Agent(cfg)
    agent.install_signal_handlers()
    return agent.run()
