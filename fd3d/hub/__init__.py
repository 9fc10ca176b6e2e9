"""Hub-ready model folders: `save_pretrained` / `from_pretrained` for any detector, and `push_to_hub`.

- `folder`: what a model folder holds (config.json, model.safetensors, README.md) and its checks;
- `weights`: the safetensors weights file, loaded strictly;
- `card`: the model card (README.md);
- `pretrained`: `save_pretrained` (atomic), `load_pretrained_config`, `from_pretrained`;
- `remote`: local folder or Hub id (`resolve_folder`), downloads and `push_to_hub`, with what to do
  when the Hub fails;
- `errors`: `HubError`, the one exception every failure here raises.
"""

from fd3d.hub.errors import HubError
from fd3d.hub.folder import CARD_NAME, CONFIG_NAME, FORMAT_VERSION, WEIGHTS_NAME
from fd3d.hub.pretrained import from_pretrained, load_pretrained_config, save_pretrained
from fd3d.hub.remote import push_to_hub, resolve_folder
from fd3d.hub.weights import build_with_weights, load_weights_into

__all__ = [
    "CARD_NAME",
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "HubError",
    "build_with_weights",
    "from_pretrained",
    "load_pretrained_config",
    "load_weights_into",
    "push_to_hub",
    "resolve_folder",
    "save_pretrained",
]
