"""``musclevision-extract``: Hydra front-end of :func:`extract_videos` with a progress bar and a summary.

    musclevision-extract video_root=../shared/data/ucf101-exercise/videos cache_dir=data/cache/ucf101-full workers=2

Exit codes: 0 all videos usable, 1 some videos failed (recorded in the manifest) or the cache
could not be written (full disk: what was finished is kept), 2 bad options or unusable cache
(nothing was done).
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig, OmegaConf
from rich.markup import escape

from musclevision.extract.cache import CacheError, CacheWriteError
from musclevision.extract.landmarker import ConfigError, PoseSettings
from musclevision.extract.pool import ExtractorFatalError
from musclevision.extract.progress import console, extract_with_progress
from musclevision.hydra_app import hydra_entry


def run(cfg: DictConfig) -> int:
    options = OmegaConf.to_container(cfg, resolve=True)
    try:
        summary = extract_with_progress(
            options["video_root"], options["cache_dir"], bool(options["progress"]), pose=options["pose"],
            classes=options["classes"], workers=options["workers"], shard=options["shard"], limit=options["limit"],
            rebuild=options["rebuild"], retry_failed=options["retry_failed"], videos=options["videos"],
        )  # fmt: skip
    except CacheWriteError as exc:  # a full or read-only disk: one line, what was finished is kept
        console.print(f"[red]musclevision-extract: {escape(str(exc))}[/red]", soft_wrap=True)
        return 1
    except (ConfigError, FileNotFoundError, CacheError, ExtractorFatalError) as exc:
        exc = PoseSettings.named(exc, "pose.") if isinstance(exc, ConfigError) else exc
        console.print(f"[red]musclevision-extract: {escape(str(exc))}[/red]", soft_wrap=True)  # one line, also in a log
        return 2
    except KeyboardInterrupt as exc:
        finished = getattr(exc, "finished", None)
        if finished is None:
            saved = "finished videos are saved"
        else:
            saved = f"{finished} video{' is' if finished == 1 else 's are'} finished and saved by this run"
        console.print(f"[yellow]interrupted: {saved}; run the same command again to resume[/yellow]", soft_wrap=True)
        return 130
    # Exit 1 when any selected video is unusable or only partly decoded (now or in an earlier run).
    partial = summary.count("partial") + len(summary.earlier_partial)
    if partial:
        are = "video is" if partial == 1 else "videos are"
        console.print(f"[red]{partial} {are} only partly usable (listed above: truncated or damaged)[/red]")
    return 1 if summary.failures or partial else 0


main = hydra_entry("extract", run)

if __name__ == "__main__":
    sys.exit(main())
