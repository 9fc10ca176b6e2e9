"""The error every layer raises for a bad config key or value, defined below them all (README "Layout"):
the data layer's loaders and the config layer's checks raise the same `ConfigError`."""


class ConfigError(ValueError):
    """A config file or override that does not fit the defaults: names the key and the valid ones."""
