"""Random but plausible scene layouts: an ego trajectory and objects moving at constant velocity.

Distinct layouts (not more samples of one layout) are what lets a detector generalise, so every scene
draws its own ego path, object set and headings from its own seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fd3d.data.classes import CLASS_SPECS, DETECTION_CLASSES

KEYFRAME_INTERVAL_S = 0.5  # nuScenes keyframes are annotated at 2 Hz
EGO_RADIUS_M = 2.8
OBJECT_DENSITY_PER_M2 = 0.004
SPAWN_RADIUS_M = 55.0


@dataclass
class SceneObject:
    """One object; `position(t)` is linear in time so that finite-difference velocities are exact."""

    class_name: str
    size_wlh: np.ndarray
    anchor_xy: np.ndarray
    anchor_time_s: float
    velocity_xy: np.ndarray
    yaw: float
    color_gain: float

    def center(self, time_s: float) -> np.ndarray:
        xy = self.anchor_xy + self.velocity_xy * (time_s - self.anchor_time_s)
        return np.array([xy[0], xy[1], self.size_wlh[2] / 2.0])

    @property
    def speed(self) -> float:
        return float(np.hypot(*self.velocity_xy))


@dataclass
class SceneLayout:
    """Ego poses at each keyframe (x, y, yaw in the global frame; the ego drives on the plane z = 0)."""

    times_s: np.ndarray
    ego_xy: np.ndarray
    ego_yaw: np.ndarray
    objects: list[SceneObject]


def _ego_trajectory(rng: np.random.Generator, n_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    times = np.arange(n_samples) * KEYFRAME_INTERVAL_S
    speed = 0.0 if rng.random() < 0.15 else rng.uniform(2.0, 9.0)
    yaw_rate = rng.uniform(-0.04, 0.04)
    start = rng.uniform(300.0, 1800.0, size=2)
    yaw0 = rng.uniform(-np.pi, np.pi)
    yaws = yaw0 + yaw_rate * times
    steps = speed * KEYFRAME_INTERVAL_S * np.stack([np.cos(yaws), np.sin(yaws)], axis=1)
    xy = start + np.concatenate([np.zeros((1, 2)), np.cumsum(steps[:-1], axis=0)])
    return times, xy, yaws


def _draw_object(
    rng: np.random.Generator,
    class_name: str,
    anchor_xy: np.ndarray,
    anchor_time: float,
    road_yaw: float,
    static: bool = False,
) -> SceneObject:
    spec = CLASS_SPECS[class_name]
    size = np.array(spec.size_wlh) * rng.uniform(0.9, 1.1, size=3)
    if class_name in ("pedestrian", "traffic_cone") or rng.random() < 0.3:
        yaw = rng.uniform(-np.pi, np.pi)
    else:
        yaw = road_yaw + rng.normal(0.0, 0.1) + (np.pi if rng.random() < 0.5 else 0.0)
    moving = rng.random() < spec.moving_probability and not static
    speed = rng.uniform(*spec.speed_range) if moving else 0.0
    velocity = speed * np.array([np.cos(yaw), np.sin(yaw)])
    yaw = float(np.arctan2(np.sin(yaw), np.cos(yaw)))
    return SceneObject(class_name, size, anchor_xy, anchor_time, velocity, yaw, rng.uniform(0.8, 1.15))


def _collides(
    candidate: SceneObject, placed: list[SceneObject], times: np.ndarray, ego_xy: np.ndarray
) -> bool:
    """Conservative test with bounding circles at every keyframe (boxes must never interpenetrate)."""
    radius = 0.5 * np.hypot(candidate.size_wlh[0], candidate.size_wlh[1]) + 0.3
    track = np.stack([candidate.center(t)[:2] for t in times])
    if np.any(np.linalg.norm(track - ego_xy, axis=1) < radius + EGO_RADIUS_M):
        return True
    for other in placed:
        other_radius = 0.5 * np.hypot(other.size_wlh[0], other.size_wlh[1])
        other_track = np.stack([other.center(t)[:2] for t in times])
        if np.any(np.linalg.norm(track - other_track, axis=1) < radius + other_radius):
            return True
    return False


def make_scene_layout(rng: np.random.Generator, n_samples: int, max_tries: int = 60) -> SceneLayout:
    """Draw one scene: first one object of every class close to the ego path (so every split holds all
    classes inside the evaluator's ranges), then fillers at a road-like density."""
    times, ego_xy, ego_yaw = _ego_trajectory(rng, n_samples)
    path_length = float(np.linalg.norm(ego_xy[-1] - ego_xy[0]))
    area = np.pi * SPAWN_RADIUS_M**2 + 2 * SPAWN_RADIUS_M * path_length
    n_fillers = int(rng.poisson(OBJECT_DENSITY_PER_M2 * area))
    frequencies = np.array([CLASS_SPECS[c].frequency for c in DETECTION_CLASSES])
    filler_classes = rng.choice(DETECTION_CLASSES, size=n_fillers, p=frequencies / frequencies.sum())

    objects: list[SceneObject] = []
    wanted = [(c, True) for c in DETECTION_CLASSES] + [(str(c), False) for c in filler_classes]
    for class_name, is_anchor in wanted:
        # An anchor that keeps crossing the ego path (a long, fast trailer) is retried standing still and
        # further out, still inside every class's evaluation range; the first draws are unchanged, so
        # seeds that placed every anchor before keep their scenes.
        for attempt in range(2 * max_tries if is_anchor else max_tries):
            k = int(rng.integers(n_samples))
            angle = rng.uniform(-np.pi, np.pi)
            static = attempt >= max_tries
            if is_anchor:
                distance = rng.uniform(12.0, 28.0) if static else rng.uniform(6.0, 18.0)
            else:
                distance = rng.uniform(4.0, SPAWN_RADIUS_M)
            anchor = ego_xy[k] + distance * np.array([np.cos(angle), np.sin(angle)])
            candidate = _draw_object(rng, class_name, anchor, times[k], ego_yaw[k], static=static)
            if not _collides(candidate, objects, times, ego_xy):
                objects.append(candidate)
                break
        else:
            if is_anchor:
                raise RuntimeError(
                    f"could not place a {class_name} near the ego path in {2 * max_tries} tries"
                )
    return SceneLayout(times_s=times, ego_xy=ego_xy, ego_yaw=ego_yaw, objects=objects)
