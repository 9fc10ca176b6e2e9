"""Names fixed by the nuScenes v1.0 schema."""

TABLE_NAMES: tuple[str, ...] = (
    "attribute",
    "calibrated_sensor",
    "category",
    "ego_pose",
    "instance",
    "log",
    "map",
    "sample",
    "sample_annotation",
    "sample_data",
    "scene",
    "sensor",
    "visibility",
)
VERSIONS: tuple[str, ...] = ("v1.0-mini", "v1.0-trainval", "v1.0-test")
