"""Run-folder guards: which ``--out`` a run may write into, and what a ``--resume`` may change.

``fit`` (``training.run``) writes only into a new or empty folder or into a run folder it wrote itself (its
``.aigc-run`` marker, ``MARKER``); ``--overwrite`` replaces such a folder, deleting only the files a run
writes, and no run writes into a folder holding its own config file or data (``check_out_folder``,
``clear_run_folder``). A ``--resume`` may change only the keys in ``RESUME_MAY_CHANGE`` (``resume_changes``);
the changes are recorded in config.yaml and under ``resumed`` in run.json. ``open_run_folder`` applies these
on rank 0 before any work. ``training.run_folder`` (the folder's other files, ``load_run``) re-exports the
public names.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from training.config import Config, ConfigError, config_from_dict, config_to_dict, read_config_file
from training.context import Dist, main_decides
from training.registry import get_entry

__all__ = ["MARKER", "RESUME_MAY_CHANGE", "check_out_folder", "clear_run_folder", "input_paths", "is_run_folder",
           "open_run_folder", "prepare_run_folder", "record_resume", "resume_changes", "resume_history",
           "write_config"]

log = logging.getLogger("training.run")  # fit's set-up messages, under fit's logger as before

MARKER = ".aigc-run"
"""The file ``fit`` writes first into a run folder: what lets it resume or (``--overwrite``) replace one."""
_RUN_ENTRIES = frozenset({MARKER, "config.yaml", "run.json", "preprocessing.json", "metrics.jsonl", "tokenizer",
                          "hf_model", "checkpoints", "splits", "predictions", "tensorboard"})
_TMP = re.compile(r"\..+\.tmp\d*")  # write_json's and atomic_save's temporary files
RESUME_MAY_CHANGE = ("train.epochs", "train.max_steps", "train.out", "train.progress", "train.log_every",
                     "train.save_every", "train.threads", "data.num_workers")
"""Config keys a ``--resume`` may change (they extend training or cannot change its results); the others
must match the run's config.yaml."""


# ------------------------------------------------------------------------------------ the --out folder
def is_run_folder(path: Path) -> bool:
    """Whether ``path`` is a run folder written by ``fit``: its marker, or (runs from before the marker)
    a run.json with a data fingerprint beside config.yaml."""
    if (path / MARKER).is_file():
        return True
    try:
        info = json.loads((path / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and "data_fingerprint" in info and (path / "config.yaml").is_file()


def _inside(p: Path, folder: Path) -> bool:
    p, folder = p.resolve(), folder.resolve()
    return p == folder or folder in p.parents


def input_paths(cfg: Config, config_path: str | Path | None) -> list[Path]:
    """The local files and folders a run reads: the config file, data sources, weights and backbones."""
    m, dc = cfg.model, cfg.data
    names = [dc.train, dc.dev, dc.test, m.pretrained, m.backbone, m.reference_model, m.companion_model,
             m.name[3:] if m.name.startswith("hf:") else ""]
    names = [n[len("preset:"):] if n.startswith("preset:") else n for n in names]
    out = [Path(config_path)] if config_path is not None else []
    return out + [Path(n) for n in names if n and not n.startswith("hf:") and Path(n).exists()]


def check_out_folder(run: Path, cfg: Config, config_path: str | Path | None, overwrite: bool) -> bool:
    """For a new run into ``run``: raise FileExistsError unless ``run`` is new, empty, or (with
    ``overwrite``) a run folder holding nothing else; never when it holds an input of the run (the config
    file, the data). Returns whether ``run`` must be cleared (``clear_run_folder``) before writing."""
    if run.exists() and not run.is_dir():
        raise FileExistsError(f"--out {run} is a file, not a folder")
    if not run.is_dir() or not any(run.iterdir()):
        return False
    inside = [p for p in input_paths(cfg, config_path) if _inside(p, run)]
    if inside:
        raise FileExistsError(f"{inside[0]} is an input of this run and lies in --out {run}: the run would "
                              "overwrite or delete it; choose another --out (an output never replaces an input)")
    if not is_run_folder(run):
        raise FileExistsError(f"{run} is not empty and is not a run folder written by aigc train: choose another "
                              "--out (an empty or new folder); aigc train does not write among other files")
    ckpts = run / "checkpoints"
    if not overwrite and ckpts.is_dir() and any(ckpts.iterdir()):
        raise FileExistsError(f"{run} already holds a run with checkpoints: pass --resume to continue it, "
                              "--overwrite to replace it, or another --out")
    if not overwrite:
        raise FileExistsError(f"{run} holds a run that stopped before its first checkpoint: pass --overwrite to "
                              "start it over, or another --out")
    other = sorted(e.name for e in run.iterdir() if e.name not in _RUN_ENTRIES and not _TMP.fullmatch(e.name))
    if other:
        raise FileExistsError(f"--overwrite: {run} also holds {', '.join(other)}, which aigc train did not write; "
                              "move them away or choose another --out")
    return True


def clear_run_folder(run: Path) -> None:
    """Delete what ``fit`` wrote into ``run`` (a run folder that ``check_out_folder`` accepted)."""
    for e in run.iterdir():
        if e.name in _RUN_ENTRIES or _TMP.fullmatch(e.name):
            shutil.rmtree(e) if e.is_dir() and not e.is_symlink() else e.unlink()


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and not prefix:
            out.update(_flat(v, f"{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def resume_changes(run: Path, cfg: Config) -> dict[str, list[Any]]:
    """``{key: [recorded, new]}`` for each config key that differs from ``run/config.yaml``; raises
    ConfigError listing them when any is not in ``RESUME_MAY_CHANGE``."""
    old = _flat(config_to_dict(config_from_dict(read_config_file(run / "config.yaml"))))
    new = _flat(config_to_dict(cfg))
    changes = {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}
    refused = [k for k in changes if k not in RESUME_MAY_CHANGE]
    if refused:
        listed = "; ".join(f"{k}: {changes[k][0]!r} -> {changes[k][1]!r}" for k in refused)
        raise ConfigError(f"--resume: the config differs from {run / 'config.yaml'} in {listed}. A resumed run may "
                          f"change only {', '.join(RESUME_MAY_CHANGE)}; to change the others, start a new run "
                          "(another --out)")
    return changes


# ----------------------------------------------------------------------------------------- fit's use
def open_run_folder(cfg: Config, run_dir: str | Path | None, resume: bool, overwrite: bool,
                    config_path: str | Path | None, d: Dist) -> tuple[Path, str, bool, dict[str, list[Any]]]:
    """The run folder (recorded as ``cfg.train.out``), the model's modality, whether the folder must be
    cleared first (``overwrite``) and, on resume, the config keys that changed. Rank 0 decides, before any
    work: ``check_out_folder`` (a new run), ``resume_changes`` (a resumed one)."""
    run = Path(run_dir or cfg.train.out or Path("runs") / (cfg.name or "run"))
    cfg.train.out = str(run)
    modality = get_entry(cfg.model.name).modality
    if resume and overwrite:
        raise ValueError("--resume continues a run and --overwrite replaces it: give one of them")

    def decide() -> tuple[bool, dict[str, list[Any]]]:
        if resume:
            return False, _check_resume(run, cfg)
        return check_out_folder(run, cfg, config_path, overwrite), {}

    none: dict[str, list[Any]] = {}
    clear, changes = main_decides(d, decide, (False, none))  # every rank stops when rank 0 refuses
    return run, modality, clear, changes


def _check_resume(run: Path, cfg: Config) -> dict[str, list[Any]]:
    """``resume_changes`` of a folder that holds a run to resume (last.pt and config.yaml)."""
    last_path = run / "checkpoints" / "last.pt"
    if not last_path.is_file():
        raise FileNotFoundError(f"--resume: {last_path} does not exist (nothing to resume; --overwrite starts "
                                "the run over)")
    if not (run / "config.yaml").is_file():
        raise FileNotFoundError(f"--resume: {run / 'config.yaml'} does not exist; is this a run folder?")
    return resume_changes(run, cfg)


def prepare_run_folder(run: Path, clear: bool) -> None:
    """Rank 0, before a run writes anything else: delete the earlier run when ``clear`` (``--overwrite``),
    then make the folder, its marker and ``checkpoints/``."""
    if clear:
        log.info("--overwrite: deleting the earlier run in %s", run)
        clear_run_folder(run)
    run.mkdir(parents=True, exist_ok=True)
    if not (run / MARKER).is_file():
        (run / MARKER).write_text("a run folder written by aigc train\n", encoding="utf-8")
    (run / "checkpoints").mkdir(exist_ok=True)


def record_resume(run: Path, cfg: Config, fingerprint: str, changes: dict[str, list[Any]]) -> None:
    """Rank 0, on resume: refuse data that differ from the interrupted run's (its run.json fingerprint);
    write config.yaml again when ``changes`` (keys of ``RESUME_MAY_CHANGE``) were made."""
    old = json.loads((run / "run.json").read_text(encoding="utf-8")).get("data_fingerprint")
    if old != fingerprint:
        raise ValueError(
            f"--resume: the data differ from the interrupted run's ({old} vs {fingerprint}); "
            "resume with the same config and files"
        )
    if changes:
        log.info("--resume: config.yaml records the changed %s", ", ".join(
            f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items()))
        write_config(run, cfg)


def write_config(run: Path, cfg: Config) -> None:
    """config.yaml: the resolved config (replaced in one step)."""
    from training.loop import atomic_write_text

    atomic_write_text(run / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def resume_history(run: Path, changes: dict[str, list[Any]] | None) -> dict[str, Any]:
    """run.json's history: ``created`` (now, for a new run: ``changes`` None); on resume the run's own
    ``created`` and its ``resumed`` list with this resume (its time and changed keys) appended."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    history: dict[str, Any] = {"created": now}
    if changes is not None:
        try:
            old = json.loads((run / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        history = {"created": old.get("created", now),
                   "resumed": [*old.get("resumed", []), {"at": now, "changed": changes}]}
    return history
