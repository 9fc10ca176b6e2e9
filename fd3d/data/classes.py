"""The 10 nuScenes detection classes and what the project knows about each.

One table drives the synthetic generator (category, size, speed, look) and the attribute rule shared by
the generator and the submission writer, so ground truth and predictions agree on attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

DETECTION_CLASSES: tuple[str, ...] = (
    "car",
    "truck",
    "construction_vehicle",
    "bus",
    "trailer",
    "barrier",
    "motorcycle",
    "bicycle",
    "pedestrian",
    "traffic_cone",
)

# Above this speed (m/s) an object counts as moving; the generator never draws speeds near it.
MOVING_SPEED_THRESHOLD = 0.2

VEHICLES = ("car", "truck", "construction_vehicle", "bus", "trailer")
CYCLES = ("motorcycle", "bicycle")


@dataclass(frozen=True)
class ClassSpec:
    """Generator facts for one detection class (sizes are nuScenes means: width, length, height)."""

    category: str
    size_wlh: tuple[float, float, float]
    frequency: float
    moving_probability: float
    speed_range: tuple[float, float]
    color: tuple[int, int, int]


CLASS_SPECS: dict[str, ClassSpec] = {
    "car": ClassSpec("vehicle.car", (1.95, 4.62, 1.73), 0.34, 0.5, (3.0, 12.0), (200, 40, 40)),
    "truck": ClassSpec("vehicle.truck", (2.52, 6.94, 2.84), 0.08, 0.4, (3.0, 10.0), (40, 90, 210)),
    "construction_vehicle": ClassSpec(
        "vehicle.construction", (2.85, 6.37, 3.19), 0.04, 0.3, (0.5, 2.0), (235, 190, 20)
    ),
    "bus": ClassSpec("vehicle.bus.rigid", (2.94, 11.19, 3.47), 0.04, 0.5, (3.0, 10.0), (250, 140, 0)),
    "trailer": ClassSpec("vehicle.trailer", (2.90, 12.29, 3.87), 0.04, 0.3, (2.0, 8.0), (150, 150, 160)),
    "barrier": ClassSpec(
        "movable_object.barrier", (2.53, 0.50, 0.98), 0.12, 0.0, (0.0, 0.0), (235, 235, 235)
    ),
    "motorcycle": ClassSpec("vehicle.motorcycle", (0.77, 2.11, 1.47), 0.05, 0.5, (3.0, 10.0), (120, 20, 160)),
    "bicycle": ClassSpec("vehicle.bicycle", (0.60, 1.70, 1.28), 0.05, 0.5, (2.0, 6.0), (20, 160, 60)),
    "pedestrian": ClassSpec(
        "human.pedestrian.adult", (0.67, 0.73, 1.77), 0.16, 0.6, (0.6, 1.8), (30, 200, 200)
    ),
    "traffic_cone": ClassSpec(
        "movable_object.trafficcone", (0.41, 0.41, 1.07), 0.08, 0.0, (0.0, 0.0), (255, 100, 0)
    ),
}

ATTRIBUTES: tuple[str, ...] = (
    "vehicle.moving",
    "vehicle.stopped",
    "vehicle.parked",
    "cycle.with_rider",
    "cycle.without_rider",
    "pedestrian.sitting_lying_down",
    "pedestrian.standing",
    "pedestrian.moving",
)


def attribute_for(class_name: str, speed: float) -> str:
    """The nuScenes attribute of an object of `class_name` moving at `speed` m/s ('' when none applies).

    Used by the generator to label ground truth and by the submission writer to label predictions, so a
    correct box and velocity always carry the correct attribute.
    """
    if class_name not in CLASS_SPECS:
        raise ValueError(f"unknown detection class {class_name!r}; valid: {list(DETECTION_CLASSES)}")
    moving = speed > MOVING_SPEED_THRESHOLD
    if class_name in VEHICLES:
        if moving:
            return "vehicle.moving"
        return "vehicle.stopped" if class_name == "bus" else "vehicle.parked"
    if class_name in CYCLES:
        return "cycle.with_rider" if moving else "cycle.without_rider"
    if class_name == "pedestrian":
        return "pedestrian.moving" if moving else "pedestrian.standing"
    return ""
