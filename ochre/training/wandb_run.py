"""Starting and finishing the W&B run of a training run (`logging.wandb=online|offline`).

    run = start_wandb(run_dir, to_dict(cfg), cfg.logging, wandb_id="")   # wandb_id: reopen that run (resume)
    run.log({...}, step=step)
    finish_wandb(run)

A run that cannot start (no API key, no network) stops the training with one line
within `logging.wandb_timeout` seconds, instead of a traceback or a hang.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ochre.errors import OchreError
from ochre.training.common import LoggingConfig


def start_wandb(run_dir: Path, config: dict[str, Any], logging: LoggingConfig, wandb_id: str = "") -> Any:
    """A started W&B run logging into `run_dir`/wandb with the resolved `config`; `wandb_id` reopens that run."""
    import wandb

    try:
        with quiet_wandb():
            run = wandb.init(
                project=logging.project,
                dir=str(run_dir),
                name=run_dir.name,
                mode=logging.wandb,
                config=config,
                id=wandb_id or None,
                resume="allow" if wandb_id else None,
                settings=wandb.Settings(init_timeout=logging.wandb_timeout),
            )
    except Exception as err:  # wandb raises UsageError, CommError and others; all mean "no run"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OchreError(
            f"logging.wandb={logging.wandb}: W&B did not start ({reason}); check the network and `wandb login`, "
            "or set logging.wandb=offline (sync later with `wandb sync`) or logging.wandb=off"
        ) from None
    where = f"offline; sync it with `wandb sync {Path(run.dir).parent}`" if run.offline else run.url
    print(f"W&B run {run.id} ({'reopened' if wandb_id else 'new'}): {where}")
    return run


def finish_wandb(run: Any) -> None:
    with quiet_wandb():
        run.finish()


@contextlib.contextmanager
def quiet_wandb() -> Iterator[None]:
    """W&B's own terminal lines off for the block (the run says where it logs in one line of its own)."""
    before = os.environ.get("WANDB_SILENT")
    os.environ["WANDB_SILENT"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("WANDB_SILENT", None)
        else:
            os.environ["WANDB_SILENT"] = before
