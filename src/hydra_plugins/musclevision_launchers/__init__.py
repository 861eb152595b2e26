"""hydra-submitit-launcher launchers that await every job and report failures clearly (MuscleVision).

The stock launcher waits for the jobs in order and re-raises the first failure: one bad job
hides the others, and the message is a page of submitit internals. These launchers submit
the same job array, wait for all of it (submitit notices killed or cancelled jobs through
``sacct``, so nothing hangs), and raise one error listing each failed job: its number,
scheduler id, overrides, the last error line and the log file to read.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher  # Hydra only loads plugins from hydra_plugins.*
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf

from musclevision.hydra_app import mark_task_started

log = logging.getLogger(__name__)
EXECUTOR_INIT_KEYS = {"max_num_timeout"}  # passed when the executor is built, prefixed by the cluster name


def last_error_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not set(line.strip()) <= {"-"}]
    errors = [line for line in lines if "Error" in line or "error" in line or "CANCELLED" in line or "state:" in line]
    return (errors or lines or [type(exc).__name__])[-1][:300]


class _ReportingLauncher:
    def launch(self, job_overrides, initial_job_idx):
        import submitit

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
        mark_task_started()  # from here on, an exit 1 is a failed job, not a bad command line
        jobs = executor.map_array(self, *zip(*args))
        log.info("submitted %d %s jobs to %s (logs in %s)", len(jobs), cluster, self.config.hydra.sweep.dir, folder)
        for number, job, overrides in zip(numbers, jobs, job_overrides):
            log.info("  #%d  id %s  %s", number, job.job_id, " ".join(filter_overrides(overrides)))
        results, failures = [], []
        for number, job, overrides in zip(numbers, jobs, job_overrides):
            where = f"job #{number} (id {job.job_id}: {' '.join(filter_overrides(overrides)) or 'no overrides'})"
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
        return results


class SlurmLauncher(_ReportingLauncher, submitit_launcher.SlurmLauncher):
    pass
