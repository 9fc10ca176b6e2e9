"""BEVFormer plug-in (see README.md)."""
