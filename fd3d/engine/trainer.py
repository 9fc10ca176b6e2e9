"""The training loop, visible in one function: build, `accelerator.prepare` once, step, checkpoint, evaluate.

One loop serves three jobs chosen by the config: an expert or an apprentice trained alone (a registered
detector), or an apprentice distilled from a frozen expert (`DISTILL.LOSSES` non-empty). `MAX_ITER`
counts optimizer steps; with gradient accumulation each consumes `GRAD_ACCUM_STEPS` batches per process.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.utils import send_to_device, set_seed
from fvcore.common.config import CfgNode
from tqdm import tqdm

from fd3d.atomic import write_json_atomically
from fd3d.config import ConfigError
from fd3d.data.build import build_dataset, build_loader
from fd3d.data.dataset import NuScenesDataset
from fd3d.data.manifest import ShardError
from fd3d.data.nuscenes import DatasetError, NuScenesReader
from fd3d.data.schema import dataset_name
from fd3d.data.stream import SceneStream, batches_per_epoch, shard_sample_tokens
from fd3d.distill import build_training_model
from fd3d.engine.checkpoint import (
    CorruptCheckpointError,
    last_checkpoint,
    load_checkpoint,
    newest_safe_checkpoint,
    save_checkpoint,
)
from fd3d.engine.evaluator import evaluate, publish_metrics
from fd3d.engine.optim import build_optimizer, build_phase_optimizer, build_scheduler
from fd3d.engine.run_config import check_resume_config, record_run_config
from fd3d.evaluation.predict import dataset_for, loader_for
from fd3d.evaluation.scene_protocol import uses_scene_protocol
from fd3d.hub import WEIGHTS_NAME, from_pretrained, load_pretrained_config, load_weights_into, save_pretrained
from fd3d.modeling.trainable import TrainingPhase

MODEL_DIR = "model"
PHASE_SUMMARY_WINDOW = 50  # last steps of a phase averaged into its summary


class FinalEvaluationError(RuntimeError):
    """Training finished and the model is saved, but its final evaluation failed; names the model folder."""


class NonFiniteInputError(ValueError):
    """A training batch holds NaN or inf; names the fields and the samples."""


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or inf; names the term and the step."""


POSITIVE_INT, NON_NEGATIVE_INT = "a positive integer", "a non-negative integer"
POSITIVE, NON_NEGATIVE = "a positive finite number", "a non-negative finite number"
POSITIVE_INT_PAIR = "two positive integers"
# key: (what its value must be, what the boundary value means where it has a meaning)
SOLVER_RANGES = {
    "SOLVER.MAX_ITER": (POSITIVE_INT, ""),
    "SOLVER.IMS_PER_BATCH": (POSITIVE_INT, ""),
    "SOLVER.GRAD_ACCUM_STEPS": (POSITIVE_INT, " (1: no accumulation)"),
    "SOLVER.CHECKPOINT_PERIOD": (POSITIVE_INT, ""),
    "SOLVER.LOG_PERIOD": (POSITIVE_INT, ""),
    "SOLVER.WARMUP_ITERS": (NON_NEGATIVE_INT, " (0: no warm-up)"),
    "SOLVER.MAX_CHECKPOINTS_KEPT": (NON_NEGATIVE_INT, " (0: keep every checkpoint)"),
    "TEST.EVAL_PERIOD": (NON_NEGATIVE_INT, " (0: evaluate only at the end)"),
    "TEST.IMS_PER_BATCH": (POSITIVE_INT, ""),
    "SOLVER.BASE_LR": (POSITIVE, ""),
    "SOLVER.BACKBONE_LR_FACTOR": (NON_NEGATIVE, " (0: frozen backbone)"),
    "SOLVER.WEIGHT_DECAY": (NON_NEGATIVE, ""),
    "SOLVER.GRAD_CLIP": (NON_NEGATIVE, " (0: no clipping)"),
    "DISTILL.STAGE_SCALE.PV": (NON_NEGATIVE, " (0: no PV distillation)"),
    "DISTILL.STAGE_SCALE.BEV": (NON_NEGATIVE, " (0: no BEV distillation)"),
    "MODEL.HEAD.NUM_QUERIES": (POSITIVE_INT, ""),
    "INPUT.IMAGE_SIZE": (POSITIVE_INT_PAIR, " (height, width in pixels)"),
}


def validate_solver(cfg: CfgNode) -> None:
    """Raise `ConfigError` naming the first schedule key (`SOLVER_RANGES`) whose value is out of range."""
    for key, (allowed, meaning) in SOLVER_RANGES.items():
        value = cfg
        for name in key.split("."):
            value = value[name]
        if not _in_range(value, allowed):
            raise ConfigError(f"{key}={value!r}: must be {allowed}{meaning}")


def _in_range(value, allowed: str) -> bool:
    if allowed == POSITIVE_INT_PAIR:
        return (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(_in_range(v, POSITIVE_INT) for v in value)
        )
    number_type = int if allowed in (POSITIVE_INT, NON_NEGATIVE_INT) else (int, float)
    if isinstance(value, bool) or not isinstance(value, number_type):
        return False
    return (value > 0 if allowed in (POSITIVE_INT, POSITIVE) else value >= 0) and value < float("inf")


def make_accelerator(cfg: CfgNode) -> Accelerator:
    return Accelerator(
        # without a GPU, several launched processes must form a MULTI_CPU (gloo) group, which Accelerate
        # only does when told to use the CPU
        cpu=not torch.cuda.is_available(),
        gradient_accumulation_steps=cfg.SOLVER.GRAD_ACCUM_STEPS,
        mixed_precision=cfg.SOLVER.MIXED_PRECISION or None,
        log_with="tensorboard",
        project_dir=cfg.OUTPUT_DIR,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        # A distiller's head or a detector's early layers may sit out a step; DDP must not hang on that.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def check_finite(
    losses: dict,
    step: int,
    accelerator: Accelerator,
    output_dir: str,
    phase: str = "",
    model: torch.nn.Module | None = None,
) -> None:
    """Stop every process together when any loss term is not finite, naming it (and the phase, if any),
    whether the weights were already non-finite, and the newest checkpoint that is safe to resume from:
    never the one of this step, which holds the weights that gave this loss (`newest_safe_checkpoint`)."""
    bad = [name for name, value in losses.items() if not torch.isfinite(value).all()]
    flag = torch.tensor([float(len(bad))], device=accelerator.device)
    if accelerator.gather(flag).sum() == 0:
        return
    where = ", ".join(f"{name}={losses[name].item()}" for name in bad) or "on another process"
    at = f"{phase} step" if phase else "step"
    weights = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()] if model else []
    if weights:
        cause = f"the weights are not finite ({len(weights)} tensors, e.g. {weights[0]}): the run diverged"
    else:
        cause = "the inputs and weights are finite: the loss diverged at this step"
    kept = _safe_checkpoint_note(output_dir, step - 1)
    raise NonFiniteLossError(f"non-finite loss at {at} {step}: {where}; {cause}; training stopped, {kept}")


def check_finite_inputs(batch: dict, step: int, accelerator: Accelerator, output_dir: str) -> None:
    """Stop every process together, before the forward, when a batch holds NaN or inf (a corrupt pose,
    box or calibration): a data problem, named with its fields and samples, not reported as divergence.
    The weights are untouched, so the checkpoint of this step is a safe place to resume from."""
    bad = non_finite_inputs(batch)
    flag = torch.tensor([float(len(bad))], device=accelerator.device)
    if accelerator.gather(flag).sum() == 0:
        return
    where = (
        f"{', '.join(bad)} of samples {list(batch.get('sample_token', []))}" if bad else "on another process"
    )
    kept = _safe_checkpoint_note(output_dir, step)
    raise NonFiniteInputError(
        f"non-finite input at step {step}: {where}; a data problem (fix or drop those samples), not a "
        f"diverged run; training stopped, {kept}"
    )


def non_finite_inputs(value: object, name: str = "") -> list[str]:
    """Names of the floating-point tensors in a batch (nested dicts and lists, the queue's frames
    included) that hold NaN or inf: `lidar2img`, `gt_boxes[0]`, `queue[0].lidar2img`."""
    if isinstance(value, torch.Tensor):
        return [name] if value.is_floating_point() and not torch.isfinite(value).all() else []
    if isinstance(value, dict):
        items = [(f"{name}.{key}" if name else str(key), item) for key, item in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(f"{name}[{index}]", item) for index, item in enumerate(value)]
    else:
        return []
    return [found for child, item in items for found in non_finite_inputs(item, child)]


def _safe_checkpoint_note(output_dir: str, max_step: int) -> str:
    try:
        safe = newest_safe_checkpoint(output_dir, max_step)
    except (CorruptCheckpointError, FileNotFoundError) as error:  # the loss error must still be raised
        return f"no intact checkpoint ({error})"
    if safe is None:
        return f"no intact checkpoint with finite weights at or before step {max_step} to resume from"
    return f"the last good checkpoint is {safe[1]}"


def _evaluate_into(detector, cfg: CfgNode, accelerator: Accelerator, name: str) -> dict | None:
    """Score `detector` on DATASETS.TEST_SPLIT into OUTPUT_DIR/name, with TEST.TEMPORAL_PROTOCOL: a
    temporal detector under "scene" reads single frames, each scene whole on one process in time order."""
    scene_protocol = uses_scene_protocol(detector, cfg.TEST.TEMPORAL_PROTOCOL)
    dataset = dataset_for(
        detector,
        cfg,
        cfg.DATASETS.TEST_SPLIT,
        scene_protocol,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )
    reader = None
    if isinstance(dataset, SceneStream):  # scored with the dataroot's tables (no images needed there)
        reader = NuScenesReader(cfg.DATASETS.DATAROOT, cfg.DATASETS.VERSION)
    loader = loader_for(
        dataset, cfg.TEST.IMS_PER_BATCH, cfg.DATALOADER.NUM_WORKERS, scene_protocol, accelerator
    )
    out = Path(cfg.OUTPUT_DIR)
    metrics = evaluate(detector, loader, accelerator, cfg, out / name, reader, scene_protocol)
    if metrics is not None:
        publish_metrics(metrics, out / name, out)
    accelerator.wait_for_everyone()
    return metrics


@dataclass
class PreparedPhase:
    """A model's training phase with its prepared optimizer and its schedule."""

    phase: TrainingPhase
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR


@dataclass
class TrainingRun:
    """Everything `accelerator.prepare` returned for one job, and the step it resumes at."""

    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    loader: torch.utils.data.DataLoader
    step: int = 0
    phases: list[PreparedPhase] = field(default_factory=list)


def prepare_training(cfg: CfgNode, resume: bool = False) -> TrainingRun:
    """Build model, data, optimizers and schedules, prepare them once, run the model's training phases
    (not on resume: the checkpoint has their result), and restore the last checkpoint."""
    validate_solver(cfg)
    accelerator = make_accelerator(cfg)
    set_seed(cfg.SEED)
    model = build_training_model(cfg)
    if cfg.MODEL.WEIGHTS:
        _, folder = load_pretrained_config(cfg.MODEL.WEIGHTS)
        load_weights_into(model.trained_detector(), folder / WEIGHTS_NAME)
    shuffle = cfg.DATALOADER.SHUFFLE
    dataset = build_dataset(
        cfg,
        cfg.DATASETS.TRAIN_SPLIT,
        model.data_image_size(),
        model.queue_length,
        shuffle=shuffle,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )
    streaming = isinstance(dataset, SceneStream)
    loader = build_loader(dataset, cfg.SOLVER.IMS_PER_BATCH, shuffle, cfg.DATALOADER.NUM_WORKERS, cfg.SEED)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    phases = model.training_phases()
    phase_optimizers = [build_phase_optimizer(phase.parameters, phase.steps, cfg) for phase in phases]
    to_prepare = [model, optimizer, *(phase_optimizer for phase_optimizer, _ in phase_optimizers)]
    if streaming:  # the stream is already this process's part: Accelerate must not shard it again
        model, optimizer, *prepared = accelerator.prepare(*to_prepare)
        first_epoch = batches_per_epoch(
            dataset, 0, cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_WORKERS, shuffle
        )
    else:
        model, optimizer, *prepared, loader = accelerator.prepare(*to_prepare, loader)
        first_epoch = len(loader)
    accelerator.register_for_checkpointing(scheduler)  # stepped by hand: once per optimizer step
    if first_epoch == 0:
        raise ValueError(f"the {cfg.DATASETS.TRAIN_SPLIT} split has fewer samples than one batch per process")
    run = TrainingRun(accelerator, model, optimizer, scheduler, loader)
    run.phases = [
        PreparedPhase(phase, phase_optimizer, phase_scheduler)
        for phase, phase_optimizer, (_, phase_scheduler) in zip(
            phases, prepared, phase_optimizers, strict=True
        )
    ]
    found = last_checkpoint(cfg.OUTPUT_DIR) if resume else None
    if found is None:
        if resume:
            accelerator.print(
                f"--resume: no checkpoint in {cfg.OUTPUT_DIR}/checkpoints, starting from step 0"
            )
        if accelerator.is_main_process:
            record_run_config(cfg)
        for prepared_phase in run.phases:
            run_phase(run, prepared_phase, cfg)
    else:
        for key, (old, new) in check_resume_config(cfg).items():
            accelerator.print(f"--resume applies the new {key}: {old!r} -> {new!r}")
        run.step = load_checkpoint(accelerator, found[1])
        accelerator.print(f"resumed from {found[1]} (step {run.step})")
    return run


def phase_summary_file(name: str) -> str:
    """The JSON file in OUTPUT_DIR that a finished training phase writes its summary to."""
    return f"{name}.json"


def run_phase(run: TrainingRun, prepared: PreparedPhase, cfg: CfgNode) -> dict[str, float]:
    """Train a phase's parameters for its steps on the run's data, through the prepared model.

    The global random state is restored afterwards and the main steps restart the data at epoch 0, so
    the apprentice's initialisation, random masks and data order are those of a run without the phase.
    Returns (and writes to `phase_summary_file`) the mean of each logged value over the last steps.
    """
    phase, accelerator = prepared.phase, run.accelerator
    devices = [accelerator.device] if accelerator.device.type == "cuda" else []
    recent: deque[dict[str, float]] = deque(maxlen=PHASE_SUMMARY_WINDOW)
    with torch.random.fork_rng(devices=devices):
        stream = batches(run, cfg, start_step=0)
        progress = tqdm(total=phase.steps, desc=phase.name, disable=not accelerator.is_main_process)
        done = 0
        while done < phase.steps:
            losses, total = _update(
                run, next(stream), cfg, prepared.optimizer, phase.parameters, done, phase.name
            )
            if accelerator.sync_gradients:
                prepared.scheduler.step()
                done += 1
                progress.update(1)
                recent.append({"loss": total.item(), **{name: v.item() for name, v in losses.items()}})
        stream.close()
        progress.close()
    prepared.optimizer.zero_grad(set_to_none=True)
    summary = {
        "steps": phase.steps,
        **{name: sum(r[name] for r in recent) / len(recent) for name in recent[0]},
    }
    accelerator.print(
        f"{phase.name}: {phase.steps} steps; last {len(recent)} steps: "
        + ", ".join(f"{name} {value:.4g}" for name, value in summary.items() if name != "steps")
    )
    if accelerator.is_main_process:
        write_json_atomically(Path(cfg.OUTPUT_DIR) / phase_summary_file(phase.name), summary)
    return summary


def batches(run: TrainingRun, cfg: CfgNode, start_step: int | None = None) -> Iterator[dict]:
    """The data from `start_step` (default `run.step`) on: deterministic per-epoch shuffles, the consumed
    part skipped."""
    step = run.step if start_step is None else start_step
    if isinstance(run.loader.dataset, SceneStream):
        yield from _stream_batches(run, cfg, step)
        return
    epoch, skip = divmod(step * cfg.SOLVER.GRAD_ACCUM_STEPS, len(run.loader))
    while True:
        run.loader.set_epoch(epoch)
        yield from run.accelerator.skip_first_batches(run.loader, skip) if skip else run.loader
        epoch, skip = epoch + 1, 0


def _stream_batches(run: TrainingRun, cfg: CfgNode, step: int) -> Iterator[dict]:
    """A `SceneStream`'s batches on the device; epochs may differ in length, so the resumed position is
    found by walking them. Each epoch stops at the count every process reaches (`batches_per_epoch`)."""
    stream, size, workers = run.loader.dataset, cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_WORKERS
    drop_last = cfg.DATALOADER.SHUFFLE

    def epoch_length(epoch: int) -> int:
        return batches_per_epoch(stream, epoch, size, workers, drop_last)

    epoch, skip = 0, step * cfg.SOLVER.GRAD_ACCUM_STEPS
    while skip >= epoch_length(epoch):
        skip -= epoch_length(epoch)
        epoch += 1
    while True:
        stream.set_epoch(epoch)
        stream.start_at(skip, size)
        for batch in itertools.islice(run.loader, epoch_length(epoch) - skip):
            yield send_to_device(batch, run.accelerator.device)
        epoch, skip = epoch + 1, 0


def _update(
    run: TrainingRun,
    batch: dict,
    cfg: CfgNode,
    optimizer: torch.optim.Optimizer,
    parameters: Sequence[torch.nn.Parameter],
    step: int,
    phase: str = "",
) -> tuple[dict, torch.Tensor]:
    """Forward (of `phase`, or the main step), finiteness check, backward, clipping of `parameters`, and
    `optimizer`'s step (Accelerate skips it while accumulating)."""
    accelerator = run.accelerator
    check_finite_inputs(batch, step, accelerator, cfg.OUTPUT_DIR)
    with accelerator.accumulate(run.model):
        losses = run.model(batch, phase=phase) if phase else run.model(batch)
        check_finite(losses, step, accelerator, cfg.OUTPUT_DIR, phase, run.model)
        total = sum(value for name, value in losses.items() if name.startswith("loss"))
        accelerator.backward(total)
        if accelerator.sync_gradients and cfg.SOLVER.GRAD_CLIP > 0:
            accelerator.clip_grad_norm_(parameters, cfg.SOLVER.GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad()
    return losses, total


def training_step(run: TrainingRun, batch: dict, cfg: CfgNode) -> tuple[dict, torch.Tensor]:
    """Forward, finiteness check, backward, clipping, optimizer and (on sync) schedule step."""
    losses, total = _update(run, batch, cfg, run.optimizer, list(run.model.parameters()), run.step)
    if run.accelerator.sync_gradients:
        run.scheduler.step()
        run.step += 1
    return losses, total


def _log(run: TrainingRun, losses: dict, total: torch.Tensor) -> None:
    scalars = {f"train/{name}": value.item() for name, value in losses.items()}
    scalars["train/total_loss"] = total.item()
    scalars.update({f"lr/group{i}": group["lr"] for i, group in enumerate(run.optimizer.param_groups)})
    run.accelerator.log(scalars, step=run.step)


def train(cfg: CfgNode, resume: bool = False, stop_after: int | None = None) -> dict | None:
    """Train as configured; returns the final metrics on the main process (None elsewhere).

    `stop_after` ends the run after that many steps as if it had been killed (used by tests of resume).
    """
    check_before_training(cfg)
    run = prepare_training(cfg, resume)
    accelerator, solver = run.accelerator, cfg.SOLVER
    accelerator.init_trackers("tensorboard")
    progress = tqdm(
        total=solver.MAX_ITER, initial=run.step, disable=not accelerator.is_main_process, desc="train"
    )
    run.model.train()
    stream = batches(run, cfg)
    while run.step < solver.MAX_ITER and (stop_after is None or run.step < stop_after):
        before = run.step
        losses, total = training_step(run, next(stream), cfg)
        if run.step == before:
            continue  # accumulating gradients
        progress.update(1)
        progress.set_postfix(loss=f"{total.item():.3f}")
        if run.step % solver.LOG_PERIOD == 0 or run.step == solver.MAX_ITER:
            _log(run, losses, total)
        if run.step % solver.CHECKPOINT_PERIOD == 0 or run.step == solver.MAX_ITER:
            save_checkpoint(accelerator, cfg.OUTPUT_DIR, run.step, solver.MAX_CHECKPOINTS_KEPT)
        if cfg.TEST.EVAL_PERIOD and run.step % cfg.TEST.EVAL_PERIOD == 0 and run.step < solver.MAX_ITER:
            detector = accelerator.unwrap_model(run.model).trained_detector()
            metrics = _evaluate_into(detector, cfg, accelerator, f"eval_{run.step:08d}")
            if metrics is not None:
                accelerator.log(
                    {f"val/{k}": v for k, v in metrics.items() if isinstance(v, float)}, step=run.step
                )
    progress.close()
    if run.step < solver.MAX_ITER:  # stopped early on request
        accelerator.end_training()
        return None

    trainable = accelerator.unwrap_model(run.model)
    trained = trainable.trained_detector()
    model_dir = Path(cfg.OUTPUT_DIR) / MODEL_DIR
    eval_dataset = dataset_name(cfg.DATASETS.DATAROOT)
    if accelerator.is_main_process:  # first the model, so that a failed evaluation loses nothing
        save_pretrained(trained, cfg, model_dir, eval_dataset=eval_dataset, **trainable.provenance())
    accelerator.wait_for_everyone()
    try:
        metrics = _evaluate_into(trained, cfg, accelerator, "eval_final")
    except Exception as error:  # any cause: the message must say the trained model is safe
        raise FinalEvaluationError(
            f"training finished and the model is saved in {model_dir}, but the final evaluation on "
            f"{cfg.DATASETS.TEST_SPLIT!r} failed ({type(error).__name__}: {error}); score the saved model "
            f"with: tools/train_net.py --eval-only MODEL.WEIGHTS {model_dir}"
        ) from error
    if accelerator.is_main_process and metrics is not None:
        accelerator.log({f"val/{k}": v for k, v in metrics.items() if isinstance(v, float)}, step=run.step)
        save_pretrained(
            trained, cfg, model_dir, metrics=metrics, eval_dataset=eval_dataset, **trainable.provenance()
        )
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return metrics


def check_before_training(cfg: CfgNode) -> None:
    """What would otherwise fail after the last step, checked before the first: the output folder is
    writable, the train and test splits exist and every camera image they name is there with its table's
    size (shards: the split's shard files exist). Raises ConfigError naming the key and the cause."""
    validate_solver(cfg)  # before anything is created
    check_writable(cfg.OUTPUT_DIR)
    for key in ("TRAIN_SPLIT", "TEST_SPLIT"):
        split = cfg.DATASETS[key]
        try:
            dataset = build_dataset(cfg, split, tuple(cfg.INPUT.IMAGE_SIZE), 0)
            if isinstance(dataset, NuScenesDataset):
                dataset.reader.check_images(dataset.tokens)
            elif key == "TEST_SPLIT":  # streamed test samples are scored with DATAROOT's tables
                check_shards_match_tables(cfg, split)
        except (DatasetError, ValueError, OSError) as error:
            if isinstance(error, ConfigError):
                raise
            raise ConfigError(f"DATASETS.{key} {split!r} cannot be read: {error}") from error


def check_shards_match_tables(cfg: CfgNode, split: str) -> None:
    """The manifest's samples of a streamed split are the split's samples in DATASETS.DATAROOT's tables
    (shards of another dataset with the same file names would train, then fail to score)."""
    streamed = set(shard_sample_tokens(cfg.DATASETS.SHARDS, split, cfg.DATASETS.REVISION or None))
    known = set(NuScenesReader(cfg.DATASETS.DATAROOT, cfg.DATASETS.VERSION).sample_tokens(split))
    if streamed != known:
        foreign, absent = sorted(streamed - known), sorted(known - streamed)
        raise ShardError(
            f"DATASETS.SHARDS {cfg.DATASETS.SHARDS!r} does not hold the {split!r} samples of "
            f"DATASETS.DATAROOT {cfg.DATASETS.DATAROOT!r}: {len(foreign)} shard samples are not in its "
            f"tables (e.g. {foreign[:2]}), {len(absent)} of its samples are not in the shards; shards of "
            "another dataset?"
        )


WRITE_PROBE_BYTES = 1 << 20  # a full disk still creates empty files; it refuses data


def check_writable(folder: str) -> None:
    """Create `folder` and write (and flush to disk) a 1 MiB probe file in it, or raise naming the folder
    and the cause: an empty probe passes on a full disk, where the results written later would not."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder) as probe:
            probe.write(b"\0" * WRITE_PROBE_BYTES)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise ConfigError(f"OUTPUT_DIR {folder!r} is not writable: {error.strerror or error}") from error


def evaluate_only(cfg: CfgNode) -> dict | None:
    """Score the model in `MODEL.WEIGHTS` (folder or Hub id) on `DATASETS.*` with the official metrics."""
    if not cfg.MODEL.WEIGHTS:
        raise ValueError("--eval-only needs MODEL.WEIGHTS: a model folder (OUTPUT_DIR/model) or a Hub id")
    check_writable(cfg.OUTPUT_DIR)  # before the whole split is predicted, not after
    accelerator = make_accelerator(cfg)
    # the data is decoded as the model was built to read it (`dataset_for`), whatever INPUT.* says
    detector = from_pretrained(cfg.MODEL.WEIGHTS).to(accelerator.device)
    metrics = _evaluate_into(detector, cfg, accelerator, "eval")
    accelerator.end_training()
    return metrics
