"""The training loop, visible in one function: build, `accelerator.prepare` once, step, checkpoint, evaluate.

One loop serves three jobs chosen by the config: an expert or an apprentice trained alone (a registered
detector), or an apprentice distilled from a frozen expert (`DISTILL.LOSSES` non-empty). `MAX_ITER`
counts optimizer steps; with gradient accumulation each consumes `GRAD_ACCUM_STEPS` batches per process.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.utils import send_to_device, set_seed
from fvcore.common.config import CfgNode
from tqdm import tqdm

from fd3d.config import ConfigError
from fd3d.data.nuscenes import NuScenesReader
from fd3d.data.stream import SceneStream, batches_per_epoch
from fd3d.distill import Distiller
from fd3d.distill.distiller import HEAD_USERS
from fd3d.engine.build import build_dataset, build_loader, build_training_model, data_image_size, detector_of
from fd3d.engine.checkpoint import last_checkpoint, load_checkpoint, save_checkpoint
from fd3d.engine.evaluator import evaluate, publish_metrics
from fd3d.engine.head_pretraining import pretrain_distillation_head
from fd3d.engine.optim import build_optimizer, build_scheduler
from fd3d.hub import from_pretrained, load_pretrained_config, load_weights_into, save_pretrained

MODEL_DIR = "model"
HEAD_PRETRAINING_FILE = "head_pretraining.json"


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or inf; names the term and the step."""


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


def check_finite(losses: dict, step: int, accelerator: Accelerator, output_dir: str) -> None:
    """Stop every process together when any loss term is not finite, naming it."""
    bad = [name for name, value in losses.items() if not torch.isfinite(value).all()]
    flag = torch.tensor([float(len(bad))], device=accelerator.device)
    if accelerator.gather(flag).sum() > 0:
        last = last_checkpoint(output_dir)
        kept = f"the last good checkpoint is {last[1]}" if last else "no checkpoint was written yet"
        where = ", ".join(f"{name}={losses[name].item()}" for name in bad) or "on another process"
        raise NonFiniteLossError(f"non-finite loss at step {step}: {where}; training stopped, {kept}")


def _evaluate_into(detector, cfg: CfgNode, accelerator: Accelerator, name: str) -> dict | None:
    dataset = build_dataset(
        cfg,
        cfg.DATASETS.TEST_SPLIT,
        tuple(cfg.INPUT.IMAGE_SIZE),
        detector.queue_length,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )
    loader = build_loader(dataset, cfg.TEST.IMS_PER_BATCH, False, cfg.DATALOADER.NUM_WORKERS)
    reader = None
    if isinstance(dataset, SceneStream):  # scored with the dataroot's tables (no images needed there)
        reader = NuScenesReader(cfg.DATASETS.DATAROOT, cfg.DATASETS.VERSION)
    else:
        loader = accelerator.prepare(loader)
    out = Path(cfg.OUTPUT_DIR)
    metrics = evaluate(detector, loader, accelerator, cfg, out / name, reader)
    if metrics is not None:
        publish_metrics(metrics, out / name, out)
    accelerator.wait_for_everyone()
    return metrics


@dataclass
class TrainingRun:
    """Everything `accelerator.prepare` returned for one job, and the step it resumes at."""

    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    loader: torch.utils.data.DataLoader
    step: int = 0


def _pretrain_head(
    model: torch.nn.Module, dataset: torch.utils.data.Dataset, cfg: CfgNode, accelerator: Accelerator
) -> None:
    """Head-only steps before the first apprentice step; a resumed run has them in its checkpoint."""
    iters = cfg.DISTILL.HEAD.PRETRAIN_ITERS
    if iters < 0 or not isinstance(model, Distiller) or model.head is None:
        raise ConfigError(
            f"DISTILL.HEAD.PRETRAIN_ITERS={iters} needs a non-negative count and a distillation head "
            f"(DISTILL.LOSSES {list(cfg.DISTILL.LOSSES)} must include {HEAD_USERS})"
        )
    summary = pretrain_distillation_head(model, dataset, cfg, accelerator.device, accelerator.is_main_process)
    accelerator.print(
        f"distillation head pre-trained for {iters} steps: L_dh {summary['loss_dh']:.3f}, "
        f"{summary['focal_queries_per_sample']:.1f} focal queries per sample (last steps)"
    )
    if accelerator.is_main_process:
        Path(cfg.OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
        (Path(cfg.OUTPUT_DIR) / HEAD_PRETRAINING_FILE).write_text(json.dumps(summary, indent=2))


def prepare_training(cfg: CfgNode, resume: bool = False) -> TrainingRun:
    """Build model, data, optimizer and schedule, prepare them once, and restore the last checkpoint."""
    accelerator = make_accelerator(cfg)
    set_seed(cfg.SEED)
    model = build_training_model(cfg)
    if cfg.MODEL.WEIGHTS:
        _, folder = load_pretrained_config(cfg.MODEL.WEIGHTS)
        load_weights_into(detector_of(model), folder / "model.safetensors")
    shuffle = cfg.DATALOADER.SHUFFLE
    dataset = build_dataset(
        cfg,
        cfg.DATASETS.TRAIN_SPLIT,
        data_image_size(model, cfg),
        model.queue_length,
        shuffle=shuffle,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )
    streaming = isinstance(dataset, SceneStream)
    if cfg.DISTILL.HEAD.PRETRAIN_ITERS and not (resume and last_checkpoint(cfg.OUTPUT_DIR)):
        if streaming:
            raise ConfigError(
                "DISTILL.HEAD.PRETRAIN_ITERS reads the map-style dataset: use DATASETS.SOURCE dataroot"
            )
        _pretrain_head(model, dataset, cfg, accelerator)
    loader = build_loader(dataset, cfg.SOLVER.IMS_PER_BATCH, shuffle, cfg.DATALOADER.NUM_WORKERS, cfg.SEED)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    if streaming:  # the stream is already this process's part: Accelerate must not shard it again
        model, optimizer = accelerator.prepare(model, optimizer)
        first_epoch = batches_per_epoch(
            dataset, 0, cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_WORKERS, shuffle
        )
    else:
        model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
        first_epoch = len(loader)
    accelerator.register_for_checkpointing(scheduler)  # stepped by hand: once per optimizer step
    if first_epoch == 0:
        raise ValueError(f"the {cfg.DATASETS.TRAIN_SPLIT} split has fewer samples than one batch per process")
    run = TrainingRun(accelerator, model, optimizer, scheduler, loader)
    if resume:
        found = last_checkpoint(cfg.OUTPUT_DIR)
        if found is None:
            accelerator.print(
                f"--resume: no checkpoint in {cfg.OUTPUT_DIR}/checkpoints, starting from step 0"
            )
        else:
            run.step = load_checkpoint(accelerator, found[1])
            accelerator.print(f"resumed from {found[1]} (step {run.step})")
    return run


def batches(run: TrainingRun, cfg: CfgNode) -> Iterator[dict]:
    """The data from `run.step` on: deterministic per-epoch shuffles, the consumed part skipped."""
    if isinstance(run.loader.dataset, SceneStream):
        yield from _stream_batches(run, cfg)
        return
    epoch, skip = divmod(run.step * cfg.SOLVER.GRAD_ACCUM_STEPS, len(run.loader))
    while True:
        run.loader.set_epoch(epoch)
        yield from run.accelerator.skip_first_batches(run.loader, skip) if skip else run.loader
        epoch, skip = epoch + 1, 0


def _stream_batches(run: TrainingRun, cfg: CfgNode) -> Iterator[dict]:
    """A `SceneStream`'s batches on the device; epochs may differ in length, so the resumed position is
    found by walking them. Each epoch stops at the count every process reaches (`batches_per_epoch`)."""
    stream, size, workers = run.loader.dataset, cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_WORKERS
    drop_last = cfg.DATALOADER.SHUFFLE

    def epoch_length(epoch: int) -> int:
        return batches_per_epoch(stream, epoch, size, workers, drop_last)

    epoch, skip = 0, run.step * cfg.SOLVER.GRAD_ACCUM_STEPS
    while skip >= epoch_length(epoch):
        skip -= epoch_length(epoch)
        epoch += 1
    while True:
        stream.set_epoch(epoch)
        stream.start_at(skip, size)
        for batch in itertools.islice(run.loader, epoch_length(epoch) - skip):
            yield send_to_device(batch, run.accelerator.device)
        epoch, skip = epoch + 1, 0


def training_step(run: TrainingRun, batch: dict, cfg: CfgNode) -> tuple[dict, torch.Tensor]:
    """Forward, finiteness check, backward, clipping, optimizer and (on sync) schedule step."""
    accelerator = run.accelerator
    with accelerator.accumulate(run.model):
        losses = run.model(batch)
        check_finite(losses, run.step, accelerator, cfg.OUTPUT_DIR)
        total = sum(value for name, value in losses.items() if name.startswith("loss"))
        accelerator.backward(total)
        if accelerator.sync_gradients and cfg.SOLVER.GRAD_CLIP > 0:
            accelerator.clip_grad_norm_(run.model.parameters(), cfg.SOLVER.GRAD_CLIP)
        run.optimizer.step()
        run.optimizer.zero_grad()
    if accelerator.sync_gradients:
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
            detector = detector_of(accelerator.unwrap_model(run.model))
            metrics = _evaluate_into(detector, cfg, accelerator, f"eval_{run.step:08d}")
            if metrics is not None:
                accelerator.log(
                    {f"val/{k}": v for k, v in metrics.items() if isinstance(v, float)}, step=run.step
                )
    progress.close()
    if run.step < solver.MAX_ITER:  # stopped early on request
        accelerator.end_training()
        return None

    trained = detector_of(accelerator.unwrap_model(run.model))
    metrics = _evaluate_into(trained, cfg, accelerator, "eval_final")
    if accelerator.is_main_process:
        if metrics is not None:
            accelerator.log(
                {f"val/{k}": v for k, v in metrics.items() if isinstance(v, float)}, step=run.step
            )
        distilled = bool(cfg.DISTILL.LOSSES)
        save_pretrained(
            trained,
            cfg,
            Path(cfg.OUTPUT_DIR) / MODEL_DIR,
            metrics=metrics,
            distilled_from=(cfg.DISTILL.EXPERT.WEIGHTS or cfg.DISTILL.EXPERT.CONFIG_FILE)
            if distilled
            else None,
            method="+".join(cfg.DISTILL.LOSSES) if distilled else None,
        )
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return metrics


def check_writable(folder: str) -> None:
    """Create `folder` and write a probe file in it, or raise naming the folder and the cause."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ConfigError(f"OUTPUT_DIR {folder!r} is not writable: {error.strerror or error}") from error


def evaluate_only(cfg: CfgNode) -> dict | None:
    """Score the model in `MODEL.WEIGHTS` (folder or Hub id) on `DATASETS.*` with the official metrics."""
    if not cfg.MODEL.WEIGHTS:
        raise ValueError("--eval-only needs MODEL.WEIGHTS: a model folder (OUTPUT_DIR/model) or a Hub id")
    check_writable(cfg.OUTPUT_DIR)  # before the whole split is predicted, not after
    accelerator = make_accelerator(cfg)
    detector = from_pretrained(cfg.MODEL.WEIGHTS).to(accelerator.device)
    model_image_size = tuple(detector.image_size)
    if model_image_size != tuple(cfg.INPUT.IMAGE_SIZE):
        cfg = cfg.clone()
        cfg.defrost()
        cfg.INPUT.IMAGE_SIZE = list(model_image_size)
        cfg.freeze()
    metrics = _evaluate_into(detector, cfg, accelerator, "eval")
    accelerator.end_training()
    return metrics
