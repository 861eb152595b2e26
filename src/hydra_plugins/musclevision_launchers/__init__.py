"""hydra-submitit-launcher launchers that await every job and report failures clearly (MuscleVision).

The stock launcher waits for the jobs in order and re-raises the first failure: one bad job
hides the others, and the message is a page of submitit internals. These launchers submit
the same job array, wait for all of it (submitit notices killed or cancelled jobs through
``sacct``, so nothing hangs), and raise one error listing each failed job: its number,
scheduler id, overrides, the last error line and the log file to read.

While they wait they say which jobs are pending and why (``squeue``'s reason), and a job that
can never start (more CPUs or memory than any node of the partition has, an invalid account
or QOS, a dependency that failed, ...) is cancelled and reported with what to change, instead
of a sweep waiting in silence forever. Jobs that SLURM refuses at submission get its words.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher  # Hydra only loads plugins from hydra_plugins.*
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf, open_dict

from musclevision.hydra_app import PRECHECKS, mark_task_started, report_error, user_mistake

log = logging.getLogger(__name__)
EXECUTOR_INIT_KEYS = {"max_num_timeout"}  # passed when the executor is built, prefixed by the cluster name
POLL_S = 5.0  # how often the queue is read while waiting; the environment's MUSCLEVISION_SLURM_POLL_S overrides it


def poll_s() -> float:
    """Seconds between two reads of the queue: POLL_S, or MUSCLEVISION_SLURM_POLL_S (a small cluster, the tests)."""
    value = os.environ.get("MUSCLEVISION_SLURM_POLL_S")
    if value is None:
        return POLL_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < math.inf:
        raise ValueError(f"MUSCLEVISION_SLURM_POLL_S={value!r} must be a number of seconds > 0 (unset it for {POLL_S:g})")
    return seconds


REMIND_S = 300.0  # an unchanged queue is reported again this often
# squeue reasons that never resolve by waiting, and what they mean.
NEVER_STARTS = {
    "PartitionConfig": "it asks for more than the nodes of partition {partition} have ({nodes}; asked: {asked})",
    "PartitionNodeLimit": "it asks for more nodes than partition {partition} allows",
    "PartitionTimeLimit": "its time limit (timeout_min={timeout_min}) exceeds partition {partition}'s ({limit})",
    "BadConstraints": "no node has the requested features (constraint={constraint})",
    "InvalidAccount": "account={account} does not exist or you are not in it (sacctmgr show assoc user=$USER)",
    "InvalidQOS": "qos={qos} does not exist or is not allowed for you (sacctmgr show assoc user=$USER)",
    "AccountNotAllowed": "account={account} may not use partition {partition}",
    "QOSNotAllowed": "qos={qos} may not be used on partition {partition}",
    "DependencyNeverSatisfied": "a job it depends on failed or was cancelled",
}
PER_JOB_LIMIT = re.compile(r"^(QOS|Assoc)(Max\w*PerJob\w*|Min\w*)$")  # e.g. QOSMaxCpuPerJobLimit


def never_starts(reason: str) -> bool:
    return reason in NEVER_STARTS or bool(PER_JOB_LIMIT.match(reason))


def queue(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{job id: (state, reason)}`` of those jobs still in the queue ({} when squeue is unavailable)."""
    if not job_ids or shutil.which("squeue") is None:
        return {}
    masters = sorted({j.split("_")[0] for j in job_ids})
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-j", ",".join(masters), "-o", "%i|%T|%r"], capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return {}
    rows = (line.split("|") for line in out.stdout.splitlines() if line.count("|") == 2)
    return {job: (state, reason) for job, state, reason in rows} if out.returncode == 0 else {}


def partition_nodes(partition: str | None) -> tuple[str, str]:
    """``("2 CPUs, 22899 MB memory, gres (null)", "infinite")`` for the nodes of a partition (its time limit)."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P|%c|%m|%G|%l"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown", "unknown"
    for line in out.splitlines():
        name, cpus, memory, gres, limit = (line.split("|") + [""] * 5)[:5]
        if name.rstrip("*") == partition or (partition is None and name.endswith("*")):
            return f"{cpus} CPUs, {memory} MB memory, gres {gres}", limit
    return f"no partition {partition!r} in sinfo", "unknown"


def controller_problem() -> str | None:
    """Why no job could be submitted at all (SLURM's commands missing, or no controller answering), else None."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "SLURM's commands (sbatch, sinfo) are not installed on this machine"
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "sinfo got no answer from the SLURM controller in 60 s"
    except OSError as exc:
        return f"sinfo could not run ({exc})"
    said = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    fatal = [line for line in said if "fatal" in line or "Unable to contact" in line]
    if done.returncode != 0 or fatal:
        return f"no SLURM controller answers ({(fatal or said or ['sinfo exit ' + str(done.returncode)])[-1][:200]})"
    return None


def last_error_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not set(line.strip()) <= {"-"}]
    lines = [line for line in lines if not line.startswith("For further information visit")]  # pydantic's footer
    errors = [line for line in lines if "Error" in line or "error" in line or "CANCELLED" in line or "state:" in line]
    return (errors or lines or [type(exc).__name__])[-1][:300]


class _ReportingLauncher:
    def launch(self, job_overrides, initial_job_idx):
        import submitit

        try:
            poll = poll_s()  # a bad value stops the sweep here, before anything is submitted
        except ValueError as exc:
            log.error("%s", exc)
            raise SystemExit(1) from None
        bad = self._precheck(job_overrides, initial_job_idx)
        if bad:  # before the first job started, our entry point reads this exit as a bad command line (exit 2)
            failing, total = sum(len(numbers) for numbers in bad.values()), len(job_overrides)
            if len(bad) == 1 and failing == total:  # one reason for every job: said once
                text = f"{'all ' * (total > 1)}{total} sweep job{'s' * (total > 1)} would fail: {next(iter(bad))}"
            else:
                text = f"{failing} of these {total} sweep jobs would fail:\n  " + "\n  ".join(
                    f"job{'s' * (len(n) > 1)} {', '.join(f'#{i}' for i in n)}: {why}" for why, n in bad.items()
                )
            report_error(f"musclevision-{self.config.hydra.job.config_name}", f"{text}\n(none was submitted)")
            raise SystemExit(1)
        cluster = self._EXECUTOR
        folder = self.params["submitit_folder"]
        init = {f"{cluster}_{k}": v for k, v in self.params.items() if k in EXECUTOR_INIT_KEYS}
        executor = submitit.AutoExecutor(cluster=cluster, folder=folder, **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"{cluster}_{k}": v for k, v in self.params.items()
                                      if k not in EXECUTOR_INIT_KEYS | {"submitit_folder"}})  # fmt: skip
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        numbers = [initial_job_idx + i for i in range(len(job_overrides))]
        args = [(list(o), "hydra.sweep.dir", n, f"job_id_for_{n}", Singleton.get_state()) for n, o in zip(numbers, job_overrides)]
        problem = controller_problem()
        if problem:  # sbatch would print its configuration errors, then fail: say what is wrong instead
            log.error("cannot submit the sweep (%d jobs) to SLURM: %s. Run it on a machine of the cluster, or start "
                      "this project's single-node development cluster here: make cluster-up (slurm/dev-cluster/README.md); "
                      "without SLURM, drop hydra/launcher=%s to run the jobs one after another here", len(job_overrides),
                      problem, self.config.hydra.runtime.choices.get("hydra/launcher", "..."))  # fmt: skip
            raise SystemExit(1)
        mark_task_started()  # from here on, an exit 1 is a failed job, not a bad command line
        held = io.StringIO()
        try:
            with contextlib.redirect_stderr(held):  # submitit prints sbatch's refusal too: it is said once, below
                jobs = executor.map_array(self, *zip(*args))
        except Exception as exc:  # sbatch refused them: a partition, memory or gres no node can give
            said = [line.strip() for line in str(exc).splitlines() if line.strip().startswith("sbatch:")]
            said = said or [last_error_line(exc)]
            log.error("SLURM refused the sweep (%d jobs) at submission: %s\n  check hydra.launcher.partition, "
                      "cpus_per_task, mem_gb, gres, account and qos against `sinfo` (nodes: %s)", len(args),
                      " ".join(dict.fromkeys(said)), partition_nodes(self.params.get("partition"))[0])  # fmt: skip
            raise SystemExit(1) from None
        sys.stderr.write(held.getvalue())
        sweep_dir = self.config.hydra.sweep.dir
        log.info("submitted %d %s jobs to %s (logs in %s)", len(jobs), cluster, sweep_dir,
                 str(folder).replace("%j", "<job id>"))  # fmt: skip
        for number, job, overrides in zip(numbers, jobs, job_overrides):
            log.info("  #%d  id %s  %s", number, job.job_id, " ".join(filter_overrides(overrides)))
        try:
            hopeless = self._await(jobs, poll)
        except KeyboardInterrupt:  # the jobs are SLURM's now: they go on without this process
            ids = " ".join(job.job_id for job in jobs if not job.done())
            log.warning("stopped waiting; the jobs not done go on running on the cluster (squeue -j %s). Cancel them "
                        "with: scancel %s. Once they are done: musclevision-compare %s", ids.replace(" ", ","), ids,
                        sweep_dir)  # fmt: skip
            raise SystemExit(130) from None
        results, failures = [], []
        for number, job, overrides in zip(numbers, jobs, job_overrides):
            where = f"job #{number} (id {job.job_id}: {' '.join(filter_overrides(overrides)) or 'no overrides'})"
            if job.job_id in hopeless:
                failures.append(f"{where} could never start ({hopeless[job.job_id]}, explained above): cancelled")
                continue
            try:
                result = job.results()[0]
            except Exception as exc:  # the job died (killed, cancelled, out of time): UncompletedJobError & co
                failures.append(f"{where} failed: {last_error_line(exc)}\n      log: {job.paths.stderr}")
                continue
            if result.status == JobStatus.FAILED:  # the task raised; Hydra caught it inside the job
                error = result._return_value
                reason = f"{type(error).__name__}: {last_error_line(error)}"
                failures.append(f"{where} failed: {reason}\n      log: {job.paths.stderr}")
            results.append(result)
        if failures:
            # A clear list and exit 1, rather than an exception Hydra would print as a long traceback.
            log.error("%d of %d sweep jobs failed:\n  %s", len(failures), len(jobs), "\n  ".join(failures))
            raise SystemExit(1)
        done = "the job is" if len(jobs) == 1 else f"all {len(jobs)} jobs are"
        log.info("%s done: musclevision-compare %s", done, sweep_dir)
        return results

    def _precheck(self, job_overrides, first: int) -> dict[str, list[int]]:
        """Each job's config composed and checked as its tool would check it (hydra_app.PRECHECKS), nothing run:
        ``{what is wrong: [job numbers]}``, each reason said once; a job told apart by the values that differ."""
        found = PRECHECKS.get(str(self.config.hydra.job.config_name))
        if found is None:
            return {}
        check, kinds = found
        jobs = [filter_overrides(o) for o in job_overrides]
        values: dict[str, set[str]] = {}
        for overrides in jobs:
            for o in overrides:
                values.setdefault(o.split("=", 1)[0], set()).add(o)
        bad: dict[str, list[int]] = {}
        before = HydraConfig.instance().cfg
        try:
            for number, overrides, shown in zip(range(first, first + len(jobs)), job_overrides, jobs):
                cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                with open_dict(cfg.hydra):  # what the job will see (as submitit's job sets them), so ${hydra:...} resolve
                    cfg.hydra.job.num, cfg.hydra.job.id = number, f"<job id of #{number}>"
                    cfg.hydra.runtime.output_dir = str(Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir))
                HydraConfig.instance().set_config(cfg)
                try:
                    check(cfg)
                except Exception as exc:  # a value the job would refuse, or one it would crash on: either way, said now
                    mistake, cause = user_mistake(exc, kinds), exc.__cause__ or exc  # (instantiate wraps what it raised)
                    why = str(mistake) if mistake is not None else f"{type(cause).__name__}: {last_error_line(cause)}"
                    swept = [o for o in shown if len(values[o.split("=", 1)[0]]) > 1]
                    bad.setdefault(why, []).append(number)
                    if swept and len(jobs) > 1:
                        bad[why][-1] = f"{number} ({' '.join(swept)})"
        finally:
            HydraConfig.instance().cfg = before
        return bad

    def _await(self, jobs, poll: float) -> dict[str, str]:
        """Wait until every job is done (reading the queue every ``poll`` seconds), saying which are pending and
        why; cancel the jobs that can never start. Returns ``{job id: squeue's reason}`` for those."""
        hopeless: dict[str, str] = {}
        said, said_at = "", 0.0
        while True:
            waiting = [job for job in jobs if job.job_id not in hopeless and not job.done()]
            if not waiting:
                return hopeless
            queued = queue([job.job_id for job in waiting])
            stuck = {job.job_id: queued[job.job_id][1] for job in waiting
                     if queued.get(job.job_id, ("", ""))[0] == "PENDING" and never_starts(queued[job.job_id][1])}  # fmt: skip
            if stuck:
                subprocess.run(["scancel", *stuck], capture_output=True, timeout=60)
                hopeless.update(stuck)
                for reason in sorted(set(stuck.values())):
                    ids = [job_id for job_id, r in stuck.items() if r == reason]
                    log.error("%d job%s (%s) can never start, SLURM says %s: %s. Cancelled.", len(ids), "s" * (len(ids) > 1),
                              ", ".join(ids), reason, self._explain(reason))  # fmt: skip
                continue
            counts: dict[str, int] = {}
            for job in waiting:
                state, reason = queued.get(job.job_id, ("finishing", ""))
                key = f"{state.lower()} ({reason})" if state == "PENDING" and reason not in ("", "None") else state.lower()
                counts[key] = counts.get(key, 0) + 1
            line = f"waiting for {len(waiting)} of {len(jobs)} jobs"
            line += (": " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))) if queued else ""
            if line != said or time.monotonic() - said_at > REMIND_S:
                log.info(line)
                said, said_at = line, time.monotonic()
            time.sleep(poll)

    def _explain(self, reason: str) -> str:
        params = {k: self.params.get(k) for k in ("partition", "timeout_min", "constraint", "account", "qos")}
        nodes, limit = partition_nodes(params["partition"])
        asked = ", ".join(f"{k}={'null' if self.params.get(k) is None else self.params.get(k)}"
                          for k in ("cpus_per_task", "mem_gb", "gres"))  # fmt: skip
        text = NEVER_STARTS.get(reason, "it exceeds a per-job limit of its QOS or account (sacctmgr show qos)")
        fix = {"PartitionConfig": "; lower hydra.launcher.cpus_per_task / mem_gb / gres to fit, or choose another "
                                  "hydra.launcher.partition",
               "PartitionTimeLimit": "; lower hydra.launcher.timeout_min"}.get(reason, "")  # fmt: skip
        return text.format(**params, nodes=nodes, limit=limit, asked=asked) + fix


class SlurmLauncher(_ReportingLauncher, submitit_launcher.SlurmLauncher):
    pass
